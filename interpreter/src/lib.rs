//! The deterministic core of durable-yield.
//!
//! This crate holds everything about durable executions that does not
//! touch the outside world: the wire [`model`], operation [`id`]s, the
//! [`Workflow`] API that workflow code is written against, and the
//! [`Interpreter`], a state machine that replays a workflow against its
//! checkpointed history. It does no I/O, reads no clock and depends on no
//! async runtime: step outcomes and checkpoint responses come in as method
//! calls, and "run this step", "checkpoint these updates" and "the
//! invocation is over" go out as [`Action`]s. The `durable-yield` crate
//! drives it, in process (the local runner) or on AWS Lambda.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod batch;
mod batch_result;
mod completion;
mod coroutine;
mod error;
pub mod external;
mod failure;
mod history;
pub mod id;
mod interpreter;
pub mod limits;
pub mod model;
mod observe;
mod protocol;
pub mod retry;
mod running;
mod step_context;
pub mod subtype;
mod text;
mod workflow;

pub use batch::{Branch, ChildConfig, MapConfig, NoSummary, ParallelConfig, Summarize, Summary};
pub use batch_result::{
    BatchItem, BatchItemStatus, BatchResult, BatchStatus, CompletionReason, Nesting,
};
pub use completion::{
    CompletionDecision, CompletionItem, CompletionOutcome, CompletionPolicy, CompletionStatus,
};
pub use error::{ExecutionError, OpRef};
pub use external::{
    Callback, CallbackConfig, Condition, ConditionConfig, InvokeConfig, WaitForCallbackConfig,
};
pub use failure::{
    BoxError, CallbackEnding, CallbackError, InvokeEnding, InvokeError, StepError, StepFailure,
    error_object_from, error_type_name,
};
pub use history::{Appending, History};
pub use interpreter::{
    Action, CheckpointHandle, ContextScope, Interpreter, Outcome, StepHandle, StepRun,
};
pub use observe::{FunctionOutcome, Observation, finished_since_last_write};
pub use protocol::StepOutcome;
pub use protocol::Workflow;
pub use running::is_replaying;
pub use step_context::{StepContext, StepSemantics};
pub use workflow::{RandomValue, StepConfig, WaitConfig, WorkflowFn};

/// What the `durable-yield` runtime shares with this crate and nothing
/// else: not part of the API, and it may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use crate::coroutine::panic_message;
}

/// The codecs, re-exported.
pub use durable_yield_codecs as codecs;

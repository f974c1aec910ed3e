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
mod coroutine;
mod error;
pub mod external;
mod history;
pub mod id;
mod interpreter;
pub mod model;
mod observe;
mod protocol;
pub mod retry;
mod workflow;

pub use batch::{
    BatchItem, BatchItemStatus, BatchResult, BatchStatus, Branch, ChildConfig, CompletionPolicy,
    CompletionReason, MapConfig, Nesting, ParallelConfig,
};
pub use coroutine::{BoxFuture, panic_message};
pub use error::{ExecutionError, OpRef};
pub use external::{
    Callback, CallbackConfig, CallbackEnding, CallbackError, Condition, ConditionConfig,
    InvokeConfig, InvokeEnding, InvokeError, WAIT_FOR_CALLBACK_SUBTYPE, WaitForCallbackConfig,
};
pub use history::History;
pub use interpreter::{
    Action, CALLBACK_SUBTYPE, CHILD_SUBTYPE, CONDITION_SUBTYPE, CheckpointHandle, INVOKE_SUBTYPE,
    Interpreter, MAX_NAME_LEN, MAX_OPERATION_PAYLOAD, MAX_WAIT_SECONDS, Outcome, STEP_SUBTYPE,
    StepHandle, StepRun, WAIT_SUBTYPE, is_replaying,
};
pub use observe::{FunctionOutcome, Observation};
pub use protocol::StepOutcome;
pub use workflow::{
    BoxError, RandomValue, StepConfig, StepContext, StepError, StepFailure, StepSemantics,
    WaitConfig, Workflow, WorkflowFn, error_object_from, error_type_name,
};

/// The codecs, re-exported.
pub use durable_yield_codecs as codecs;

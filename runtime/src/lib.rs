//! # durable-yield
//!
//! Durable AWS Lambda workflows in Rust, written as yield-based generators.
//!
//! A workflow is an ordinary `async fn` that takes a [`Workflow`] handle.
//! Each durable operation (a [step](Workflow::step), a
//! [wait](Workflow::wait)) is yielded to an interpreter that looks it up in
//! the execution's checkpointed history: a recorded outcome is replayed
//! (the step body never runs again), new work is run and checkpointed, and
//! an unfinished wait ends the invocation until the service invokes the
//! function again.
//!
//! ```
//! use std::time::Duration;
//! use durable_yield::{LocalRunner, StepConfig, StepError, Workflow, codecs::Bincode};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Order { id: u64, cents: u64 }
//!
//! async fn order(mut wf: Workflow, order: Order) -> Result<String, StepError> {
//!     let receipt: String = wf
//!         .step("charge", move |ctx| async move {
//!             // talk to the payment provider here, with ctx.idempotency_key()
//!             Ok(format!("receipt-{}", order.id))
//!         })
//!         .await?;
//!     wf.wait("cool-off", Duration::from_secs(60)).await;
//!     let shipped: bool = wf
//!         .step_with(StepConfig::named("ship").codec(Bincode), |_ctx| async {
//!             Ok(true)
//!         })
//!         .await?;
//!     Ok(format!("{receipt} shipped={shipped}"))
//! }
//!
//! # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! # rt.block_on(async {
//! let run = LocalRunner::new().run(&order, &Order { id: 7, cents: 1999 }).await.unwrap();
//! assert_eq!(run.result.as_deref(), Some("receipt-7 shipped=true"));
//! # });
//! ```
//!
//! The crate root holds what workflow authors use: the [`Workflow`] API,
//! step configuration and errors, [`retry`] strategies, the [`codecs`], the
//! in-process [`LocalRunner`] and (feature `lambda`, on by default) the
//! [`lambda`] handler. The engine underneath (the replay interpreter of
//! `durable-yield-interpreter`, the invocation driver every runtime shares,
//! the [`DurableService`](engine::DurableService) abstraction) is in
//! [`engine`], for authors of runtimes and tools.
//!
//! Cargo features: `json`, `bincode`, `msgpack` (codecs) and `lambda` (the
//! Lambda handler and AWS client) are on by default; `encryption`
//! (encrypted payloads and sealed fields, `codecs::seal`), `compression`
//! (zstd, `codecs::compress`), `kms` (the KMS keyring, `kms`), `logging`
//! (JSON log lines) and `otel` (OpenTelemetry spans) are opt-in.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

/// Builds a `#[non_exhaustive]` wire-model struct of the interpreter crate
/// (which other crates cannot write as a struct expression): its
/// `Default`, with the given fields set.
macro_rules! fields {
    ($t:ident { $($field:ident : $value:expr),* $(,)? }) => {{
        let mut value = $t::default();
        $(value.$field = $value;)*
        value
    }};
}

mod driver;
pub mod history;
#[cfg(feature = "kms")]
pub mod kms;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod local;
#[cfg(feature = "logging")]
pub mod logging;
#[cfg(feature = "otel")]
pub mod otel;
pub mod plugin;
mod service;
mod timer;

pub use driver::CheckpointBatching;
pub use durable_yield_interpreter::batch::ADMISSION_WINDOW;
pub use durable_yield_interpreter::retry::{RetryStrategy, RetryStrategyExt};
pub use durable_yield_interpreter::{
    BatchItem, BatchItemStatus, BatchResult, BatchStatus, BoxError, Branch, Callback,
    CallbackConfig, CallbackEnding, CallbackError, ChildConfig, CompletionDecision, CompletionItem,
    CompletionOutcome, CompletionPolicy, CompletionReason, CompletionStatus, Condition,
    ConditionConfig, ExecutionError, InvokeConfig, InvokeEnding, InvokeError, MapConfig, Nesting,
    NoSummary, ParallelConfig, RandomValue, StepConfig, StepContext, StepError, StepFailure,
    StepSemantics, Summarize, Summary, WaitConfig, WaitForCallbackConfig, Workflow, WorkflowFn,
    error_type_name, id, is_replaying, model, retry,
};
pub use local::{ExecutionStatus, LocalExecution, LocalRun, LocalRunner};

/// The engine, for authors of runtimes and tools rather than workflows:
/// the replay [`Interpreter`](engine::Interpreter) and its actions, the
/// invocation driver every runtime shares ([`run_invocation`](engine::run_invocation)),
/// the [`DurableService`](engine::DurableService) abstraction and the
/// service's limits.
pub mod engine {
    pub use crate::driver::{
        InvocationError, InvocationSummary, OPERATION_TARGET, run_invocation, run_invocation_with,
    };
    pub use crate::service::{CheckpointResponse, DurableService, ServiceError, system_now};
    pub use durable_yield_interpreter::subtype;
    pub use durable_yield_interpreter::{
        Action, Appending, CheckpointHandle, History, Interpreter, Observation, OpRef, Outcome,
        StepHandle, StepOutcome, StepRun, error_object_from,
    };

    /// The service's limits: those the interpreter enforces on operations
    /// and those the driver enforces on requests and responses.
    pub mod limits {
        pub use crate::driver::{
            MAX_EXECUTION_RESULT, MAX_REQUEST_BYTES, MAX_RESPONSE_RESULT, MAX_STATE_PAGES,
            MAX_UPDATES_PER_REQUEST,
        };
        pub use durable_yield_interpreter::limits::*;
    }
}

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// The checkpoint codecs: the [`Codec`](codecs::Codec) trait, [`Json`](codecs::Json),
/// and, behind features, `Bincode`, `MsgPack`, the encrypting wrappers
/// (`seal`, feature `encryption`) and the compressing one (`compress`,
/// feature `compression`).
pub use durable_yield_codecs as codecs;

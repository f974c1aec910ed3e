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
//!         .step("charge", move |_ctx| async move {
//!             // talk to the payment provider here
//!             Ok::<_, std::io::Error>(format!("receipt-{}", order.id))
//!         })
//!         .await?;
//!     wf.wait("cool-off", Duration::from_secs(60)).await;
//!     let shipped: bool = wf
//!         .step_with(StepConfig::named("ship").codec(Bincode), |_ctx| async {
//!             Ok::<_, std::io::Error>(true)
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
//! The crate re-exports the deterministic core (`durable-yield-interpreter`)
//! and the codecs (`durable-yield-codecs`), and adds the pieces that touch
//! the outside world: the [`DurableService`] abstraction, the invocation
//! driver shared by every runtime ([`run_invocation`]) and the in-process
//! [`LocalRunner`].
#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod driver;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod local;
mod service;

pub use driver::{
    BatchConfig, InvocationError, InvocationSummary, MAX_EXECUTION_RESULT, MAX_REQUEST_BYTES,
    MAX_RESPONSE_RESULT, MAX_UPDATES_PER_REQUEST, run_invocation, run_invocation_with,
};
pub use durable_yield_interpreter::{
    Action, BoxError, BoxFuture, ExecutionError, History, Interpreter, MAX_OPERATION_PAYLOAD,
    MAX_WAIT_SECONDS, OpRef, Outcome, STEP_SUBTYPE, StepConfig, StepContext, StepError,
    StepFailure, StepOutcome, StepRun, StepSemantics, WAIT_SUBTYPE, WaitConfig, Workflow,
    WorkflowFn, error_object_from, id, model, retry,
};
pub use local::{
    CrashPoint, ExecutionStatus, LocalError, LocalExecution, LocalRun, LocalRunner, Timeline,
};
pub use service::{CheckpointResponse, DurableService, ServiceError};

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// The checkpoint codecs: the [`Codec`](codecs::Codec) trait, [`Json`](codecs::Json),
/// and, behind features, `Bincode` and `MsgPack`.
pub use durable_yield_codecs as codecs;

//! What a step body learns about the attempt it runs, and the semantics a
//! step runs with.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::id::idempotency_key;
use crate::model::{Millis, OperationId, SharedStr};

/// What a step body learns about the attempt it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepContext {
    pub(crate) id: OperationId,
    pub(crate) name: Option<SharedStr>,
    pub(crate) attempt: u32,
    pub(crate) execution_arn: Arc<str>,
    pub(crate) now: Millis,
    /// Randomness for this attempt: the runtime's 128-bit entropy for the
    /// invocation mixed with the execution, the step and the attempt (high
    /// and low halves: two words keep the context 8-byte aligned, where a
    /// `u128` would align it to 16 and grow every step's copies).
    pub(crate) seed: [u64; 2],
}

impl StepContext {
    /// The step's operation id. It comes from the step's position in the
    /// workflow, so it is the same in every execution: use
    /// [`StepContext::idempotency_key`] as an idempotency key, not this.
    pub fn operation_id(&self) -> &OperationId {
        &self.id
    }
    /// The ARN of the durable execution the step runs in.
    pub fn execution_arn(&self) -> &str {
        &self.execution_arn
    }
    /// A key unique to this execution and this step, the same on every
    /// attempt and every replay: pass it to a payment provider or any API
    /// that de-duplicates requests. 40 lowercase hex characters (see
    /// [`idempotency_key`](crate::id::idempotency_key)).
    ///
    /// ```
    /// # use durable_yield_interpreter::{StepContext, StepFailure};
    /// async fn charge(ctx: StepContext, cents: u64) -> Result<String, StepFailure> {
    ///     let key = ctx.idempotency_key();
    ///     // provider.charge(cents).idempotency_key(&key).send().await?
    ///     Ok(format!("charged {cents} with key {key}"))
    /// }
    /// ```
    pub fn idempotency_key(&self) -> String {
        idempotency_key(&self.execution_arn, &self.id)
    }
    /// When this attempt was started, by the runtime's clock (the virtual
    /// clock on the local runner).
    pub fn now(&self) -> SystemTime {
        from_millis(self.now)
    }
    /// The step's name, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    /// The attempt being run, starting at 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

/// When a step's body may run, relative to its attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum StepSemantics {
    /// The body runs at least once per attempt: if the process dies after
    /// the body ran but before its outcome was recorded, the attempt runs
    /// again. START is not waited for: it shares the outcome's request
    /// when the body is fast, and is sent while a slower body runs (the
    /// runtime's `CheckpointBatching::start_delay`, 100 ms by default). The
    /// default.
    #[default]
    AtLeastOncePerRetry,
    /// The body runs at most once per attempt: START is checkpointed (and
    /// acknowledged) before the body runs, and an attempt found started but
    /// unfinished on replay counts as failed (`StepInterrupted`) and goes to
    /// the retry strategy; it never silently runs again. Costs one more
    /// checkpoint request per attempt.
    AtMostOncePerRetry,
}

pub(crate) fn from_millis(ms: Millis) -> SystemTime {
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms as u64)
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

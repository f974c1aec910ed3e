//! The service side of a durable execution, as the SDK sees it.

use std::future::Future;

use std::time::{SystemTime, UNIX_EPOCH};

use crate::model::{ExecutionState, Millis, Operation, OperationUpdate};

/// The answer to a checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckpointResponse {
    /// The token for the next checkpoint. `None` means the service revoked
    /// checkpointing for this invocation (PROTOCOL.md §4).
    pub checkpoint_token: Option<String>,
    /// Operations changed since the SDK last saw them (a delta).
    pub operations: Vec<Operation>,
    /// Set (non-empty) when more changed operations must be paged in with
    /// [`DurableService::get_state`].
    pub next_marker: Option<String>,
}

/// Why a call to the service failed, classified by what the SDK does next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The checkpoint token is stale or unknown: this invocation must stop
    /// and fail so that the service invokes the function again.
    #[error("invalid checkpoint token: {0}")]
    InvalidToken(String),
    /// The service rejected the request (a 4xx other than throttling): the
    /// execution fails with this message.
    #[error("the service rejected the request: {0}")]
    Rejected(String),
    /// A throttle, a 5xx or a network error: worth retrying.
    #[error("transient service error: {0}")]
    Transient(String),
    /// The service answered something the SDK cannot use (e.g. state pages
    /// that never end): this invocation fails so that the service invokes
    /// the function again.
    #[error("invalid service response: {0}")]
    InvalidResponse(String),
}

/// The two calls an invocation makes to the service. The local runner
/// implements it in process; the Lambda runtime over `aws-sdk-lambda`.
pub trait DurableService: Send + Sync {
    /// `CheckpointDurableExecution`: sends `updates`, in order, with the
    /// current token.
    fn checkpoint(
        &self,
        execution_arn: &str,
        checkpoint_token: &str,
        updates: Vec<OperationUpdate>,
    ) -> impl Future<Output = Result<CheckpointResponse, ServiceError>> + Send;

    /// `GetDurableExecutionState`: one page of operations after `marker`.
    fn get_state(
        &self,
        execution_arn: &str,
        checkpoint_token: &str,
        marker: &str,
    ) -> impl Future<Output = Result<ExecutionState, ServiceError>> + Send;

    /// The service's clock, epoch milliseconds: what step contexts report
    /// as "now" (and `Workflow::now` records) and what the batching delay
    /// is measured with. The system clock by default; the local runner
    /// answers with its virtual clock.
    fn now(&self) -> Millis {
        system_now()
    }
}

/// A random 64-bit value: the standard library's random hash keys (drawn
/// from the operating system once per thread) over a process-wide
/// counter. Unpredictable and distinct across calls and processes; not a
/// cryptographic generator.
pub(crate) fn os_random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

/// The system clock in epoch milliseconds.
pub fn system_now() -> Millis {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| {
        Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
    })
}

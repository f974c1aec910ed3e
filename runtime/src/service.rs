//! The service side of a durable execution, as the SDK sees it.

use std::future::Future;

use std::time::{SystemTime, UNIX_EPOCH};

use crate::model::{ExecutionState, Millis, Operation, OperationUpdate};

/// The answer to a checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
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

impl CheckpointResponse {
    /// An answer with the next token (`None`: checkpointing revoked) and
    /// the operations that changed; set
    /// [`next_marker`](CheckpointResponse::next_marker) when more follow.
    pub fn new(checkpoint_token: Option<String>, operations: Vec<Operation>) -> Self {
        CheckpointResponse {
            checkpoint_token,
            operations,
            next_marker: None,
        }
    }
}

/// Why a call to the service failed, classified by what the SDK does next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The checkpoint token is stale or unknown: this invocation must stop
    /// and fail so that the service invokes the function again. The
    /// service refuses every token of an execution that has ended (timed
    /// out, stopped), and an older invocation's token once a newer
    /// invocation holds one.
    #[error(
        "invalid checkpoint token: {0} (the service no longer takes this invocation's \
         checkpoints: the execution has ended, e.g. timed out or stopped, or a newer \
         invocation holds its token; this invocation stops, and what it did not \
         checkpoint runs again if the execution goes on)"
    )]
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

    /// `GetDurableExecutionState` as an invocation pages its state in: the
    /// page after `marker` appended to `operations` (the operations of the
    /// pages before it), and the marker of the next page, if any.
    ///
    /// The default calls [`DurableService::get_state`] and appends its
    /// page; when the page does not fit in `operations`' capacity, it
    /// first grows the vector to eight times its length (at most 65,536
    /// operations more), since how many pages follow is not known and
    /// doubling at every page would copy the history again each time (an
    /// override should grow it the same way). A service that holds the
    /// operations in memory (the local runner's) overrides it to clone
    /// them straight into `operations`; the AWS client, to convert each
    /// page's operations straight into it.
    /// The driver lends it the history's own vector (which indexes each
    /// page when the call returns, while the page is in cache:
    /// `History::append_in_place`); `operations` must only be appended
    /// to. (A service that knows how many operations all its pages hold
    /// sizes the history once by giving the first page's vector, in
    /// `InvocationInput`, room for all of them: see `History::new`.)
    fn get_state_into(
        &self,
        execution_arn: &str,
        checkpoint_token: &str,
        marker: &str,
        operations: &mut Vec<Operation>,
    ) -> impl Future<Output = Result<Option<String>, ServiceError>> + Send {
        async move {
            let page = self
                .get_state(execution_arn, checkpoint_token, marker)
                .await?;
            reserve_page(operations, page.operations.len());
            operations.extend(page.operations);
            Ok(page.next_marker)
        }
    }

    /// The service's clock, epoch milliseconds: what step contexts report
    /// as "now" (and `Workflow::now` records) and what the batching delay
    /// is measured with. The system clock by default; the local runner
    /// answers with its virtual clock.
    fn now(&self) -> Millis {
        system_now()
    }

    /// The same clock at its full resolution, for what records instants
    /// rather than durations (lifecycle hooks, spans): the system clock by
    /// default. A service whose [`now`](Self::now) is not the system clock
    /// (the local runner's virtual clock) implements both; when they
    /// disagree by more than a millisecond the driver uses `now`.
    fn now_precise(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// How many times its length the history's vector grows to when a page
/// of state does not fit in it (see [`reserve_page`]).
const PAGED_GROWTH: usize = 8;

/// The most room [`reserve_page`] adds beyond the page itself, in
/// operations (17.8 MB of records): past it the vector grows as vectors
/// do (doubling), so that a very long history never asks for address
/// space far beyond what it uses.
const MAX_HEADROOM: usize = 1 << 16;

/// Makes room in `operations` (the history's vector, while an invocation
/// pages its state in) for a page of `incoming` operations.
///
/// How many pages follow is not known (a page says only whether there is
/// a next one). Doubling the vector page after page copies the operations
/// again at every growth, into memory written for the first time: from
/// 1,000 to 25,000 operations in pages of 1,000, five growths, 31,000
/// records copied and about 15 MB of fresh pages faulted in. So a page
/// that does not fit grows the vector to eight times its length at once
/// (two growths over the same pages, 9,000 records copied), adding at
/// most [`MAX_HEADROOM`] operations' room beyond the page. The room the
/// pages never fill is address space that is never written, not resident
/// memory. Measured in `BENCHMARKS.md` (issue 22, seventh part).
pub(crate) fn reserve_page(operations: &mut Vec<Operation>, incoming: usize) {
    if operations.capacity() - operations.len() < incoming {
        let headroom = operations
            .len()
            .saturating_mul(PAGED_GROWTH - 1)
            .min(MAX_HEADROOM);
        let room = incoming.max(headroom);
        operations.reserve(room);
    }
}

/// 128 bits of the operating system's randomness (`getrandom`); should the
/// system refuse, the standard library's random hash keys over a counter
/// (logged, once).
pub(crate) fn os_entropy() -> u128 {
    let mut bytes = [0u8; 16];
    match getrandom::fill(&mut bytes) {
        Ok(()) => u128::from_le_bytes(bytes),
        Err(error) => {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                tracing::warn!(%error, "the operating system gave no randomness; \
                    Workflow::random and Workflow::uuid fall back to the standard library's hash keys");
            });
            (u128::from(os_random()) << 64) | u128::from(os_random())
        }
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

/// An epoch-millisecond instant as a `SystemTime` (the epoch for negative
/// values).
pub(crate) fn millis_to_time(at: Millis) -> SystemTime {
    UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(at).unwrap_or(0))
}

/// An instant for lifecycle hooks: the service's clock in epoch ms and at
/// its full resolution.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Now {
    pub(crate) at: Millis,
    pub(crate) time: SystemTime,
}

impl Now {
    /// Reads `service`'s clock. Its precise reading is used when it agrees
    /// with the millisecond one (a fake clock that overrides only `now`
    /// gets its own milliseconds).
    pub(crate) fn of<S: DurableService + ?Sized>(service: &S) -> Now {
        let at = service.now();
        let precise = service.now_precise();
        let agrees = precise
            .duration_since(UNIX_EPOCH)
            .ok()
            .and_then(|d| Millis::try_from(d.as_millis()).ok())
            .is_some_and(|ms| (ms - at).abs() <= 1);
        Now {
            at,
            time: if agrees { precise } else { millis_to_time(at) },
        }
    }
}

/// Polls a future that is ready at once (tests of services whose calls
/// never wait).
#[cfg(test)]
pub(crate) fn poll_now<F: Future>(f: F) -> F::Output {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::pin!(f).poll(&mut cx) {
        std::task::Poll::Ready(r) => r,
        std::task::Poll::Pending => panic!("expected a ready future"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::model::{OperationId, OperationStatus, OperationType};

    /// A service whose state is `pages` pages of `per_page` steps, paged
    /// by the default `get_state_into`.
    struct Paged {
        pages: usize,
        per_page: usize,
        asked: Mutex<Vec<String>>,
    }

    impl DurableService for Paged {
        async fn checkpoint(
            &self,
            _: &str,
            _: &str,
            _: Vec<OperationUpdate>,
        ) -> Result<CheckpointResponse, ServiceError> {
            Err(ServiceError::Rejected("no checkpoints here".into()))
        }

        fn get_state(
            &self,
            _: &str,
            _: &str,
            marker: &str,
        ) -> impl Future<Output = Result<ExecutionState, ServiceError>> + Send {
            self.asked
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(marker.to_owned());
            let page: usize = marker.parse().unwrap_or(usize::MAX);
            let result = if page < self.pages {
                let operations = (0..self.per_page)
                    .map(|i| step(page * self.per_page + i))
                    .collect();
                let next = (page + 1 < self.pages).then(|| (page + 1).to_string());
                Ok(ExecutionState::new(operations, next))
            } else {
                Err(ServiceError::Rejected(format!("no page {marker:?}")))
            };
            async move { result }
        }
    }

    fn step(n: usize) -> Operation {
        let id = OperationId::new(&format!("op-{n}")).expect("a valid id");
        Operation::new(id, OperationType::Step, OperationStatus::Succeeded)
    }

    /// The default `get_state_into` appends each page in order, and a page
    /// that does not fit grows the vector eightfold: 25 pages of 1,000
    /// after a first page with no room to spare grow it twice (1,000 ->
    /// 8,000 -> 64,000 operations), where doubling would grow it five
    /// times, copying every operation again each time.
    #[test]
    fn pages_appended_by_the_default_grow_the_vector_eightfold() {
        let service = Paged {
            pages: 25,
            per_page: 1_000,
            asked: Mutex::new(Vec::new()),
        };
        let mut operations: Vec<Operation> = (0..1_000).map(step).collect();
        operations.shrink_to_fit();
        let mut capacities = vec![operations.capacity()];
        let mut marker = Some("1".to_owned());
        while let Some(m) = marker.take() {
            marker =
                poll_now(service.get_state_into("arn", "t", &m, &mut operations)).expect("a page");
            if capacities.last() != Some(&operations.capacity()) {
                capacities.push(operations.capacity());
            }
        }
        assert_eq!(operations.len(), 25_000);
        for (n, op) in operations.iter().enumerate() {
            assert_eq!(op.id.as_str(), format!("op-{n}"), "in page order");
        }
        assert_eq!(capacities, [1_000, 8_000, 64_000]);
        assert_eq!(service.asked.lock().unwrap().len(), 24);
    }

    /// The room added beyond a page is capped at `MAX_HEADROOM`: 10,000
    /// operations get 65,536 more, not 70,000; 100,000 grow as vectors
    /// grow (doubling), not eightfold; a page larger than the cap still
    /// fits.
    #[test]
    fn the_room_added_for_a_page_is_capped() {
        let mut operations: Vec<Operation> = (0..100_000).map(step).collect();
        operations.shrink_to_fit();
        reserve_page(&mut operations, 10);
        assert_eq!(operations.capacity(), 200_000, "doubling, as vectors grow");
        let mut full: Vec<Operation> = Vec::with_capacity(200_000);
        full.extend((0..200_000).map(step));
        reserve_page(&mut full, 70_000);
        assert_eq!(full.capacity(), 400_000);
        let mut small: Vec<Operation> = (0..10_000).map(step).collect();
        small.shrink_to_fit();
        reserve_page(&mut small, 1);
        assert_eq!(small.capacity(), 10_000 + MAX_HEADROOM);
    }

    /// A page that fits leaves the vector's room as it is; an empty vector
    /// gets room for its page only; a failed call appends nothing.
    #[test]
    fn a_page_that_fits_does_not_grow_the_vector() {
        let mut operations: Vec<Operation> = Vec::with_capacity(3_000);
        operations.extend((0..1_000).map(step));
        reserve_page(&mut operations, 2_000);
        assert_eq!(operations.capacity(), 3_000);
        let mut empty = Vec::new();
        reserve_page(&mut empty, 100);
        assert_eq!(empty.capacity(), 100);
        let service = Paged {
            pages: 1,
            per_page: 10,
            asked: Mutex::new(Vec::new()),
        };
        let error = poll_now(service.get_state_into("arn", "t", "7", &mut operations));
        assert!(matches!(error, Err(ServiceError::Rejected(_))), "{error:?}");
        assert_eq!(operations.len(), 1_000);
    }
}

//! What the interpreter tells the workflow code it is resuming, on the
//! thread that runs it: whether it replays, and which operation the
//! answer it resumes with is about.

use crate::model::OperationId;

thread_local! {
    /// Whether the workflow code running on this thread (if any) replays
    /// what an earlier invocation ran.
    static REPLAYING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// The operation the context being resumed last started: the one the
    /// answer it resumes with is about.
    static ANSWERED: std::cell::Cell<Option<OperationId>> = const { std::cell::Cell::new(None) };
}

/// The operation whose answer the running workflow code just got (the
/// last operation its context started). Workflow code reads it right
/// after a yield returns, to decode the operation's payload for it.
#[inline]
pub(crate) fn answered_op() -> Option<OperationId> {
    ANSWERED.with(|a| a.get())
}

/// Whether workflow code running now, on this thread, is replaying: it
/// runs again what an earlier invocation of the execution already ran
/// (recorded operations of its context lie ahead of it). False outside
/// workflow code, and in step bodies (which only run live).
///
/// A log line written while this is true was written by an earlier
/// invocation already. Filter on it to log each line once per execution;
/// with `tracing-subscriber`, a *dynamic* filter (a plain `filter_fn` is
/// evaluated once per call site and cached):
///
/// ```text
/// use tracing_subscriber::{filter::dynamic_filter_fn, prelude::*};
/// tracing_subscriber::registry()
///     .with(tracing_subscriber::fmt::layer()
///         .with_filter(dynamic_filter_fn(|_, _| !durable_yield::is_replaying())))
///     .init();
/// ```
#[inline]
pub fn is_replaying() -> bool {
    REPLAYING.with(|r| r.get())
}

/// Marks the workflow code about to run on this thread: replaying or not,
/// resumed with the answer about `answered`.
#[inline]
pub(crate) fn enter(replaying: bool, answered: Option<OperationId>) {
    REPLAYING.with(|r| r.set(replaying));
    ANSWERED.with(|a| a.set(answered));
}

/// No workflow code runs on this thread any more.
#[inline]
pub(crate) fn leave() {
    REPLAYING.with(|r| r.set(false));
    ANSWERED.with(|a| a.set(None));
}

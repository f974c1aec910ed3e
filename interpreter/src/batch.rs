//! Child contexts, map and parallel: their configuration, their results,
//! and the [`Workflow`] methods that run them.
//!
//! A child context is a nested workflow with its own operations, grouped
//! under one CONTEXT operation. Map and parallel run many child contexts
//! (branches) at once: the interpreter starts them in index order, up to a
//! maximum concurrency, and ends the batch when its [`CompletionPolicy`]
//! says so. Each branch's result is checkpointed with the item codec; the
//! whole [`BatchResult`] with the batch codec.
//!
//! ```
//! use durable_yield_interpreter::{Branch, CompletionPolicy, MapConfig, StepError, Workflow};
//!
//! async fn fan_out(mut wf: Workflow, orders: Vec<u64>) -> Result<u64, StepError> {
//!     // One child context per order, at most 10 at a time; up to 20% may fail.
//!     let config = MapConfig::named("orders")
//!         .max_concurrency(10)
//!         .completion(CompletionPolicy::all().tolerated_failure_percentage(20.0))
//!         .item_namer(|order: &u64, _| format!("order-{order}"));
//!     let charged = wf
//!         .map_with(config, orders, |mut wf, order, _index| async move {
//!             wf.step("charge", move |_| async move { Ok(order * 100) }).await
//!         })
//!         .await?;
//!     let total: u64 = charged.successes().sum();
//!     // Two different branches, run side by side.
//!     let both = wf
//!         .parallel("notify", vec![
//!             Branch::named("email", |mut wf| async move {
//!                 wf.step("send", |_| async { Ok(true) }).await
//!             }),
//!             Branch::named("sms", |mut wf| async move {
//!                 wf.step("send", |_| async { Ok(false) }).await
//!             }),
//!         ])
//!         .await?
//!         .into_values()?;
//!     assert_eq!(both, vec![true, false]);
//!     // A child context groups operations under one name.
//!     let receipt: String = wf
//!         .child("receipt", move |mut wf| async move {
//!             wf.step("render", move |_| async move { Ok(format!("total {total}")) }).await
//!         })
//!         .await?;
//!     Ok(receipt.len() as u64)
//! }
//! ```

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use durable_yield_codecs::{Codec, Json, PayloadContext, from_payload, to_payload};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::batch_result::{
    BatchItemStatus, BatchResult, CompletionPolicy, Nesting, splice_json, spliced_is_exact, typed,
};
use crate::coroutine::BoxFuture;
use crate::failure::{BoxError, StepError, error_object_from};
use crate::model::{ErrorObject, OperationId, Payload};
use crate::protocol::Workflow;
use crate::protocol::{
    BatchKind, BatchReply, BatchRequest, BranchSpec, ContextBody, Ended, Fatal, Request, Response,
};
use crate::running::answered_op;

mod run;

/// No summary (the default of [`ChildConfig`], [`MapConfig`] and
/// [`ParallelConfig`]): a child context's result too large to checkpoint
/// is recorded with an empty payload, a batch's with the SDK's summary
/// alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoSummary;

/// A summary generator for values of type `T` (`ChildConfig::summary`,
/// `MapConfig::summary`, `ParallelConfig::summary`: AWS's
/// `summary_generator` / `summaryGenerator`).
pub struct Summary<T>(Arc<dyn Fn(&T) -> String + Send + Sync>);

impl<T> Clone for Summary<T> {
    fn clone(&self) -> Self {
        Summary(self.0.clone())
    }
}

impl<T> fmt::Debug for Summary<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Summary(<generator>)")
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::NoSummary {}
    impl<T> Sealed for super::Summary<T> {}
}

/// What summarizes a value of type `T` too large to checkpoint:
/// [`NoSummary`] or a [`Summary<T>`] (sealed: the configs' `summary`
/// methods make them).
pub trait Summarize<T>: sealed::Sealed + Send + Sync + 'static {
    /// Whether it makes summaries at all (so that a result's size is not
    /// measured for nothing).
    #[doc(hidden)]
    fn active(&self) -> bool {
        true
    }
    /// The summary of `value` (none: no generator).
    #[doc(hidden)]
    fn summarize(&self, value: &T) -> Option<String>;
}

impl<T> Summarize<T> for NoSummary {
    fn active(&self) -> bool {
        false
    }
    fn summarize(&self, _: &T) -> Option<String> {
        None
    }
}

impl<T: 'static> Summarize<T> for Summary<T> {
    fn summarize(&self, value: &T) -> Option<String> {
        Some((self.0)(value))
    }
}

/// How to run a child context: its name, the codec of its result, whether
/// it is recorded at all, its subtype and the summary of a result too
/// large to checkpoint, for [`Workflow::child_with`].
#[derive(Debug, Clone, Default)]
pub struct ChildConfig<C = Json, S = NoSummary> {
    name: Option<Cow<'static, str>>,
    codec: C,
    is_virtual: bool,
    sub_type: Option<Cow<'static, str>>,
    summary: S,
}

impl ChildConfig<Json> {
    /// A named child context with the JSON codec.
    pub fn named(name: impl Into<Cow<'static, str>>) -> Self {
        ChildConfig {
            name: Some(name.into()),
            codec: Json,
            is_virtual: false,
            sub_type: None,
            summary: NoSummary,
        }
    }
    /// An unnamed child context with the JSON codec.
    pub fn new() -> Self {
        ChildConfig::default()
    }
}

impl<C, S> ChildConfig<C, S> {
    /// Names the operation.
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// Picks the codec the result is checkpointed with.
    pub fn codec<C2: Codec + Clone>(self, codec: C2) -> ChildConfig<C2, S> {
        ChildConfig {
            name: self.name,
            codec,
            is_virtual: self.is_virtual,
            sub_type: self.sub_type,
            summary: self.summary,
        }
    }
    /// What to checkpoint instead of a result too large for it (over 256
    /// KiB, recorded with `ReplayChildren` and rebuilt on replay by
    /// re-running the body): `generator`'s text, where without one the
    /// payload is empty (AWS's `summary_generator` / `summaryGenerator`).
    /// Called only for such a result, with the value the body returned;
    /// only for observability (a console shows it), never read back.
    ///
    /// ```
    /// use durable_yield_interpreter::ChildConfig;
    /// let config = ChildConfig::named("report")
    ///     .summary(|lines: &Vec<String>| format!("{} lines", lines.len()));
    /// # let _ = config;
    /// ```
    pub fn summary<T>(
        self,
        generator: impl Fn(&T) -> String + Send + Sync + 'static,
    ) -> ChildConfig<C, Summary<T>> {
        ChildConfig {
            name: self.name,
            codec: self.codec,
            is_virtual: self.is_virtual,
            sub_type: self.sub_type,
            summary: Summary(Arc::new(generator)),
        }
    }
    /// Records the context with this subtype instead of
    /// `RunInChildContext` (AWS's `ChildConfig.sub_type` / `subType`): a
    /// custom operation built from several durable operations labels its
    /// context so, and the history, plugins and spans show it. 1 to 32
    /// characters from `A-Z`, `a-z`, `0-9`, `-` and `_` (anything else
    /// fails the execution with `InvalidConfig` before the context is
    /// checkpointed); empty keeps `RunInChildContext`. Do not reuse a
    /// subtype of the SDK's own operations ([`crate::subtype`]). Replay
    /// checks it like the name: changing it under executions in flight
    /// fails them with `NonDeterministicExecution`.
    ///
    /// ```
    /// use durable_yield_interpreter::ChildConfig;
    /// let config = ChildConfig::named("reserve").sub_type("Reservation");
    /// # let _ = config;
    /// ```
    pub fn sub_type(mut self, sub_type: impl Into<Cow<'static, str>>) -> Self {
        let sub_type = sub_type.into();
        self.sub_type = (!sub_type.is_empty()).then_some(sub_type);
        self
    }
    /// Makes it a *virtual* context, as AWS's SDKs have them: a grouping
    /// that records no CONTEXT operation and no result. It takes one id of
    /// its caller's sequence; its operations get ids of its own namespace
    /// (`H("<its id>-<n>")`) but are recorded as children of the nearest
    /// recorded context around it (none at the root). Its body runs again
    /// on every invocation (its operations replay from their records), and
    /// its value (or error) is computed anew each time. A history that
    /// holds an operation at its id (the code used to record a context
    /// there) fails the execution with `NonDeterministicExecution`.
    pub fn virtual_context(mut self) -> Self {
        self.is_virtual = true;
        self
    }
}

/// How many branches a map or parallel operation without a
/// `max_concurrency` runs at once.
///
/// Branches start in windows: at most this many are active at once, each
/// finished branch making room for the next, and when nothing can go on
/// (every active branch waits for a timer, a callback or another
/// invocation) the window widens by as much again, so a suspended branch
/// holds no room and every branch still starts in the same invocation as
/// with no limit at all (unless the completion policy ends the batch
/// first: then fewer have started). The process holds the state of a
/// window of branches, not of every item of a 25,000-item map: its memory
/// stays bounded and its working set stays in the CPU's caches. Set
/// `max_concurrency` to run more step bodies at once, or fewer.
pub const ADMISSION_WINDOW: usize = 1024;

type ItemNamer<I> = Arc<dyn Fn(&I, usize) -> String + Send + Sync>;

/// What a map and a parallel operation are both configured with: name,
/// concurrency (and the window without one), completion policy, nesting.
#[derive(Debug, Clone)]
struct Shape {
    name: Option<Cow<'static, str>>,
    max_concurrency: Option<usize>,
    window: usize,
    completion: CompletionPolicy,
    nesting: Nesting,
}

impl Shape {
    /// Unnamed, every branch at once (in windows of
    /// [`ADMISSION_WINDOW`]), fail fast, nested.
    fn new() -> Self {
        Shape {
            name: None,
            max_concurrency: None,
            window: ADMISSION_WINDOW,
            completion: CompletionPolicy::default(),
            nesting: Nesting::Nested,
        }
    }

    /// The batch of `kind` over `branches` this shape asks for.
    fn request(self, kind: BatchKind, branches: Vec<BranchSpec>) -> BatchRequest {
        BatchRequest {
            kind,
            name: self.name,
            branches,
            max_concurrency: self.max_concurrency,
            window: self.window,
            completion: self.completion,
            nesting: self.nesting,
        }
    }

    /// The fields a config's `Debug` shows (not the test-only window).
    fn debug_fields(&self, d: &mut fmt::DebugStruct<'_, '_>) {
        d.field("name", &self.name)
            .field("max_concurrency", &self.max_concurrency)
            .field("completion", &self.completion)
            .field("nesting", &self.nesting);
    }
}

/// How to run a map: name, concurrency, completion policy, codecs and
/// item names, for [`Workflow::map_with`].
pub struct MapConfig<I, C = Json, B = Json, S = NoSummary> {
    shape: Shape,
    item_codec: C,
    batch_codec: B,
    namer: Option<ItemNamer<I>>,
    summary: S,
}

impl<I, C: fmt::Debug, B: fmt::Debug, S: fmt::Debug> fmt::Debug for MapConfig<I, C, B, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("MapConfig");
        self.shape.debug_fields(&mut d);
        d.field("item_codec", &self.item_codec)
            .field("batch_codec", &self.batch_codec)
            .field("item_namer", &self.namer.is_some())
            .field("summary", &self.summary)
            .finish()
    }
}

impl<I> MapConfig<I> {
    /// A named map: every item at once, fail fast, JSON for items and
    /// the batch, items named `map-item-<i>`.
    pub fn named(name: impl Into<Cow<'static, str>>) -> Self {
        MapConfig::new().name(name)
    }
    /// An unnamed map with the defaults.
    pub fn new() -> Self {
        MapConfig {
            shape: Shape::new(),
            item_codec: Json,
            batch_codec: Json,
            namer: None,
            summary: NoSummary,
        }
    }
}

impl<I> Default for MapConfig<I> {
    fn default() -> Self {
        MapConfig::new()
    }
}

impl<I, C, B, S> MapConfig<I, C, B, S> {
    /// Names the operation.
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.shape.name = Some(name.into());
        self
    }
    /// Runs at most `n` items at once (at least 1; a suspended item, e.g.
    /// one that waits, keeps its slot). Unset: every item starts in the
    /// same invocation, at most [`ADMISSION_WINDOW`] of them running at
    /// once, and a suspended item keeps no slot.
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.shape.max_concurrency = Some(n);
        self
    }
    /// For tests of the SDK's own window machinery, not a stable API:
    /// the window of a map without `max_concurrency` (see
    /// [`ADMISSION_WINDOW`], the default; 0 counts as 1), so that small
    /// batches run in windows too.
    #[doc(hidden)]
    pub fn admission_window(mut self, n: usize) -> Self {
        self.shape.window = n;
        self
    }
    /// When the map ends (see [`CompletionPolicy`]).
    pub fn completion(mut self, policy: CompletionPolicy) -> Self {
        self.shape.completion = policy;
        self
    }
    /// How items are recorded (see [`Nesting`]; [`Nesting::Nested`] by
    /// default).
    pub fn nesting(mut self, nesting: Nesting) -> Self {
        self.shape.nesting = nesting;
        self
    }
    /// Names each item's context from the item and its index (called for
    /// every item, started or not). Names must be 1 to 256 printable ASCII
    /// characters.
    pub fn item_namer(
        mut self,
        namer: impl Fn(&I, usize) -> String + Send + Sync + 'static,
    ) -> Self {
        self.namer = Some(Arc::new(namer));
        self
    }
    /// Picks the codec each item's result is checkpointed with.
    pub fn item_codec<C2: Codec + Clone>(self, codec: C2) -> MapConfig<I, C2, B, S> {
        MapConfig {
            shape: self.shape,
            item_codec: codec,
            batch_codec: self.batch_codec,
            namer: self.namer,
            summary: self.summary,
        }
    }
    /// Picks the codec the [`BatchResult`] is checkpointed with.
    pub fn batch_codec<B2: Codec + Clone>(self, codec: B2) -> MapConfig<I, C, B2, S> {
        MapConfig {
            shape: self.shape,
            item_codec: self.item_codec,
            batch_codec: codec,
            namer: self.namer,
            summary: self.summary,
        }
    }
    /// A text of the caller's for the summary checkpointed instead of a
    /// result too large for it (over 256 KiB): `generator`'s text is
    /// stored under the summary's `summary` key, beside the fields replay
    /// needs (AWS's `summary_generator` / `summaryGenerator`). Called only
    /// for such a result; only for observability, never read back.
    ///
    /// ```
    /// use durable_yield_interpreter::{BatchResult, MapConfig};
    /// let config = MapConfig::<u32>::named("reports").summary(|r: &BatchResult<String>| {
    ///     format!("{} reports", r.success_count())
    /// });
    /// # let _ = config;
    /// ```
    pub fn summary<T>(
        self,
        generator: impl Fn(&BatchResult<T>) -> String + Send + Sync + 'static,
    ) -> MapConfig<I, C, B, Summary<BatchResult<T>>> {
        MapConfig {
            shape: self.shape,
            item_codec: self.item_codec,
            batch_codec: self.batch_codec,
            namer: self.namer,
            summary: Summary(Arc::new(generator)),
        }
    }
}

/// How to run a parallel operation: name, concurrency, completion policy
/// and codecs, for [`Workflow::parallel_with`].
#[derive(Clone)]
pub struct ParallelConfig<C = Json, B = Json, S = NoSummary> {
    shape: Shape,
    item_codec: C,
    batch_codec: B,
    summary: S,
}

impl<C: fmt::Debug, B: fmt::Debug, S: fmt::Debug> fmt::Debug for ParallelConfig<C, B, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ParallelConfig");
        self.shape.debug_fields(&mut d);
        d.field("item_codec", &self.item_codec)
            .field("batch_codec", &self.batch_codec)
            .field("summary", &self.summary)
            .finish()
    }
}

impl ParallelConfig {
    /// A named parallel operation: every branch at once, fail fast, JSON.
    pub fn named(name: impl Into<Cow<'static, str>>) -> Self {
        ParallelConfig::new().name(name)
    }
    /// An unnamed parallel operation with the defaults.
    pub fn new() -> Self {
        ParallelConfig {
            shape: Shape::new(),
            item_codec: Json,
            batch_codec: Json,
            summary: NoSummary,
        }
    }
}

impl Default for ParallelConfig {
    fn default() -> Self {
        ParallelConfig::new()
    }
}

impl<C, B, S> ParallelConfig<C, B, S> {
    /// Names the operation.
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.shape.name = Some(name.into());
        self
    }
    /// Runs at most `n` branches at once (at least 1; a suspended branch
    /// keeps its slot). Unset: every branch starts in the same
    /// invocation, at most [`ADMISSION_WINDOW`] of them running at once,
    /// and a suspended branch keeps no slot.
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.shape.max_concurrency = Some(n);
        self
    }
    /// For tests of the SDK's own window machinery, not a stable API:
    /// the window of a parallel operation without `max_concurrency` (see
    /// [`ADMISSION_WINDOW`], the default; 0 counts as 1), so that small
    /// batches run in windows too.
    #[doc(hidden)]
    pub fn admission_window(mut self, n: usize) -> Self {
        self.shape.window = n;
        self
    }
    /// When the operation ends (see [`CompletionPolicy`]).
    pub fn completion(mut self, policy: CompletionPolicy) -> Self {
        self.shape.completion = policy;
        self
    }
    /// How branches are recorded (see [`Nesting`]; [`Nesting::Nested`] by
    /// default).
    pub fn nesting(mut self, nesting: Nesting) -> Self {
        self.shape.nesting = nesting;
        self
    }
    /// Picks the codec each branch's result is checkpointed with.
    pub fn item_codec<C2: Codec + Clone>(self, codec: C2) -> ParallelConfig<C2, B, S> {
        ParallelConfig {
            shape: self.shape,
            item_codec: codec,
            batch_codec: self.batch_codec,
            summary: self.summary,
        }
    }
    /// Picks the codec the [`BatchResult`] is checkpointed with.
    pub fn batch_codec<B2: Codec + Clone>(self, codec: B2) -> ParallelConfig<C, B2, S> {
        ParallelConfig {
            shape: self.shape,
            item_codec: self.item_codec,
            batch_codec: codec,
            summary: self.summary,
        }
    }
    /// A text of the caller's for the summary checkpointed instead of a
    /// result too large for it (see [`MapConfig::summary`]).
    pub fn summary<T>(
        self,
        generator: impl Fn(&BatchResult<T>) -> String + Send + Sync + 'static,
    ) -> ParallelConfig<C, B, Summary<BatchResult<T>>> {
        ParallelConfig {
            shape: self.shape,
            item_codec: self.item_codec,
            batch_codec: self.batch_codec,
            summary: Summary(Arc::new(generator)),
        }
    }
}

type BranchBody<T> = Box<dyn FnOnce(Workflow) -> BoxFuture<Result<T, ErrorObject>> + Send>;

/// One branch of a [`Workflow::parallel`] operation: a body run as a child
/// context on its own [`Workflow`] handle.
pub struct Branch<T> {
    name: Option<Cow<'static, str>>,
    body: BranchBody<T>,
}

impl<T> fmt::Debug for Branch<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Branch")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Branch<T> {
    /// A branch named `parallel-branch-<i>` after its position.
    pub fn new<F, Fut, E>(body: F) -> Self
    where
        F: FnOnce(Workflow) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        Branch {
            name: None,
            body: Box::new(move |wf| {
                let run = body(wf);
                Box::pin(async move { run.await.map_err(error_object_from) })
            }),
        }
    }
    /// A named branch.
    pub fn named<F, Fut, E>(name: impl Into<Cow<'static, str>>, body: F) -> Self
    where
        F: FnOnce(Workflow) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        Branch {
            name: Some(name.into()),
            ..Branch::new(body)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch_result::{BatchItem, BatchStatus, BatchSummary, CompletionReason};

    #[test]
    fn default_names_are_the_formatted_ones() {
        for n in [0, 7, 10, 99, 1000, 24_999, usize::MAX] {
            let map = BatchKind::Map.default_branch_name(n);
            assert_eq!(map.as_str(), format!("map-item-{n}"));
            let parallel = BatchKind::Parallel.default_branch_name(n);
            assert_eq!(parallel.as_str(), format!("parallel-branch-{n}"));
        }
    }

    #[test]
    fn completion_rules() {
        let p = CompletionPolicy::default();
        assert_eq!(p.evaluate(3, 1, 0, &[]), None);
        assert_eq!(
            p.evaluate(3, 1, 1, &[]),
            Some(CompletionReason::FailureToleranceExceeded)
        );
        assert_eq!(
            p.evaluate(3, 3, 0, &[]),
            Some(CompletionReason::AllCompleted)
        );
        assert_eq!(
            p.evaluate(0, 0, 0, &[]),
            Some(CompletionReason::AllCompleted)
        );
        let all = CompletionPolicy::all();
        assert_eq!(all.evaluate(3, 0, 2, &[]), None);
        assert_eq!(
            all.evaluate(3, 0, 3, &[]),
            Some(CompletionReason::AllCompleted)
        );
        let min = CompletionPolicy::default().min_successful(2);
        assert_eq!(
            min.evaluate(4, 1, 1, &[]),
            None,
            "only min_successful: never stops"
        );
        assert_eq!(
            min.evaluate(4, 2, 1, &[]),
            Some(CompletionReason::MinSuccessfulReached)
        );
        let count = CompletionPolicy::default().tolerated_failure_count(1);
        assert_eq!(count.evaluate(3, 0, 1, &[]), None);
        assert_eq!(
            count.evaluate(3, 0, 2, &[]),
            Some(CompletionReason::FailureToleranceExceeded)
        );
        let pct = CompletionPolicy::default().tolerated_failure_percentage(25.0);
        assert_eq!(pct.evaluate(8, 0, 2, &[]), None);
        assert_eq!(
            pct.evaluate(8, 0, 3, &[]),
            Some(CompletionReason::FailureToleranceExceeded)
        );
        // Every branch finished but too many failed: the tolerance wins.
        assert_eq!(
            count.evaluate(2, 0, 2, &[]),
            Some(CompletionReason::FailureToleranceExceeded)
        );
        assert!(
            CompletionPolicy::default()
                .min_successful(0)
                .invalid()
                .is_some()
        );
        assert!(
            CompletionPolicy::default()
                .tolerated_failure_percentage(101.0)
                .invalid()
                .is_some()
        );
        assert!(
            CompletionPolicy::default()
                .tolerated_failure_percentage(f64::NAN)
                .invalid()
                .is_some()
        );
        assert!(CompletionPolicy::all().invalid().is_none());
    }

    #[test]
    fn a_predicate_decides_alone_and_first() {
        use crate::batch_result::{CompletionDecision, CompletionItem};
        let quorum = CompletionPolicy::should_complete(|s| {
            if s.success_count >= 2 {
                CompletionDecision::succeed()
            } else if s.failure_count >= 2 {
                CompletionDecision::fail()
            } else {
                CompletionDecision::Continue
            }
        });
        assert!(quorum.has_predicate() && quorum.invalid().is_none());
        // No failure ends the batch by itself.
        assert_eq!(quorum.evaluate(4, 0, 1, &[]), None);
        assert_eq!(
            quorum.evaluate(4, 2, 1, &[]),
            Some(CompletionReason::CustomCompletionSucceeded)
        );
        assert_eq!(
            quorum.evaluate(4, 1, 2, &[]),
            Some(CompletionReason::CustomCompletionFailed)
        );
        // Asked before "every branch finished": its decision is the reason.
        assert_eq!(
            quorum.evaluate(2, 2, 0, &[]),
            Some(CompletionReason::CustomCompletionSucceeded)
        );
        // Every branch finished and it says go on: ALL_COMPLETED.
        assert_eq!(
            quorum.evaluate(2, 1, 1, &[]),
            Some(CompletionReason::AllCompleted)
        );
        assert_eq!(
            quorum.evaluate(0, 0, 0, &[]),
            Some(CompletionReason::AllCompleted)
        );
        // It sees what it is given: the counts and each branch.
        let first_done = CompletionPolicy::should_complete(|s| {
            assert_eq!(s.completed_count, s.success_count + s.failure_count);
            match s.items.first().and_then(CompletionItem::status) {
                Some(BatchItemStatus::Succeeded) => CompletionDecision::succeed(),
                _ => CompletionDecision::Continue,
            }
        });
        let mut items = vec![
            CompletionItem::new(0, Some("a".into())),
            CompletionItem::new(1, None),
        ];
        assert_eq!(first_done.evaluate(2, 0, 0, &items), None);
        items[0].set_status(Some(BatchItemStatus::Succeeded));
        assert_eq!(
            first_done.evaluate(2, 1, 0, &items),
            Some(CompletionReason::CustomCompletionSucceeded)
        );
        assert_eq!(items[0].name(), Some("a"));
        assert_eq!((items[1].index(), items[1].name()), (1, None));
        // Not with the thresholds; clones share the predicate.
        for mixed in [
            quorum.clone().min_successful(1),
            quorum.clone().tolerated_failure_count(0),
            quorum.clone().tolerated_failure_percentage(10.0),
        ] {
            assert!(
                mixed
                    .invalid()
                    .is_some_and(|m| m.starts_with("should_complete cannot be combined"))
            );
        }
        assert_eq!(quorum.clone(), quorum);
        assert_ne!(quorum, first_done);
        assert_ne!(quorum, CompletionPolicy::default());
        assert!(format!("{quorum:?}").contains("should_complete: Some(\"<predicate>\")"));
    }

    #[test]
    fn a_custom_decision_says_how_the_batch_stands() {
        let item = |index, status| BatchItem {
            index,
            status,
            result: (status == BatchItemStatus::Succeeded).then_some(index as u32),
            error: (status == BatchItemStatus::Failed).then(|| ErrorObject::new("E", "m")),
        };
        let batch = |reason, items| BatchResult {
            items,
            completion_reason: reason,
            name: Some("quorum".into()),
        };
        // Failed by the decision, no branch failed: AWS's BatchCompletionError.
        let failed = batch(
            CompletionReason::CustomCompletionFailed,
            vec![
                item(0, BatchItemStatus::Succeeded),
                item(1, BatchItemStatus::Started),
            ],
        );
        assert_eq!(failed.status(), BatchStatus::Failed);
        let json = serde_json::to_string(&failed).unwrap();
        assert!(json.ends_with(r#""completionReason":"CUSTOM_COMPLETION_FAILED"}"#));
        let back: BatchResult<u32> = serde_json::from_str(&json).unwrap();
        assert_eq!(
            back.completion_reason(),
            CompletionReason::CustomCompletionFailed
        );
        assert_eq!(back.status(), BatchStatus::Failed);
        let error = failed.into_values().unwrap_err();
        assert_eq!(error.error_type(), Some("BatchCompletionError"));
        assert_eq!(
            error.message(),
            Some("Batch completed as failed by should_complete (CUSTOM_COMPLETION_FAILED)")
        );
        assert_eq!(
            (error.operation_kind(), error.step_name()),
            ("batch", Some("quorum"))
        );
        // A failed branch's own error comes first.
        let both = batch(
            CompletionReason::CustomCompletionFailed,
            vec![item(0, BatchItemStatus::Failed)],
        );
        assert_eq!(both.into_values().unwrap_err().error_type(), Some("E"));
        // Succeeded by the decision, whatever failed.
        let succeeded = batch(
            CompletionReason::CustomCompletionSucceeded,
            vec![
                item(0, BatchItemStatus::Failed),
                item(1, BatchItemStatus::Succeeded),
            ],
        );
        assert_eq!(succeeded.status(), BatchStatus::Succeeded);
        assert!(succeeded.has_failures());
        for reason in [
            CompletionReason::CustomCompletionSucceeded,
            CompletionReason::CustomCompletionFailed,
        ] {
            assert_eq!(CompletionReason::parse(reason.as_str()), Some(reason));
        }
    }

    #[test]
    fn batch_results_serialize_like_the_other_sdks() {
        let result = BatchResult {
            items: vec![
                BatchItem {
                    index: 0,
                    status: BatchItemStatus::Succeeded,
                    result: Some("a".to_owned()),
                    error: None,
                },
                BatchItem {
                    index: 1,
                    status: BatchItemStatus::Failed,
                    result: None,
                    error: Some(ErrorObject::new("E", "m")),
                },
            ],
            completion_reason: CompletionReason::AllCompleted,
            name: None,
        };
        let json = serde_json::to_string(&result).unwrap();
        assert_eq!(
            json,
            r#"{"all":[{"index":0,"status":"SUCCEEDED","result":"a","error":null},{"index":1,"status":"FAILED","result":null,"error":{"ErrorType":"E","ErrorMessage":"m","ErrorData":null,"StackTrace":null}}],"completionReason":"ALL_COMPLETED"}"#
        );
        let back: BatchResult<String> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, result);
        assert_eq!(
            back.clone().into_values().unwrap_err().error_type(),
            Some("E")
        );
        assert_eq!(back.successes().collect::<Vec<_>>(), vec!["a"]);
        let summary = BatchSummary {
            kind: "MapResult".into(),
            total_count: 4,
            completion_reason: "MIN_SUCCESSFUL_REACHED".into(),
            started_indexes: None,
            completed_indexes: Some(vec![0, 2]),
            started_count: 2,
            success_count: 2,
            failure_count: 0,
            status: "SUCCEEDED".into(),
            summary: None,
        };
        assert_eq!(summary.started(), Some(vec![1, 3]));
        // Another SDK may list them in any order.
        let unsorted = BatchSummary {
            completed_indexes: Some(vec![2, 0]),
            ..summary.clone()
        };
        assert_eq!(unsorted.started(), Some(vec![1, 3]));
    }
}

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

use durable_yield_codecs::{Codec, Json, PayloadContext};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::batch_result::{
    BatchItemStatus, BatchResult, Nesting, decode_recorded, splice_json, spliced_is_exact, typed,
};
use crate::completion::CompletionPolicy;
use crate::coroutine::BoxFuture;
use crate::failure::{BoxError, StepError, error_object_from};
use crate::model::{ErrorObject, OperationId, Payload};
use crate::protocol::Workflow;
use crate::protocol::{
    BatchKind, BatchReply, BatchRequest, Bodies, ContextBody, Ended, Fatal, Request, Response,
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

    /// The batch of `kind` this shape asks for, over the branches named
    /// `names` (none: the default name) whose bodies are `bodies`.
    fn request(
        self,
        kind: BatchKind,
        names: Vec<Option<Cow<'static, str>>>,
        bodies: Bodies,
    ) -> BatchRequest {
        BatchRequest {
            kind,
            name: self.name,
            names,
            bodies,
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
mod tests;

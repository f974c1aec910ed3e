//! OpenTelemetry spans for durable executions (feature `otel`), as AWS's
//! OpenTelemetry plugins for its durable-execution SDKs write them (the
//! `otel-invocation` and `otel-execution` conformance requirements), so that
//! a Rust function's trace reads like a Python or JavaScript one in the same
//! backend.
//!
//! [`OtelPlugin`] is a lifecycle [`Plugin`] that writes, through any
//! OpenTelemetry [`Tracer`], one of two views of an execution
//! ([`OtelView`]):
//!
//! **Per invocation** ([`OtelView::Invocation`], the default): what each
//! invocation did.
//!
//! | span | when | parent | links | `durable.*` attributes |
//! |---|---|---|---|---|
//! | `Workflow` | once, when the execution ends | the execution's ancestor (below) | none | `execution.arn`, `execution.status` |
//! | `Invocation` | every invocation | the execution's ancestor, or the span current around the invocation if it is on the execution's trace | none | `execution.arn`, `invocation.first`, `invocation.status` |
//! | the operation's name (its id if unnamed) | every operation the invocation starts, or sees going on or ending | its context's span in this invocation, else `Invocation` | its first span if it began in an earlier invocation, then `Workflow` | `execution.arn`, `operation.id`, `.type`, `.subtype`, `.status`, `.name`; `attempt.number` on a finished step |
//! | `<name> attempt <n>` | every step attempt and condition check | the operation's span | `Workflow` | `execution.arn`, `operation.id`, `.type`, `.subtype`, `.name`, `attempt.number`, `attempt.outcome` |
//!
//! An operation that spans invocations (a wait, a retried step, a callback)
//! gets a span in each invocation that sees it: the first with a span id
//! derived from the ARN and the operation id, the later ones (continuation
//! spans) with fresh ids and a link to the first; `durable.operation.id`
//! ties them together. A
//! span closed while its operation goes on carries the status it had then
//! (`STARTED`, `PENDING`) and no attempt number.
//!
//! **Per execution** ([`OtelView::Execution`]): one span per operation for
//! the whole execution.
//!
//! A function shows one view: both are in the exclusive group
//! [`OTEL_VIEW_GROUP`], as AWS's two
//! plugin factories are, so registering a second `OtelPlugin` on a handler
//! or runner is refused (`plugin` panics, `try_plugin` returns a
//! [`PluginConflict`](crate::plugin::PluginConflict)).
//!
//! | span | when | parent | links |
//! |---|---|---|---|
//! | `Workflow` | once, when the execution ends | the execution's ancestor (below) | none |
//! | `Invocation` | every invocation | as in the invocation view | none |
//! | the operation's name | once, by the invocation that sees it end | its context's span, else `Workflow` | the `Invocation` that wrote it |
//! | `<name> attempt <n>` | every step attempt, in the invocation that runs it | the operation's span | the `Invocation` it ran in |
//!
//! An operation's span has the id derived from the ARN and its id, so the
//! attempts and children written by earlier invocations point at it before
//! it exists. It starts when the operation started (as the SDK saw it if
//! it began in the invocation that writes the span; else as the service
//! recorded it or the SDK first saw it, whichever is earlier; no later
//! than what ran under it in this invocation) and ends when it ended (as the SDK
//! saw it, or as the service recorded it for an operation that ended
//! between invocations: a wait's timer, an answered callback). Operations
//! that never end (an execution that timed out) have no span.
//!
//! **One trace per execution.** Every span of an execution belongs to one
//! trace: the one in the X-Ray trace header Lambda passes the invocation
//! (the durable service keeps it for the execution), or, without one (the
//! local runner, unless [`LocalRunner::lambda_trace_headers`]), a trace id
//! derived from the execution ARN and start time, as AWS's plugins derive
//! it (its first 32 bits are the start time in seconds, as X-Ray expects).
//! The header is read part by part, as AWS's plugin (2.0.0) reads it: a
//! valid `Root` is the trace even without a valid `Parent`, and other
//! parts (`Lineage`), a trailing `;` or spaces change nothing.
//! `Workflow`'s parent is the execution's ancestor, as in AWS's plugin:
//! the segment the header names (Lambda's, not written by this plugin),
//! or without a header naming both a `Root` and a `Parent`, a synthetic
//! root, `DurableExecutionRoot`: a
//! zero-length span at the execution's start, its id derived from the ARN,
//! with `durable.execution.arn` and `durable.execution.synthetic_root`,
//! written again by every invocation (so that a lost flush is made good;
//! a backend keeps one). A chained invoke's START carries a trace header
//! naming the invoke's span ([`InvocationHooks::trace_header`]), so that
//! the execution it starts joins the caller's trace.
//!
//! [`LocalRunner::lambda_trace_headers`]: crate::LocalRunner::lambda_trace_headers
//!
//! Derived span and trace ids need the [`DeterministicIds`] generator on
//! the tracer provider; without it spans get random ids, and the
//! `Workflow` span does not have the id its invocations and operations
//! point to (a warning says so, once).
//!
//! **User code in its span.** As AWS's plugins do, the span user code
//! belongs to is the current OpenTelemetry context while it runs (entered
//! around each poll, see [Scopes](crate::plugin#scopes)): a step attempt's
//! span around its body (or a wait-for-condition check), a context's span
//! around the code of a child context, map item, parallel branch or
//! wait-for-callback, the `Invocation` span around the rest of the
//! workflow's code. Spans user code starts with any tracer nest under it,
//! and with feature `logging` the
//! `JsonLogLayer` (`durable_yield::logging`) stamps each line with its
//! `traceId`, `spanId` and `otelTraceSampled`, as AWS's plugin stamps its
//! SDK's log records. (Spans made from `tracing` spans by
//! `tracing-opentelemetry` take their parent from the enclosing `tracing`
//! span first: in a step body that is the SDK's `durable_operation` span,
//! not this plugin's attempt span. Start spans with an OpenTelemetry
//! tracer to nest them under the plugin's.)
//!
//! **Sampling.** One decision per invocation covers every span the plugin
//! writes, as in AWS's plugin: the trace header's `Sampled=1` or
//! `Sampled=0` (with `Sampled=0` no span is written, the synthetic root
//! neither); without one, the provider's sampler on the synthetic root
//! (with a trace id ratio, the same answer for every invocation of an
//! execution), which every other span follows through its parent's flags
//! (with the SDK's default, parent-based samplers). An execution's trace is
//! whole or absent. Two differences from AWS's plugin, both because
//! OpenTelemetry's Rust SDK lets only the sampler decide a span: a header
//! naming a `Parent` but no `Sampled` counts as sampled (AWS's plugin asks
//! the sampler, which with the default sampler says the same); and with
//! `Sampled=1` and a synthetic root, a sampler that drops roots drops that
//! one span (AWS's plugin overrides it), while every other span is kept.
//!
//! **Times.** Spans start and end at the instants the SDK observed, at the
//! clock's full resolution (the system clock on Lambda; the local runner's
//! virtual clock, so that local traces are reproducible), and at the
//! service's recorded timestamps for what the SDK did not observe. Within
//! an invocation instants never go backwards (equal ones are a microsecond
//! apart), so that every span lies within its parent.
//!
//! **Flushing.** Lambda freezes the process once an invocation's response
//! is sent, so spans still buffered in a batch exporter would be lost.
//! [`OtelPlugin::flush`] (or [`OtelPlugin::from_provider`]) makes the plugin
//! force a flush of the tracer provider at the end of every invocation,
//! before the response goes back, bounded by [`OtelPlugin::flush_timeout`].
//!
//! ```
//! use durable_yield::otel::{DeterministicIds, OtelPlugin, OtelView};
//! use durable_yield::LocalRunner;
//! use opentelemetry_sdk::trace::SdkTracerProvider;
//!
//! let provider = SdkTracerProvider::builder()
//!     .with_id_generator(DeterministicIds::default())
//!     // .with_batch_exporter(your OTLP exporter)
//!     .build();
//! let runner = LocalRunner::new()
//!     .plugin(OtelPlugin::from_provider(&provider).view(OtelView::Execution));
//! ```

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    Link, Span, SpanBuilder, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags,
    TraceState, Tracer, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};

use crate::BoxError;
use crate::model::{ErrorObject, Millis, OperationId, OperationStatus, OperationType};
use crate::plugin::{
    AttemptEvent, ChainedInvokeStart, HookResult, InvocationEnd, InvocationEndStatus,
    InvocationHooks, InvocationStart, OTEL_VIEW_GROUP, OperationEvent, Plugin, Scope, UserCode,
};
use crate::service::millis_to_time;

mod hooks;
mod ids;

pub use ids::{DeterministicIds, parse_trace_header};
use ids::{
    NEXT_IDS, TraceHeader, derived_span_id, derived_trace_id, operation_span_id, trace_header,
};

/// Which view of an execution [`OtelPlugin`] writes (see the
/// [module docs](self)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OtelView {
    /// A span per operation in each invocation that sees it, under that
    /// invocation's span, linked to the `Workflow` span (AWS's
    /// `InvocationOtelPlugin`).
    #[default]
    Invocation,
    /// One span per operation for the whole execution, under the
    /// `Workflow` span, linked to the invocation that wrote it (AWS's
    /// `ExecutionOtelPlugin`).
    Execution,
}

/// The default bound on the flush at the end of an invocation.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// A lifecycle plugin that writes the execution's spans (see the
/// [module docs](self)).
pub struct OtelPlugin<T> {
    tracer: Arc<T>,
    view: OtelView,
    flush: Option<SdkTracerProvider>,
    flush_timeout: Duration,
    from_header: bool,
    warned: Arc<AtomicBool>,
}

impl OtelPlugin<SdkTracer> {
    /// Writes spans with a tracer of `provider` (instrumentation scope
    /// `durable-yield`) and flushes `provider` at the end of every
    /// invocation. Install [`DeterministicIds`] on the provider.
    pub fn from_provider(provider: &SdkTracerProvider) -> Self {
        OtelPlugin::new(provider.tracer("durable-yield")).flush(provider.clone())
    }
}

impl<T> OtelPlugin<T>
where
    T: Tracer + Send + Sync + 'static,
    T::Span: Send + Sync + 'static,
{
    /// Writes spans with `tracer`, in the per-invocation view, without
    /// flushing (see [`OtelPlugin::flush`]).
    pub fn new(tracer: T) -> Self {
        OtelPlugin {
            tracer: Arc::new(tracer),
            view: OtelView::Invocation,
            flush: None,
            flush_timeout: FLUSH_TIMEOUT,
            from_header: true,
            warned: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether the execution's trace is the one of the X-Ray trace header
    /// Lambda passes (`true`, the default: the durable service keeps one
    /// trace for the execution), or always the one derived from the
    /// execution ARN and start time. Turn it off where every invocation
    /// comes with a trace of its own (`cargo lambda watch` makes one up
    /// per request), or the execution would be split across traces.
    pub fn trace_from_header(mut self, from_header: bool) -> Self {
        self.from_header = from_header;
        self
    }

    /// Which view to write; [`OtelView::Invocation`] by default.
    pub fn view(mut self, view: OtelView) -> Self {
        self.view = view;
        self
    }

    /// Force-flushes `provider` (the one `tracer` comes from) at the end of
    /// every invocation, before its response goes back: on Lambda the
    /// process is frozen after that, and spans still buffered would be
    /// lost. A flush error is logged; a flush that takes longer than
    /// [`OtelPlugin::flush_timeout`] is not waited for.
    pub fn flush(mut self, provider: SdkTracerProvider) -> Self {
        self.flush = Some(provider);
        self
    }

    /// How long the end of an invocation waits for the flush (2 s by
    /// default).
    pub fn flush_timeout(mut self, timeout: Duration) -> Self {
        self.flush_timeout = timeout;
        self
    }
}

impl<T> Plugin for OtelPlugin<T>
where
    T: Tracer + Send + Sync + 'static,
    T::Span: Send + Sync + 'static,
{
    fn invocation(
        &self,
        start: &InvocationStart<'_>,
    ) -> Result<Box<dyn InvocationHooks>, BoxError> {
        Ok(Box::new(hooks::OtelHooks::new(self, start)))
    }

    fn name(&self) -> &str {
        match self.view {
            OtelView::Invocation => "durable_yield::otel::OtelPlugin (invocation view)",
            OtelView::Execution => "durable_yield::otel::OtelPlugin (execution view)",
        }
    }

    /// Both views are in [`OTEL_VIEW_GROUP`], as AWS's two plugin
    /// factories are: a function shows one view (registering a second
    /// `OtelPlugin` is refused).
    fn exclusive_groups(&self) -> &[&str] {
        &[OTEL_VIEW_GROUP]
    }
}

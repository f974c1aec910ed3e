//! OpenTelemetry spans (feature `otel`) in both of AWS's views, exported to
//! an in-memory exporter, checked against what AWS's conformance
//! requirements (`aws-durable-execution-conformance-tests-otel` 0.2.0,
//! suites `otel-invocation` and `otel-execution`) assert: names, the exact
//! `durable.*` attribute sets, statuses, parents, links, one root per
//! trace, order in time; and the plugin's own promises (continuation spans
//! for callbacks the service does not list, flushing at the end of each
//! invocation, trace propagation into chained invokes, full-resolution
//! times).

use std::collections::BTreeSet;
use std::time::{Duration, UNIX_EPOCH};

use durable_yield::lambda::DurableFunction;
use durable_yield::local::CallbackAnswer;
use durable_yield::model::{InvocationInput, OperationType};
use durable_yield::otel::{DeterministicIds, OtelPlugin, OtelView};
use durable_yield::retry::FixedDelay;
use durable_yield::{
    Branch, CheckpointBatching, LocalRun, LocalRunner, StepConfig, StepError, StepFailure,
    WaitForCallbackConfig, Workflow,
};
use durable_yield_interpreter::id::operation_id;
use opentelemetry::trace::{SpanId, SpanKind, Status, TraceId};
use opentelemetry::{Key, Value};
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, InMemorySpanExporter, SdkTracerProvider, SpanData,
};

// ---------------------------------------------------------------- helpers

pub(crate) fn attr(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == Key::from(key.to_owned()))
        .map(|kv| kv.value.clone())
}

pub(crate) fn text(span: &SpanData, key: &str) -> String {
    attr(span, key).map(|v| v.to_string()).unwrap_or_default()
}

/// The span's `durable.*` attribute keys, without the prefix, sorted: the
/// suites compare this set exactly.
pub(crate) fn keys(span: &SpanData) -> Vec<String> {
    let mut keys: Vec<String> = span
        .attributes
        .iter()
        .filter_map(|kv| kv.key.as_str().strip_prefix("durable.").map(str::to_owned))
        .collect();
    keys.sort();
    keys
}

pub(crate) fn sorted(keys: &[&str]) -> Vec<String> {
    let mut keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    keys.sort();
    keys
}

/// What an operation span holds in the invocation view.
pub(crate) const OPERATION: &[&str] = &[
    "execution.arn",
    "operation.id",
    "operation.type",
    "operation.subtype",
    "operation.status",
    "operation.name",
];
/// ... and a finished step's.
pub(crate) const FINISHED_STEP: &[&str] = &[
    "execution.arn",
    "operation.id",
    "operation.type",
    "operation.subtype",
    "operation.status",
    "operation.name",
    "attempt.number",
];
/// An attempt span's.
pub(crate) const ATTEMPT: &[&str] = &[
    "execution.arn",
    "operation.id",
    "operation.type",
    "operation.subtype",
    "operation.name",
    "attempt.number",
    "attempt.outcome",
];
pub(crate) const INVOCATION: &[&str] = &["execution.arn", "invocation.first", "invocation.status"];
pub(crate) const WORKFLOW: &[&str] = &["execution.arn", "execution.status"];

pub(crate) struct Spans(Vec<SpanData>);

impl Spans {
    fn named(&self, name: &str) -> Vec<&SpanData> {
        self.0.iter().filter(|s| s.name == name).collect()
    }

    fn one(&self, name: &str) -> &SpanData {
        let found = self.named(name);
        assert_eq!(found.len(), 1, "spans named {name}: {found:#?}");
        found[0]
    }

    /// The span named `name` whose operation status is `status`.
    fn with_status(&self, name: &str, status: &str) -> &SpanData {
        let found: Vec<&SpanData> = self
            .named(name)
            .into_iter()
            .filter(|s| text(s, "durable.operation.status") == status)
            .collect();
        assert_eq!(found.len(), 1, "{name} {status}: {:#?}", self.names());
        found[0]
    }

    fn by_id(&self, id: SpanId) -> Option<&SpanData> {
        self.0.iter().find(|s| s.span_context.span_id() == id)
    }

    fn parent(&self, span: &SpanData) -> Option<&SpanData> {
        self.by_id(span.parent_span_id)
    }

    fn parent_name(&self, span: &SpanData) -> String {
        self.parent(span)
            .map(|p| p.name.to_string())
            .unwrap_or_else(|| format!("<{}>", span.parent_span_id))
    }

    /// The names of the spans `span` links to.
    fn links(&self, span: &SpanData) -> Vec<String> {
        span.links
            .links
            .iter()
            .map(|l| {
                self.by_id(l.span_context.span_id())
                    .map(|s| s.name.to_string())
                    .unwrap_or_else(|| format!("<{}>", l.span_context.span_id()))
            })
            .collect()
    }

    fn names(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|s| {
                format!(
                    "{} [{}] under {}",
                    s.name,
                    text(s, "durable.operation.status"),
                    self.parent_name(s)
                )
            })
            .collect()
    }

    /// Checks what every span of every kind must hold.
    fn check_common(&self, arn: &str, view: OtelView) {
        let trace = self.0[0].span_context.trace_id();
        let mut roots = BTreeSet::new();
        for s in &self.0 {
            assert_eq!(s.span_context.trace_id(), trace, "one trace: {}", s.name);
            assert_eq!(s.span_kind, SpanKind::Internal, "{}", s.name);
            assert_eq!(text(s, "durable.execution.arn"), arn, "{}", s.name);
            assert!(
                s.start_time <= s.end_time,
                "{} ends before it starts",
                s.name
            );
            if s.parent_span_id == SpanId::INVALID {
                roots.insert(s.name.to_string());
            } else {
                assert!(
                    self.parent(s).is_some(),
                    "{}'s parent {} is not in the trace",
                    s.name,
                    s.parent_span_id
                );
            }
            let links = self.links(s);
            match (s.name.as_ref(), view) {
                ("Workflow" | "Invocation" | "DurableExecutionRoot", _) => {
                    assert!(links.is_empty(), "{}", s.name);
                }
                // A span continuing an operation an earlier invocation
                // began links to its first span too.
                (_, OtelView::Invocation) => assert!(
                    links == ["Workflow"] || links == [s.name.to_string(), "Workflow".into()],
                    "{}: {links:?}",
                    s.name
                ),
                (_, _) => assert_eq!(links, ["Invocation"], "{}", s.name),
            }
        }
        // No trace header: the synthetic root AWS's plugin writes, a
        // zero-length span each invocation writes again (the same id).
        assert_eq!(
            roots.into_iter().collect::<Vec<_>>(),
            ["DurableExecutionRoot"],
            "the synthetic root is the trace's one root"
        );
        let root = self.named("DurableExecutionRoot");
        for r in &root {
            assert_eq!(r.span_context.span_id(), root[0].span_context.span_id());
            assert_eq!(r.start_time, r.end_time, "a zero-length span");
            assert_eq!(
                keys(r),
                sorted(&["execution.arn", "execution.synthetic_root"])
            );
            assert_eq!(
                attr(r, "durable.execution.synthetic_root"),
                Some(Value::Bool(true))
            );
        }
        for workflow in self.named("Workflow") {
            assert_eq!(self.parent_name(workflow), "DurableExecutionRoot");
        }
        let workflow = self.one("Workflow");
        assert_eq!(keys(workflow), sorted(WORKFLOW));
        for invocation in self.named("Invocation") {
            assert_eq!(keys(invocation), sorted(INVOCATION));
            // Beside `Workflow`, under the execution's ancestor (as AWS's
            // plugins put it).
            assert_eq!(self.parent_name(invocation), "DurableExecutionRoot");
        }
    }
}

/// Collects the spans of one run.
pub(crate) fn collecting() -> (SdkTracerProvider, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .with_id_generator(DeterministicIds::default())
        .build();
    (provider, exporter)
}

pub(crate) async fn traced<W, O>(
    runner: LocalRunner,
    workflow: &W,
    view: OtelView,
) -> (Spans, LocalRun<O>)
where
    W: durable_yield::WorkflowFn<(), O>,
    O: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    let (provider, exporter) = collecting();
    let run = runner
        .plugin(OtelPlugin::from_provider(&provider).view(view))
        .run(workflow, &())
        .await
        .unwrap();
    (Spans(exporter.get_finished_spans().unwrap()), run)
}

// -------------------------------------------- one view per function

mod failures;
mod lambda;
mod views;

use lambda::*;
use views::*;

//! User code runs in its span (features `otel` and `logging`), as AWS's
//! OpenTelemetry plugin makes it: a step body's attempt span, a context's
//! code its context's span, else the `Invocation` span, is the current
//! OpenTelemetry context around every poll of the code, so the spans user code starts nest under it and the
//! JSON log lines it writes carry its `traceId`, `spanId` and
//! `otelTraceSampled` (what AWS's plugin stamps on its SDK's log records).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use durable_yield::logging::JsonLogLayer;
use durable_yield::otel::{DeterministicIds, OtelPlugin, OtelView};
use durable_yield::plugin::{InvocationHooks, InvocationStart, Plugin, Scope, UserCode};
use durable_yield::retry::FixedDelay;
use durable_yield::{BoxError, LocalRunner, StepConfig, StepError, StepFailure, Workflow};
use opentelemetry::trace::{Span as _, SpanId, Tracer as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracer, SdkTracerProvider, SpanData};
use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt;

use durable_yield_tests::LogBuffer as Buffer;

/// Logs before a step, in the step (whose first attempt fails, and whose
/// body is polled twice and starts a span of its own), and after a wait:
/// three invocations.
fn workflow(
    tracer: SdkTracer,
) -> impl Fn(
    Workflow,
    (),
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<u32, StepError>> + Send>>
+ Send
+ Sync
+ 'static {
    move |mut wf: Workflow, _: ()| {
        let tracer = tracer.clone();
        let child_tracer = tracer.clone();
        Box::pin(async move {
            tracing::info!("before the step");
            let n: u32 = wf
                .step_with(
                    StepConfig::named("charge").retry(FixedDelay::new(Duration::from_secs(3), 3)),
                    move |ctx| {
                        let tracer = tracer.clone();
                        async move {
                            let mut span = tracer.start("user work");
                            tracing::info!(attempt = ctx.attempt(), "charging");
                            // Another poll: the scope is entered again.
                            tokio::task::yield_now().await;
                            tracing::info!(attempt = ctx.attempt(), "charged");
                            span.end();
                            if ctx.attempt() == 1 {
                                Err(StepFailure::new("Declined", "try again"))
                            } else {
                                Ok(5)
                            }
                        }
                    },
                )
                .await?;
            let c: u32 = wf
                .child("audit", move |mut wf: Workflow| async move {
                    tracing::info!("in the child");
                    child_tracer.start("child work").end();
                    let x: u32 = wf.step("inner", |_| async { Ok(1) }).await?;
                    // Resumed after its step: its span again.
                    tracing::info!("in the child, after its step");
                    Ok::<_, StepError>(x)
                })
                .await?;
            let items = wf
                .map(
                    "fan",
                    [10u32, 20],
                    |mut wf: Workflow, item, index| async move {
                        tracing::info!(index, "in an item");
                        let v: u32 = wf
                            .step("double", move |_| async move { Ok(item * 2) })
                            .await?;
                        tracing::info!(index, "item done");
                        Ok::<_, StepError>(v)
                    },
                )
                .await?;
            assert_eq!(items.success_count(), 2);
            tracing::info!("between the map and the wait");
            wf.wait("cool-off", Duration::from_secs(60)).await;
            tracing::info!("after the wait");
            Ok(n + c - 1)
        })
    }
}

/// Runs the workflow with the log layer and, when `plugin`, the OTel
/// plugin in `view`; the spans and this crate's log lines.
fn run(view: Option<OtelView>) -> (Vec<SpanData>, Vec<Value>) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .with_id_generator(DeterministicIds::default())
        .build();
    let tracer = opentelemetry::trace::TracerProvider::tracer(&provider, "user-code");
    let mut runner = LocalRunner::new();
    if let Some(view) = view {
        runner = runner.plugin(OtelPlugin::from_provider(&provider).view(view));
    }
    let buffer = Buffer::default();
    let subscriber =
        tracing_subscriber::registry().with(JsonLogLayer::stdout().with_writer(buffer.clone()));
    let run = tracing::subscriber::with_default(subscriber, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(runner.run(&workflow(tracer), &()))
            .unwrap()
    });
    assert_eq!(run.result, Some(5));
    assert_eq!(run.invocations, 3);
    let text = buffer.text();
    let lines = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|l| l["target"] == "otel_scopes")
        .collect();
    (exporter.get_finished_spans().unwrap(), lines)
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> Vec<&'a SpanData> {
    spans.iter().filter(|s| s.name == name).collect()
}

fn one<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    let found = named(spans, name);
    assert_eq!(found.len(), 1, "spans named {name}");
    found[0]
}

/// The span of the context named `name` (its one span: it begins and
/// ends in one invocation).
fn context_span<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    one(spans, name)
}

/// The line with this message (and this `attempt` or `index` field).
fn line<'a>(lines: &'a [Value], message: &str, number: Option<u64>) -> &'a Value {
    let found: Vec<&Value> = lines
        .iter()
        .filter(|l| {
            l["message"] == message && number.is_none_or(|n| l["attempt"] == n || l["index"] == n)
        })
        .collect();
    assert_eq!(found.len(), 1, "lines {message:?} {number:?}: {lines:#?}");
    found[0]
}

/// The ids a line carries are those of `span`.
fn stamped_with(line: &Value, span: &SpanData) {
    assert_eq!(
        line["traceId"],
        span.span_context.trace_id().to_string(),
        "{line}"
    );
    assert_eq!(
        line["spanId"],
        span.span_context.span_id().to_string(),
        "{line} should be under {}",
        span.name
    );
    assert_eq!(line["otelTraceSampled"], true, "{line}");
}

#[test]
fn user_code_runs_in_its_span_and_its_log_lines_carry_the_span_ids() {
    for view in [OtelView::Invocation, OtelView::Execution] {
        let (spans, lines) = run(Some(view));
        // Step bodies: their attempt's span, over both polls.
        for attempt in [1, 2] {
            let span = one(&spans, &format!("charge attempt {attempt}"));
            stamped_with(line(&lines, "charging", Some(attempt)), span);
            stamped_with(line(&lines, "charged", Some(attempt)), span);
        }
        // A span the body starts goes under the attempt's.
        let user = named(&spans, "user work");
        assert_eq!(user.len(), 2, "{view:?}");
        for (attempt, span) in [1, 2].into_iter().zip(&user) {
            let parent = one(&spans, &format!("charge attempt {attempt}"));
            assert_eq!(
                span.parent_span_id,
                parent.span_context.span_id(),
                "{view:?}: user work of attempt {attempt}"
            );
            assert_eq!(span.span_context.trace_id(), parent.span_context.trace_id());
        }
        // The workflow's code: the span of the invocation that wrote it
        // (replayed lines are left out: each appears once).
        let invocations = named(&spans, "Invocation");
        assert_eq!(invocations.len(), 3);
        stamped_with(line(&lines, "before the step", None), invocations[0]);
        stamped_with(
            line(&lines, "between the map and the wait", None),
            invocations[1],
        );
        stamped_with(line(&lines, "after the wait", None), invocations[2]);
        // A context's code: the context's span, before and after its own
        // operations; spans it starts nest under it.
        let child = context_span(&spans, "audit");
        stamped_with(line(&lines, "in the child", None), child);
        stamped_with(line(&lines, "in the child, after its step", None), child);
        assert_eq!(
            one(&spans, "child work").parent_span_id,
            child.span_context.span_id(),
            "{view:?}"
        );
        for index in [0, 1] {
            let item = context_span(&spans, &format!("map-item-{index}"));
            stamped_with(line(&lines, "in an item", Some(index)), item);
            stamped_with(line(&lines, "item done", Some(index)), item);
        }
    }
}

#[test]
fn without_a_current_span_lines_carry_no_trace_ids() {
    let (spans, lines) = run(None);
    // Only the user's own spans, each a root: nothing was current.
    assert!(
        spans
            .iter()
            .all(|s| s.name == "user work" || s.name == "child work")
    );
    assert!(spans.iter().all(|s| s.parent_span_id == SpanId::INVALID));
    assert_eq!(lines.len(), 13, "{lines:#?}");
    for l in &lines {
        for key in ["traceId", "spanId", "otelTraceSampled"] {
            assert!(l.get(key).is_none(), "{l}");
        }
    }
}

type Log = Arc<Mutex<Vec<String>>>;

/// Notes entering and leaving around the code it runs.
struct Tag(&'static str, Log);

impl Scope for Tag {
    fn run(&self, code: &mut dyn FnMut()) {
        self.1.lock().unwrap().push(format!("enter {}", self.0));
        code();
        self.1.lock().unwrap().push(format!("leave {}", self.0));
    }
}

/// Runs no code (a plugin's bug).
struct Lazy;

impl Scope for Lazy {
    fn run(&self, _: &mut dyn FnMut()) {}
}

/// A plugin whose attempts' scope is a [`Tag`], except: `none` gives no
/// scope, `panics` panics when asked, `lazy` gives a [`Lazy`].
struct Tagging(&'static str, Log);

impl Plugin for Tagging {
    fn invocation(&self, _: &InvocationStart<'_>) -> Result<Box<dyn InvocationHooks>, BoxError> {
        Ok(Box::new(Tagging(self.0, self.1.clone())))
    }
}

impl InvocationHooks for Tagging {
    fn scope(&mut self, code: UserCode<'_>) -> Option<Arc<dyn Scope>> {
        match (self.0, code) {
            ("panics", _) => panic!("no scope here"),
            ("none", _) => None,
            ("lazy", _) => Some(Arc::new(Lazy)),
            (tag, UserCode::Attempt(_)) => Some(Arc::new(Tag(tag, self.1.clone()))),
            (_, _) => None,
        }
    }
}

/// Runs one step whose body is polled twice, with a [`Tagging`] plugin
/// per tag; what was noted.
fn tagged_step(tags: &[&'static str]) -> Vec<String> {
    let log: Log = Arc::default();
    let body_log = log.clone();
    let steps = move |mut wf: Workflow, _: ()| {
        let log = body_log.clone();
        async move {
            wf.step("s", move |_| {
                let log = log.clone();
                async move {
                    log.lock().unwrap().push("poll 1".into());
                    tokio::task::yield_now().await;
                    log.lock().unwrap().push("poll 2".into());
                    Ok(1u32)
                }
            })
            .await
        }
    };
    let runner = tags.iter().fold(LocalRunner::new(), |runner, tag| {
        runner.plugin(Tagging(tag, log.clone()))
    });
    let run = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(runner.run(&steps, &()))
        .unwrap();
    assert_eq!(run.result, Some(1));
    log.lock().unwrap().clone()
}

/// Scopes of several plugins nest in registration order around each poll
/// (the first outermost); a plugin that answers nothing, or panics, does
/// not keep the others' from running the code.
#[test]
fn scopes_nest_in_registration_order_around_every_poll() {
    assert_eq!(
        tagged_step(&["a", "none", "panics", "b"]),
        [
            "enter a", "enter b", "poll 1", "leave b", "leave a", "enter a", "enter b", "poll 2",
            "leave b", "leave a",
        ]
    );
}

/// A scope that does not run the code it is given (nor the scopes inside
/// it) does not keep the code from running: it runs after it, outside.
#[test]
fn code_a_scope_does_not_run_still_runs() {
    assert_eq!(
        tagged_step(&["a", "lazy", "b"]),
        [
            "enter a", "leave a", "poll 1", "enter a", "leave a", "poll 2"
        ]
    );
}

//! Tracing: every invocation runs in a `durable_execution` span and every
//! live step attempt in a `durable_operation` span, so that log lines from
//! workflow code and step bodies carry the execution ARN.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use durable_yield::retry::FixedDelay;
use durable_yield::{
    LocalRunner, MapConfig, Nesting, StepConfig, StepError, StepFailure, Workflow,
};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// The fields recorded on a span.
#[derive(Default, Clone, Debug)]
struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

/// One captured log line: its message and the spans it was written in,
/// innermost first, with their fields.
#[derive(Debug, Clone)]
struct Line {
    message: String,
    spans: Vec<(String, BTreeMap<String, String>)>,
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Line>>>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Capture {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(fields) = span.extensions_mut().get_mut::<Fields>()
        {
            values.record(fields);
        }
    }
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let spans = ctx
            .event_scope(event)
            .map(|scope| {
                scope
                    .map(|span| {
                        let fields = span
                            .extensions()
                            .get::<Fields>()
                            .cloned()
                            .unwrap_or_default();
                        (span.name().to_owned(), fields.0)
                    })
                    .collect()
            })
            .unwrap_or_default();
        self.0.lock().unwrap().push(Line {
            message: fields.0.get("message").cloned().unwrap_or_default(),
            spans,
        });
    }
}

/// Logs from workflow code and from a step body that fails its first
/// attempt, around a wait.
async fn logged(mut wf: Workflow, _: ()) -> Result<u32, StepError> {
    tracing::info!("workflow starts");
    let config = StepConfig::named("charge").retry(FixedDelay::new(Duration::from_secs(1), 2));
    let n: u32 = wf
        .step_with(config, |ctx| async move {
            tracing::info!("charging, attempt {}", ctx.attempt());
            if ctx.attempt() == 1 {
                Err(StepFailure::msg("busy"))
            } else {
                Ok(7)
            }
        })
        .await?;
    wf.wait("pause", Duration::from_secs(1)).await;
    tracing::info!("workflow ends");
    Ok(n)
}

#[test]
fn log_lines_carry_the_execution_and_the_operation() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let run = tracing::subscriber::with_default(subscriber, || {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(LocalRunner::new().run(&logged, &()))
            .unwrap()
    });
    assert_eq!(run.result, Some(7));
    let arn = run.arn.clone();
    let lines = capture.0.lock().unwrap().clone();
    let user: Vec<&Line> = lines
        .iter()
        .filter(|l| {
            ["workflow", "charging"]
                .iter()
                .any(|p| l.message.starts_with(p))
        })
        .collect();
    assert!(user.len() >= 4, "{user:#?}");
    for line in &user {
        let execution = line
            .spans
            .iter()
            .find(|(name, _)| name == "durable_execution")
            .unwrap_or_else(|| panic!("{:?} was logged outside the execution span", line.message));
        assert_eq!(execution.1.get("execution_arn"), Some(&arn), "{line:?}");
    }
    // The step body's lines are in the attempt's span, inside the execution's.
    let attempts: Vec<_> = user
        .iter()
        .filter(|l| l.message.starts_with("charging"))
        .map(|l| {
            let (name, fields) = &l.spans[0];
            assert_eq!(name, "durable_operation");
            assert_eq!(l.spans[1].0, "durable_execution");
            assert_eq!(fields.get("name").map(String::as_str), Some("charge"));
            assert_eq!(fields.get("type").map(String::as_str), Some("STEP"));
            assert_eq!(fields.get("subtype").map(String::as_str), Some("Step"));
            assert_eq!(fields.get("operation_id").map(String::len), Some(64));
            fields.get("attempt").cloned().unwrap_or_default()
        })
        .collect();
    assert_eq!(attempts, vec!["1", "2"]);
    // The first invocation says so; later ones replay.
    let firsts: Vec<_> = user
        .iter()
        .filter(|l| l.message == "workflow starts")
        .map(|l| {
            let fields = &l.spans.last().unwrap().1;
            (
                fields.get("first_invocation").cloned().unwrap_or_default(),
                fields.get("replaying").cloned().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(firsts[0], ("true".to_owned(), "false".to_owned()));
    assert!(
        firsts[1..]
            .iter()
            .all(|f| f == &("false".to_owned(), "true".to_owned()))
    );
    assert_eq!(firsts.len() as u32, run.invocations);
}

/// Logs before, between and after operations that span three invocations,
/// and inside map items, one of which waits.
async fn chatty(wf: Workflow, _: ()) -> Result<u32, StepError> {
    chatty_map(wf, Nesting::Nested).await
}

/// [`chatty`] with flat map items: they record no CONTEXT, so every
/// invocation runs them again and whether an item is replaying depends on
/// whether its next operation is recorded under the map.
async fn chatty_flat(wf: Workflow, _: ()) -> Result<u32, StepError> {
    chatty_map(wf, Nesting::Flat).await
}

async fn chatty_map(mut wf: Workflow, nesting: Nesting) -> Result<u32, StepError> {
    tracing::info!("start");
    let a: u32 = wf.step("a", |_| async { Ok(1) }).await?;
    tracing::info!("after a");
    wf.wait("first", Duration::from_secs(5)).await;
    tracing::info!("after first wait");
    let config = MapConfig::named("items").nesting(nesting);
    let r = wf
        .map_with(config, vec![0u32, 1], |mut wf, i, _| async move {
            tracing::info!("item {i} starts");
            if i == 1 {
                wf.wait("item-wait", Duration::from_secs(3)).await;
                tracing::info!("item {i} waited");
            }
            wf.step("work", move |_| async move { Ok(i) }).await
        })
        .await?;
    tracing::info!("after map");
    wf.wait("second", Duration::from_secs(5)).await;
    tracing::info!("end");
    Ok(a + r.into_values()?.iter().sum::<u32>())
}

/// Only the messages of events (no span bookkeeping, so that two can be
/// stacked).
#[derive(Clone, Default)]
struct Messages(Arc<Mutex<Vec<String>>>);

impl<S: Subscriber> Layer<S> for Messages {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let message = fields.0.get("message").cloned().unwrap_or_default();
        self.0.lock().unwrap().push(message);
    }
}

#[test]
fn replay_aware_logging_writes_each_workflow_line_once() {
    replay_aware_logging_writes_each_line_once(chatty);
}

#[test]
fn replay_aware_logging_writes_each_line_once_in_flat_map_items() {
    replay_aware_logging_writes_each_line_once(chatty_flat);
}

fn replay_aware_logging_writes_each_line_once(workflow: impl durable_yield::WorkflowFn<(), u32>) {
    // A dynamic filter: a plain `filter_fn` is evaluated once per call
    // site and cached.
    use tracing_subscriber::filter::dynamic_filter_fn;
    let all = Messages::default();
    let once = Messages::default();
    let subscriber = tracing_subscriber::registry().with(all.clone()).with(
        once.clone()
            .with_filter(dynamic_filter_fn(|_, _| !durable_yield::is_replaying())),
    );
    let run = tracing::subscriber::with_default(subscriber, || {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(LocalRunner::new().run(&workflow, &()))
            .unwrap()
    });
    assert_eq!(run.result, Some(2));
    assert_eq!(run.invocations, 4);
    let messages = |c: &Messages| -> Vec<String> {
        c.0.lock()
            .unwrap()
            .iter()
            // The workflow's own lines, not the SDK's.
            .filter(|m| {
                !m.starts_with("durable invocation")
                    && !m.starts_with("operation ")
                    && !m.is_empty()
                    && *m != "checkpoint"
            })
            .cloned()
            .collect()
    };
    let once = messages(&once);
    let expected = [
        "start",
        "after a",
        "after first wait",
        "item 0 starts",
        "item 1 starts",
        "item 1 waited",
        "after map",
        "end",
    ];
    for line in expected {
        let n = once.iter().filter(|m| *m == line).count();
        assert_eq!(
            n, 1,
            "{line:?} was written {n} times with the filter: {once:?}"
        );
    }
    assert_eq!(once.len(), expected.len(), "{once:?}");
    // Without the filter, every invocation writes its lines again.
    let all = messages(&all);
    assert_eq!(all.iter().filter(|m| *m == "start").count(), 4);
}

#[test]
fn condition_checks_run_in_spans_with_their_subtype() {
    async fn poll(mut wf: Workflow, _: ()) -> Result<u32, StepError> {
        let config = durable_yield::ConditionConfig::named("ready")
            .strategy(FixedDelay::new(Duration::from_secs(1), 3));
        wf.wait_for_condition_with(config, 0u32, |_, n| async move {
            tracing::info!("checking {n}");
            Ok(if n >= 1 {
                durable_yield::Condition::Met(n)
            } else {
                durable_yield::Condition::NotMet(n + 1)
            })
        })
        .await
    }
    let capture = Capture::default();
    let subscriber = tracing_subscriber::registry().with(capture.clone());
    let run = tracing::subscriber::with_default(subscriber, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(LocalRunner::new().run(&poll, &()))
            .unwrap()
    });
    assert_eq!(run.result, Some(1));
    let lines = capture.0.lock().unwrap().clone();
    let checks: Vec<(String, String)> = lines
        .iter()
        .filter(|l| l.message.starts_with("checking"))
        .map(|l| {
            let (name, fields) = &l.spans[0];
            assert_eq!(name, "durable_operation");
            (
                fields.get("subtype").cloned().unwrap_or_default(),
                fields.get("attempt").cloned().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        checks,
        vec![
            ("WaitForCondition".to_owned(), "1".to_owned()),
            ("WaitForCondition".to_owned(), "2".to_owned())
        ]
    );
}

//! OpenTelemetry spans (feature `otel`) across invocations on the local
//! runner, exported to an in-memory exporter: names, attributes, parents,
//! links, and one trace per execution.

use std::time::Duration;

use durable_yield::otel::{DeterministicIds, OtelPlugin};
use durable_yield::retry::FixedDelay;
use durable_yield::{LocalRunner, StepConfig, StepError, StepFailure, Workflow};
use opentelemetry::trace::{SpanId, Status, TracerProvider as _};
use opentelemetry::{Key, Value};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};

/// A step retried once (its first attempt fails), a wait, a step.
async fn flow(mut wf: Workflow, _: ()) -> Result<u32, StepError> {
    let a: u32 = wf
        .step_with(
            StepConfig::named("charge").retry(FixedDelay::new(Duration::from_secs(3), 3)),
            |ctx| async move {
                if ctx.attempt() == 1 {
                    Err(StepFailure::new("Declined", "try again"))
                } else {
                    Ok(1)
                }
            },
        )
        .await?;
    wf.wait("cool-off", Duration::from_secs(60)).await;
    let b: u32 = wf.step("ship", |_| async { Ok(2) }).await?;
    Ok(a + b)
}

fn attr(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == Key::from(key.to_owned()))
        .map(|kv| kv.value.clone())
}

fn text(span: &SpanData, key: &str) -> String {
    attr(span, key).map(|v| v.to_string()).unwrap_or_default()
}

/// The spans of one run, and the run.
async fn traced(ids: bool) -> (Vec<SpanData>, durable_yield::LocalRun<u32>) {
    let exporter = InMemorySpanExporter::default();
    let mut provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone());
    if ids {
        provider = provider.with_id_generator(DeterministicIds::default());
    }
    let provider = provider.build();
    let run = LocalRunner::new()
        .plugin(OtelPlugin::new(provider.tracer("durable-yield")))
        .run(&flow, &())
        .await
        .unwrap();
    provider.force_flush().unwrap();
    (exporter.get_finished_spans().unwrap(), run)
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> Vec<&'a SpanData> {
    spans.iter().filter(|s| s.name == name).collect()
}

#[tokio::test]
async fn spans_follow_the_conventions_and_form_one_trace() {
    let (spans, run) = traced(true).await;
    assert_eq!(run.result, Some(3));
    // Invocations: the first attempt fails (retry in 3 s); the second
    // succeeds and the wait starts; the wait is over and `ship` runs.
    assert_eq!(run.invocations, 3);

    // One trace.
    let trace = spans[0].span_context.trace_id();
    assert!(spans.iter().all(|s| s.span_context.trace_id() == trace));
    assert!(spans.iter().all(|s| s.span_context.is_valid()));

    // Workflow: once, at the end, OK, parented to the synthetic root.
    let workflow = named(&spans, "Workflow");
    assert_eq!(workflow.len(), 1);
    let workflow = workflow[0];
    assert_eq!(text(workflow, "durable.execution.arn"), run.arn);
    assert_eq!(text(workflow, "durable.execution.status"), "SUCCEEDED");
    assert_eq!(workflow.status, Status::Ok);
    assert!(workflow.links.links.is_empty());
    let root = workflow.parent_span_id;
    assert_ne!(root, SpanId::INVALID);
    assert!(spans.iter().all(|s| s.span_context.span_id() != root));

    // Invocations: three, under the same root, first only the first.
    let invocations = named(&spans, "Invocation");
    let seen: Vec<(String, String)> = invocations
        .iter()
        .map(|s| {
            (
                text(s, "durable.invocation.first"),
                text(s, "durable.invocation.status"),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("true".into(), "PENDING".into()),
            ("false".into(), "PENDING".into()),
            ("false".into(), "SUCCEEDED".into()),
        ]
    );
    for s in &invocations {
        assert_eq!(s.parent_span_id, root);
        assert_eq!(text(s, "durable.execution.arn"), run.arn);
        assert_eq!(s.status, Status::Ok);
        assert!(s.links.links.is_empty());
    }
    let invocation_of = |span: &SpanData| {
        invocations
            .iter()
            .position(|i| i.span_context.span_id() == span.parent_span_id)
    };

    // Every operation and attempt span links to the Workflow span.
    let links_workflow = |s: &SpanData| {
        s.links
            .links
            .iter()
            .any(|l| l.span_context.span_id() == workflow.span_context.span_id())
    };

    // `charge`: a span in invocation 1 (STARTED, its first attempt
    // failed) and one in invocation 2 (SUCCEEDED after attempt 2) that
    // links to the first.
    let charge = named(&spans, "charge");
    assert_eq!(charge.len(), 2);
    assert_eq!(invocation_of(charge[0]), Some(0));
    assert_eq!(text(charge[0], "durable.operation.status"), "STARTED");
    assert_eq!(charge[0].status, Status::Unset);
    assert_eq!(invocation_of(charge[1]), Some(1));
    assert_eq!(text(charge[1], "durable.operation.status"), "SUCCEEDED");
    assert_eq!(text(charge[1], "durable.attempt.number"), "2");
    assert_eq!(charge[1].status, Status::Ok);
    assert_eq!(
        charge[1].links.links[0].span_context.span_id(),
        charge[0].span_context.span_id()
    );
    for s in &charge {
        assert!(links_workflow(s));
        assert_eq!(text(s, "durable.operation.type"), "STEP");
        assert_eq!(text(s, "durable.operation.subtype"), "Step");
        assert_eq!(text(s, "durable.operation.name"), "charge");
        assert_eq!(text(s, "durable.execution.arn"), run.arn);
    }
    let id = text(charge[0], "durable.operation.id");
    assert_eq!(id.len(), 64);

    // Its attempts, under the operation span of their invocation.
    let first = named(&spans, "charge attempt 1");
    let second = named(&spans, "charge attempt 2");
    assert_eq!((first.len(), second.len()), (1, 1));
    assert_eq!(first[0].parent_span_id, charge[0].span_context.span_id());
    assert_eq!(second[0].parent_span_id, charge[1].span_context.span_id());
    assert_eq!(text(first[0], "durable.attempt.outcome"), "FAILED");
    assert!(matches!(first[0].status, Status::Error { .. }));
    assert_eq!(text(second[0], "durable.attempt.outcome"), "SUCCEEDED");
    assert_eq!(text(second[0], "durable.attempt.number"), "2");
    assert_eq!(text(second[0], "durable.operation.id"), id);
    assert!(links_workflow(first[0]) && links_workflow(second[0]));

    // The wait: STARTED in invocation 2, SUCCEEDED in invocation 3,
    // linking to the first span.
    let wait = named(&spans, "cool-off");
    assert_eq!(wait.len(), 2);
    assert_eq!(
        (invocation_of(wait[0]), invocation_of(wait[1])),
        (Some(1), Some(2))
    );
    assert_eq!(text(wait[0], "durable.operation.status"), "STARTED");
    assert_eq!(text(wait[1], "durable.operation.status"), "SUCCEEDED");
    assert_eq!(text(wait[1], "durable.operation.type"), "WAIT");
    assert_eq!(
        wait[1].links.links[0].span_context.span_id(),
        wait[0].span_context.span_id()
    );
    assert!(wait[0].end_time <= wait[1].start_time);

    // `ship` in invocation 3.
    let ship = named(&spans, "ship");
    assert_eq!(ship.len(), 1);
    assert_eq!(invocation_of(ship[0]), Some(2));
    assert_eq!(text(ship[0], "durable.attempt.number"), "1");

    // Children lie within their parents.
    for s in &spans {
        if let Some(parent) = spans
            .iter()
            .find(|p| p.span_context.span_id() == s.parent_span_id)
        {
            assert!(
                parent.start_time <= s.start_time && s.end_time <= parent.end_time,
                "{} outside {}",
                s.name,
                parent.name
            );
        }
        assert!(s.start_time <= s.end_time, "{}", s.name);
    }
    // Nothing else.
    assert_eq!(spans.len(), 1 + 3 + 2 + 2 + 2 + 1 + 1);
}

#[tokio::test]
async fn the_trace_and_ids_are_the_same_for_the_same_execution() {
    // Two runs of one execution name differ in ARN (a unique suffix), so
    // compare what must be derived: the workflow span id from the ARN.
    let (spans, run) = traced(true).await;
    let workflow = named(&spans, "Workflow")[0];
    let (again, _) = traced(true).await;
    let other = named(&again, "Workflow")[0];
    assert_ne!(
        workflow.span_context.trace_id(),
        other.span_context.trace_id(),
        "different executions, different traces"
    );
    // The first span of an operation has an id derived from the ARN and
    // the operation id: the later span's link points at it (checked
    // above); without the id generator the link cannot (random ids).
    let (plain, _) = traced(false).await;
    let charge = named(&plain, "charge");
    assert_ne!(
        charge[1].links.links[0].span_context.span_id(),
        charge[0].span_context.span_id()
    );
    assert!(!run.arn.is_empty());
}

//! Sampling (feature `otel`): one decision per invocation for every span
//! the plugin writes, as AWS's plugin makes it. A trace header's
//! `Sampled=1` or `Sampled=0` decides; without one, the tracer
//! provider's sampler decides once, on the execution's trace (for the
//! synthetic root), and every other span follows it: an execution's trace
//! is whole or absent, never a root missing under sampled children. Trace
//! headers are read part by part, as AWS's plugin 2.0.0 reads them (its
//! `xray_context_extractor` and `ExecutionTraceContext.resolve`).

use std::time::Duration;

use durable_yield::otel::{DeterministicIds, OtelPlugin, OtelView};
use durable_yield::{LocalRunner, StepError, Workflow};
use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider, SpanData};

async fn step_wait_step(mut wf: Workflow, _: ()) -> Result<u32, StepError> {
    let a: u32 = wf.step("a", |_| async { Ok(1) }).await?;
    wf.wait("pause", Duration::from_secs(10)).await;
    let b: u32 = wf.step("b", |_| async { Ok(2) }).await?;
    Ok(a + b)
}

/// Runs `executions` executions with `sampler` on the provider; the spans
/// of each.
fn run(sampler: Sampler, view: OtelView, executions: usize, headers: bool) -> Vec<Vec<SpanData>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    (0..executions)
        .map(|_| {
            let exporter = InMemorySpanExporter::default();
            let provider = SdkTracerProvider::builder()
                .with_simple_exporter(exporter.clone())
                .with_id_generator(DeterministicIds::default())
                .with_sampler(sampler.clone())
                .build();
            let mut runner =
                LocalRunner::new().plugin(OtelPlugin::from_provider(&provider).view(view));
            if headers {
                runner = runner.lambda_trace_headers();
            }
            let run = runtime.block_on(runner.run(&step_wait_step, &())).unwrap();
            assert_eq!(run.result, Some(3));
            exporter.get_finished_spans().unwrap()
        })
        .collect()
}

#[test]
fn a_sampler_that_drops_the_root_drops_the_whole_execution() {
    for view in [OtelView::Invocation, OtelView::Execution] {
        let spans = run(
            Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
            view,
            1,
            false,
        );
        let names: Vec<&str> = spans[0].iter().map(|s| s.name.as_ref()).collect();
        assert!(names.is_empty(), "{view:?}: {names:?}");
    }
}

#[test]
fn a_ratio_sampler_keeps_or_drops_each_execution_whole() {
    for view in [OtelView::Invocation, OtelView::Execution] {
        let executions = run(
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(0.5))),
            view,
            24,
            false,
        );
        let kept = executions.iter().filter(|spans| !spans.is_empty()).count();
        // Both outcomes happen (24 executions at one half: all alike has a
        // chance of 2^-23).
        assert!(0 < kept && kept < 24, "{view:?}: {kept} of 24 kept");
        for spans in executions.iter().filter(|spans| !spans.is_empty()) {
            let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
            for name in [
                "DurableExecutionRoot",
                "Workflow",
                "Invocation",
                "a",
                "b",
                "pause",
            ] {
                assert!(
                    names.contains(&name),
                    "{view:?}: {name} missing from {names:?}"
                );
            }
            // Every parent is in the trace.
            for s in spans {
                assert!(
                    s.parent_span_id == opentelemetry::trace::SpanId::INVALID
                        || spans
                            .iter()
                            .any(|p| p.span_context.span_id() == s.parent_span_id),
                    "{view:?}: {}'s parent is missing",
                    s.name
                );
            }
        }
    }
}

#[test]
fn the_trace_headers_sampled_flag_decides() {
    // The local runner's headers say `Sampled=1`: kept even under a
    // sampler that would drop a root.
    let spans = run(
        Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
        OtelView::Invocation,
        1,
        true,
    );
    let names: Vec<&str> = spans[0].iter().map(|s| s.name.as_ref()).collect();
    for name in ["Workflow", "Invocation", "a", "b", "pause"] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
}

// ------------------------------------- trace headers read part by part

const TRACE: &str = "5759e988bd862e3fe1be46a994272793";
const ROOT: &str = "Root=1-5759e988-bd862e3fe1be46a994272793";

async fn one_step(mut wf: Workflow, _: serde_json::Value) -> Result<u32, StepError> {
    wf.step("a", |_| async { Ok(1) }).await
}

/// One invocation on the Lambda path (the execution ends in it) with
/// `header` as the invocation's X-Ray trace header; the spans written.
async fn under_header(header: &str, sampler: Sampler) -> Vec<SpanData> {
    use durable_yield::CheckpointBatching;
    use durable_yield::lambda::DurableFunction;
    use durable_yield::model::InvocationStatus;
    use lambda_runtime::Service as _;
    fn boxed(
        wf: Workflow,
        input: serde_json::Value,
    ) -> durable_yield_tests::BoxFuture<Result<u32, StepError>> {
        Box::pin(one_step(wf, input))
    }
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .with_id_generator(DeterministicIds::default())
        .with_sampler(sampler)
        .build();
    let mut function = DurableFunction::new(
        boxed as fn(_, _) -> _,
        durable_yield_tests::RecordingService::default(),
        CheckpointBatching::default(),
    )
    .plugin(OtelPlugin::from_provider(&provider));
    let mut context = lambda_runtime::Context::default();
    context.request_id = "req-1".into();
    context.xray_trace_id = Some(header.into());
    let input = durable_yield_tests::first_invocation(
        "arn:aws:lambda:us-west-2:123456789012:function:f:1/durable-execution/n/e1",
        "{}",
    );
    let out = function
        .call(lambda_runtime::LambdaEvent::new(input, context))
        .await
        .unwrap();
    assert_eq!(out.status, InvocationStatus::Succeeded, "{header}");
    exporter.get_finished_spans().unwrap()
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> Option<&'a SpanData> {
    spans.iter().find(|s| s.name == name)
}

fn names(spans: &[SpanData]) -> Vec<&str> {
    spans.iter().map(|s| s.name.as_ref()).collect()
}

/// `Sampled=0` leaves the execution out, whatever else the header says
/// or lacks: a `Root` with an all-zero `Parent` (AWS's plugin's own test
/// case), an all-zero `Root`, a trailing `;`, other parts.
#[tokio::test]
async fn a_trace_headers_sampled_0_writes_no_span_even_without_a_parent() {
    for header in [
        format!("{ROOT};Parent=0000000000000000;Sampled=0"),
        format!("{ROOT};Sampled=0"),
        "Root=1-00000000-000000000000000000000000;Parent=53995c3f42cd8ad8;Sampled=0".to_owned(),
        format!("{ROOT};Parent=53995c3f42cd8ad8;Sampled=0;"),
        format!("{ROOT};Parent=53995c3f42cd8ad8;Sampled=0;Lineage=1:9ee8b440:0"),
        "Sampled=0".to_owned(),
    ] {
        let spans = under_header(&header, Sampler::ParentBased(Box::new(Sampler::AlwaysOn))).await;
        assert!(spans.is_empty(), "{header}: {:?}", names(&spans));
    }
}

/// A valid `Root` without a valid `Parent` is still the execution's trace,
/// anchored by the synthetic root, as AWS's plugin (2.0.0) has it.
#[tokio::test]
async fn a_trace_header_root_without_a_parent_is_the_executions_trace() {
    let trace = TraceId::from_hex(TRACE).unwrap();
    for header in [
        format!("{ROOT};Sampled=1"),
        format!("{ROOT};Parent=0000000000000000;Sampled=1"),
        // Undecided: the sampler's decision on the synthetic root.
        ROOT.to_owned(),
    ] {
        let spans = under_header(&header, Sampler::ParentBased(Box::new(Sampler::AlwaysOn))).await;
        for name in ["DurableExecutionRoot", "Workflow", "Invocation", "a"] {
            assert!(
                named(&spans, name).is_some(),
                "{header}: no {name} in {:?}",
                names(&spans)
            );
        }
        assert!(
            spans.iter().all(|s| s.span_context.trace_id() == trace),
            "{header}"
        );
        let root = named(&spans, "DurableExecutionRoot").unwrap();
        assert_eq!(root.parent_span_id, SpanId::INVALID, "{header}");
        let workflow = named(&spans, "Workflow").unwrap();
        assert_eq!(
            workflow.parent_span_id,
            root.span_context.span_id(),
            "{header}"
        );
    }
    // Without `Sampled`, a sampler that drops roots drops the execution.
    let spans = under_header(ROOT, Sampler::ParentBased(Box::new(Sampler::AlwaysOff))).await;
    assert!(spans.is_empty(), "{:?}", names(&spans));
    // With `Sampled=1` everything under the root is kept, though such a
    // sampler drops the root itself (only the sampler decides a root in
    // OpenTelemetry's Rust SDK).
    let spans = under_header(
        &format!("{ROOT};Sampled=1"),
        Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
    )
    .await;
    assert!(
        named(&spans, "DurableExecutionRoot").is_none(),
        "{:?}",
        names(&spans)
    );
    for name in ["Workflow", "Invocation", "a", "a attempt 1"] {
        assert!(
            named(&spans, name).is_some(),
            "no {name} in {:?}",
            names(&spans)
        );
    }
}

/// A `Root` and a `Parent` without `Sampled`: the `Parent` is the
/// execution's ancestor (no synthetic root), and the execution is sampled,
/// as the default sampler decides a trace with no decision.
#[tokio::test]
async fn a_trace_header_without_sampled_keeps_its_parent() {
    let header = format!("{ROOT};Parent=53995c3f42cd8ad8");
    let spans = under_header(&header, Sampler::ParentBased(Box::new(Sampler::AlwaysOn))).await;
    assert!(
        named(&spans, "DurableExecutionRoot").is_none(),
        "{:?}",
        names(&spans)
    );
    let workflow = named(&spans, "Workflow").expect("Workflow");
    assert_eq!(
        workflow.parent_span_id,
        SpanId::from_hex("53995c3f42cd8ad8").unwrap()
    );
    assert_eq!(
        workflow.span_context.trace_id(),
        TraceId::from_hex(TRACE).unwrap()
    );
    assert!(named(&spans, "a").is_some(), "{:?}", names(&spans));
}

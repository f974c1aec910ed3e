//! Sampling (feature `otel`): one decision per invocation for every span
//! the plugin writes, as AWS's plugin makes it. A trace header's
//! `Sampled=1` or `Sampled=0` decides; without a header, the tracer
//! provider's sampler decides once, on the execution's trace (for the
//! synthetic root), and every other span follows it: an execution's trace
//! is whole or absent, never a root missing under sampled children.

use std::time::Duration;

use durable_yield::otel::{DeterministicIds, OtelPlugin, OtelView};
use durable_yield::{LocalRunner, StepError, Workflow};
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

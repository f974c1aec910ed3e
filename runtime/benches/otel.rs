//! What the OpenTelemetry plugin costs per operation on the local runner:
//! N sequential steps, and a map of N items (a step each), with and
//! without `OtelPlugin` (invocation view, a provider with derived ids and
//! an exporter that drops every span, so that the SDK's and the plugin's
//! work is measured, not an exporter's). Each cell is the median of
//! `ROUNDS` runs (5 by default), in µs per step or per item.
//!
//! `cargo bench -p durable-yield --features otel --bench otel`
//! (`SIZES=1000,25000 ROUNDS=9` to change what runs).

use std::time::Instant;

use durable_yield::otel::{DeterministicIds, OtelPlugin};
use durable_yield::{LocalRunner, StepError, Workflow};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};

/// Drops what it is given.
#[derive(Debug)]
struct Drop;

impl SpanExporter for Drop {
    fn export(&self, _: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        std::future::ready(Ok(()))
    }
}

async fn steps(mut wf: Workflow, n: u32) -> Result<u32, StepError> {
    let mut odd = 0;
    for i in 0..n {
        let v: u32 = wf.step("s", move |_| async move { Ok(i & 1) }).await?;
        odd += v;
    }
    Ok(odd)
}

async fn items(mut wf: Workflow, n: u32) -> Result<u32, StepError> {
    let r = wf
        .map("m", 0..n, |mut wf: Workflow, x, _| async move {
            wf.step("d", move |_| async move { Ok(x & 1) }).await
        })
        .await?;
    Ok(r.success_count() as u32)
}

/// µs per operation of one run.
fn once(runtime: &tokio::runtime::Runtime, workload: &str, n: u32, otel: bool) -> f64 {
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(Drop)
        .with_id_generator(DeterministicIds::default())
        .build();
    let mut runner = LocalRunner::new().max_invocations(10);
    if otel {
        runner = runner.plugin(OtelPlugin::from_provider(&provider));
    }
    let started = Instant::now();
    let finished = match workload {
        "steps" => runtime
            .block_on(runner.run(&steps, &n))
            .map(|r| r.result.is_some()),
        _ => runtime
            .block_on(runner.run(&items, &n))
            .map(|r| r.result.is_some()),
    };
    let elapsed = started.elapsed();
    assert_eq!(finished, Ok(true), "{workload} {n}");
    elapsed.as_secs_f64() * 1e6 / f64::from(n)
}

fn main() {
    let sizes: Vec<u32> = std::env::var("SIZES")
        .unwrap_or_else(|_| "1000,10000,25000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    println!("| workload | N | without the plugin | with OtelPlugin | the plugin's cost |");
    println!("|---|---|---|---|---|");
    for workload in ["steps", "map"] {
        for &n in &sizes {
            // The two columns' rounds interleaved, so that both see the
            // same machine.
            let (mut plain, mut traced) = (Vec::new(), Vec::new());
            for _ in 0..rounds {
                plain.push(once(&runtime, workload, n, false));
                traced.push(once(&runtime, workload, n, true));
            }
            let median = |mut runs: Vec<f64>| {
                runs.sort_by(f64::total_cmp);
                runs[runs.len() / 2]
            };
            let (plain, traced) = (median(plain), median(traced));
            println!(
                "| {workload} | {n} | {plain:.2} µs | {traced:.2} µs | {:.2} µs |",
                traced - plain
            );
        }
    }
}

//! The OpenTelemetry functions.

use super::*;

/// The OpenTelemetry functions (`otel-invocation`, `otel-execution`): a
/// child context with a step, a parallel of two branches, a map of two
/// items (each a step), a step whose first attempt fails (retried after a
/// second: a new invocation), a chained invoke of `multiple-steps`
/// (another), and a wait-for-callback the test answers (another).
pub(crate) async fn otel_tree(mut wf: Workflow, _: serde_json::Value) -> Result<String, StepError> {
    let child: u32 = wf
        .child("otel-child", |mut wf| async move {
            // Written in the child's span (its ids on the line).
            tracing::info!("otel child code");
            wf.step("otel-child-step", |_| async { Ok(1u32) }).await
        })
        .await?;
    let branches = vec![
        Branch::named("otel-branch-a", |mut wf: Workflow| async move {
            wf.step("otel-step-a", |_| async { Ok(2u32) }).await
        }),
        Branch::named("otel-branch-b", |mut wf: Workflow| async move {
            wf.step("otel-step-b", |_| async { Ok(3u32) }).await
        }),
    ];
    let parallel = wf
        .parallel("otel-parallel", branches)
        .await?
        .into_values()?;
    let map = wf
        .map("otel-map", vec![4u32, 5], |mut wf, x, _| async move {
            wf.step("otel-map-step", move |_| async move { Ok(x) })
                .await
        })
        .await?
        .into_values()?;
    let retried: u32 = wf
        .step_with(
            StepConfig::named("otel-retry").retry(FixedDelay::new(Duration::from_secs(1), 2)),
            |ctx| async move {
                // Written in the attempt's span.
                tracing::info!(attempt = ctx.attempt(), "otel retry attempt");
                if ctx.attempt() == 1 {
                    Err(StepFailure::new("Flaky", "the first attempt fails"))
                } else {
                    Ok(6)
                }
            },
        )
        .await?;
    // multiple-steps adds 0 + 1 + 2 + 3.
    let invoked: u32 = wf
        .invoke_with(
            durable_yield::InvokeConfig::named("otel-invoke"),
            "multiple-steps",
            &4u32,
        )
        .await?;
    let answer: String = wf
        .wait_for_callback_with(
            durable_yield::WaitForCallbackConfig::named("otel-callback")
                .timeout(Duration::from_secs(300)),
            |_, _| async { Ok(()) },
        )
        .await?;
    let total = child + parallel.iter().sum::<u32>() + map.iter().sum::<u32>() + retried + invoked;
    Ok(format!("{total} {answer}"))
}

/// The tracer provider of the OpenTelemetry functions: derived ids, a batch
/// exporter over OTLP/HTTP (protobuf) to `OTEL_EXPORTER_OTLP_ENDPOINT`,
/// the function's name as `service.name`. Built before the async runtime
/// (the blocking HTTP client must not be made or dropped inside one).
pub(crate) fn otel_provider(
    name: &str,
) -> Result<opentelemetry_sdk::trace::SdkTracerProvider, Error> {
    use opentelemetry_otlp::{Protocol, WithExportConfig};
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .build()?;
    Ok(opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_id_generator(durable_yield::otel::DeterministicIds::default())
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(name.to_owned())
                .build(),
        )
        .build())
}

/// Serves an OpenTelemetry function: the plugin flushes the provider at
/// the end of every invocation, as Lambda needs.
pub(crate) async fn serve_otel(
    provider: &opentelemetry_sdk::trace::SdkTracerProvider,
    view: durable_yield::otel::OtelView,
) -> Result<(), Error> {
    durable_yield::lambda::DurableHandler::new(otel_tree)
        .plugin(
            durable_yield::otel::OtelPlugin::from_provider(provider)
                .view(view)
                // `cargo lambda watch` makes up an X-Ray trace per request.
                .trace_from_header(false),
        )
        .run()
        .await
}

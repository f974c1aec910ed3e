//! JSON log lines (feature `logging`): the execution ARN is a top-level
//! field of every line written inside an invocation, step lines carry the
//! operation, and workflow lines appear once per execution unless asked
//! for on every replay.

use std::time::Duration;

use durable_yield::logging::JsonLogLayer;
use durable_yield::{LocalRunner, StepError, Workflow};
use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt;

use durable_yield_tests::LogBuffer as Buffer;

async fn greet(mut wf: Workflow, name: String) -> Result<String, StepError> {
    tracing::info!(customer = %name, "greeting started");
    let greeting: String = wf
        .step("compose", move |ctx| async move {
            tracing::info!(attempt = ctx.attempt(), "composing");
            Ok(format!("hello {name}"))
        })
        .await?;
    wf.wait("pause", Duration::from_secs(30)).await;
    tracing::warn!(%greeting, "greeting done");
    Ok(greeting)
}

/// Runs `greet` over two invocations with the layer; returns the lines.
fn lines(layer: impl FnOnce(Buffer) -> JsonLogLayer<Buffer>) -> (Vec<Value>, String) {
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::registry().with(layer(buffer.clone()));
    let run = tracing::subscriber::with_default(subscriber, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(LocalRunner::new().run(&greet, &"ada".to_owned()))
            .unwrap()
    });
    assert_eq!(run.result.as_deref(), Some("hello ada"));
    assert_eq!(run.invocations, 2);
    (parsed(&buffer), run.arn)
}

/// The lines written to `buffer`, each a JSON object.
fn parsed(buffer: &Buffer) -> Vec<Value> {
    buffer
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn messages(lines: &[Value]) -> Vec<&str> {
    lines
        .iter()
        .filter(|l| l["target"] == "logging")
        .map(|l| l["message"].as_str().unwrap())
        .collect()
}

#[test]
fn every_line_carries_the_execution_arn_at_the_top_level() {
    let (lines, arn) = lines(|b| JsonLogLayer::stdout().with_writer(b));
    assert_eq!(
        messages(&lines),
        ["greeting started", "composing", "greeting done"]
    );
    for line in lines.iter().filter(|l| l["target"] == "logging") {
        assert_eq!(line["durableExecutionArn"], arn, "{line}");
        assert!(line.get("requestId").is_none(), "no request id locally");
        let ts = line["timestamp"].as_str().unwrap();
        assert!(ts.len() == 24 && ts.ends_with('Z'), "{ts}");
    }
    let started = lines
        .iter()
        .find(|l| l["message"] == "greeting started")
        .unwrap();
    assert_eq!(started["level"], "INFO");
    assert_eq!(started["customer"], "ada");
    assert!(started.get("operationId").is_none());
    let composing = lines.iter().find(|l| l["message"] == "composing").unwrap();
    assert_eq!(composing["operationName"], "compose");
    assert_eq!(composing["attempt"], 1);
    assert_eq!(composing["operationId"].as_str().unwrap().len(), 64);
    let done = lines
        .iter()
        .find(|l| l["message"] == "greeting done")
        .unwrap();
    assert_eq!(done["level"], "WARN");
    assert_eq!(done["greeting"], "hello ada");
    // The SDK's own lines too: the operations at debug level.
    let ended: Vec<&str> = lines
        .iter()
        .filter(|l| l["message"] == "operation ended")
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(ended, ["compose", "pause"]);
    assert!(
        lines
            .iter()
            .filter(|l| l["target"] == "durable_yield::operation")
            .all(|l| l["durableExecutionArn"] == arn)
    );
}

#[test]
fn replayed_lines_are_kept_when_asked_for() {
    let (lines, _) = lines(|b| JsonLogLayer::stdout().with_writer(b).every_replay());
    assert_eq!(
        messages(&lines),
        [
            "greeting started",
            "composing",
            "greeting started",
            "greeting done"
        ]
    );
}

/// One Lambda invocation of `greet` (a step, then a wait: PENDING) with
/// `context`, through the `tower` service `lambda_runtime` calls; the
/// lines it wrote.
#[cfg(feature = "lambda")]
fn lambda_lines(context: lambda_runtime::Context) -> Vec<Value> {
    use durable_yield::lambda::DurableFunction;
    use lambda_runtime::{LambdaEvent, Service};

    let arn = "arn:aws:lambda:us-west-2:123456789012:function:f:1/durable-execution/n/exec-1";
    let input = durable_yield_tests::first_invocation(arn, "\"ada\"");
    let buffer = Buffer::default();
    let subscriber =
        tracing_subscriber::registry().with(JsonLogLayer::stdout().with_writer(buffer.clone()));
    let output = tracing::subscriber::with_default(subscriber, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let mut function = DurableFunction::new(
                    greet,
                    durable_yield_tests::AcceptingService,
                    durable_yield::CheckpointBatching::default(),
                );
                function.call(LambdaEvent::new(input, context)).await
            })
    })
    .unwrap();
    assert_eq!(serde_json::to_value(&output).unwrap()["Status"], "PENDING");
    let lines = parsed(&buffer);
    for line in lines.iter().filter(|l| l["target"] == "logging") {
        assert_eq!(line["durableExecutionArn"], arn, "{line}");
    }
    lines
}

#[cfg(feature = "lambda")]
#[test]
fn lines_on_lambda_carry_the_request_id_and_the_tenant_when_there_is_one() {
    let mut context = lambda_runtime::Context::default();
    context.request_id = "req-7".into();
    context.tenant_id = Some("tenant-42".into());
    let lines = lambda_lines(context);
    assert_eq!(messages(&lines), ["greeting started", "composing"]);
    for line in lines.iter().filter(|l| l["target"] == "logging") {
        assert_eq!(line["requestId"], "req-7", "{line}");
        assert_eq!(line["tenantId"], "tenant-42", "{line}");
    }
    let composing = lines.iter().find(|l| l["message"] == "composing").unwrap();
    assert_eq!(composing["operationName"], "compose");

    // No tenant (the usual case): no `tenantId` key at all, as AWS's
    // JavaScript SDK leaves it out.
    let mut context = lambda_runtime::Context::default();
    context.request_id = "req-8".into();
    let lines = lambda_lines(context);
    assert_eq!(messages(&lines), ["greeting started", "composing"]);
    for line in lines.iter().filter(|l| l["target"] == "logging") {
        assert_eq!(line["requestId"], "req-8", "{line}");
        assert!(line.get("tenantId").is_none(), "{line}");
    }
}

/// Charges in a step whose body writes its line inside a span of its own,
/// whose fields include names the SDK and the line use.
async fn charge(mut wf: Workflow, order: u64) -> Result<u64, StepError> {
    tracing::info!("checkout started");
    wf.step("charge", move |_| async move {
        let span = tracing::info_span!(
            "order",
            order_id = order,
            operationName = "not the step's name",
            timestamp = "not a time",
        );
        let _entered = span.enter();
        tracing::info!(amount = 12, "charging");
        Ok(order)
    })
    .await
}

/// Runs `charge` on `runner` with `layer`; the lines.
fn charge_lines(runner: LocalRunner, layer: JsonLogLayer) -> Vec<Value> {
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::registry().with(layer.with_writer(buffer.clone()));
    let run = tracing::subscriber::with_default(subscriber, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(runner.run(&charge, &7))
            .unwrap()
    });
    assert_eq!(run.result, Some(7));
    parsed(&buffer)
}

fn line<'a>(lines: &'a [Value], message: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["message"] == message)
        .unwrap_or_else(|| panic!("no line {message:?} in {lines:?}"))
}

#[test]
fn span_fields_of_the_codes_own_spans_are_written_when_asked_for() {
    let lines = charge_lines(LocalRunner::new(), JsonLogLayer::stdout().span_fields());
    let charging = line(&lines, "charging");
    assert_eq!(charging["order_id"], 7, "{charging}");
    assert_eq!(charging["amount"], 12);
    // The SDK's fields and the line's own are never replaced.
    assert_eq!(charging["operationName"], "charge");
    assert_eq!(charging["attempt"], 1);
    assert_eq!(charging["level"], "INFO");
    let ts = charging["timestamp"].as_str().unwrap();
    assert!(ts.len() == 24 && ts.ends_with('Z'), "{ts}");
    // A line outside the span has none of its fields.
    assert!(line(&lines, "checkout started").get("order_id").is_none());

    // Not asked for: only the SDK's fields, as before.
    let lines = charge_lines(LocalRunner::new(), JsonLogLayer::stdout());
    let charging = line(&lines, "charging");
    assert!(charging.get("order_id").is_none(), "{charging}");
    assert_eq!(charging["operationName"], "charge");
}

/// A plugin whose scope puts every line of user code in a `tenant` span:
/// what AWS's JavaScript SDK's `enrichLogContext` hook is for.
struct TenantPlugin;
struct TenantHooks;
struct TenantScope;

impl durable_yield::plugin::Scope for TenantScope {
    fn run(&self, code: &mut dyn FnMut()) {
        tracing::info_span!("tenant", tenant = "acme").in_scope(code)
    }
}

impl durable_yield::plugin::InvocationHooks for TenantHooks {
    fn scope(
        &mut self,
        code: durable_yield::plugin::UserCode<'_>,
    ) -> Option<std::sync::Arc<dyn durable_yield::plugin::Scope>> {
        // The workflow's code and each step attempt's body, which runs
        // on a task of its own, outside the workflow's scope.
        matches!(
            code,
            durable_yield::plugin::UserCode::Workflow | durable_yield::plugin::UserCode::Attempt(_)
        )
        .then(|| std::sync::Arc::new(TenantScope) as _)
    }
}

impl durable_yield::plugin::Plugin for TenantPlugin {
    fn invocation(
        &self,
        _: &durable_yield::plugin::InvocationStart<'_>,
    ) -> Result<Box<dyn durable_yield::plugin::InvocationHooks>, durable_yield::BoxError> {
        Ok(Box::new(TenantHooks))
    }
}

#[test]
fn a_plugins_scope_adds_fields_to_every_line_of_user_code() {
    let runner = LocalRunner::new().plugin(TenantPlugin);
    let lines = charge_lines(runner, JsonLogLayer::stdout().span_fields());
    for message in ["checkout started", "charging"] {
        let line = line(&lines, message);
        assert_eq!(line["tenant"], "acme", "{line}");
        assert!(line["durableExecutionArn"].is_string(), "{line}");
    }
    assert_eq!(line(&lines, "charging")["order_id"], 7);
}

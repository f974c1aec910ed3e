//! One workflow per conformance requirement, doing what the requirement's
//! `handler` and `invocations` describe, in durable-yield's API.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use durable_yield::codecs::{Codec, CodecError, Json, PayloadContext};
use durable_yield::local::CrashPoint;
use durable_yield::retry::{ExponentialBackoff, FixedDelay, Jitter, NoRetry};
use durable_yield::{
    ChildConfig, LocalRun, LocalRunner, RetryStrategyExt, StepConfig, StepContext, StepError,
    StepFailure, StepSemantics, WaitConfig, Workflow,
};
use durable_yield_tests::drive;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

type Outcome = Result<Value, durable_yield::BoxError>;

/// Whether a workflow here covers requirement `id`.
pub fn covers(id: &str) -> bool {
    IDS.contains(&id)
}

const IDS: &[&str] = &[
    "1-1", "1-2", "1-3", "1-4", "1-5", "1-6", "1-7", "1-8", "1-9", "1-10", "1-11", "1-12", "1-13",
    "1-14", "1-15", "1-16", "1-17", "1-18", "1-19", "1-20", "2-1", "2-2", "2-3", "2-4", "2-5",
    "3-1", "3-2", "3-3", "3-4", "3-5", "3-6", "3-7", "3-8", "3-9", "3-10", "3-11", "3-12", "3-13",
    "3-14", "3-15", "3-16", "3-17", "3-18",
];

/// Runs the workflow of requirement `id` on `input` to its end.
pub async fn run(id: &str, input: Value) -> Result<LocalRun<Value>, String> {
    let runner = LocalRunner::new();
    let run = match id {
        "1-1" => runner.run(&step_basic, &input).await,
        "1-2" => runner.run(&step_named, &input).await,
        "1-3" => runner.run(&sequential_steps, &input).await,
        "1-4" => runner.run(&complex_object, &input).await,
        "1-5" => runner.run(&null_result, &input).await,
        "1-6" => runner.run(&custom_serdes, &input).await,
        "1-7" => runner.run(&step_logger, &input).await,
        "1-8" => runner.run(&step_then_wait, &input).await,
        "1-9" => runner.run(&replay_skips_step, &input).await,
        "1-10" => runner.run(&replay_rethrows, &input).await,
        "1-11" => runner.run(&retry_then_succeed, &input).await,
        "1-12" => runner.run(&retry_exhausted, &input).await,
        "1-13" => runner.run(&default_retry, &input).await,
        "1-14" => runner.run(&custom_backoff, &input).await,
        "1-15" => runner.run(&retry_transient, &input).await,
        "1-16" => runner.run(&no_retry_transient, &input).await,
        "1-17" => return crashing(input, at_most_once_no_retry).await,
        "1-18" => return crashing(input, at_most_once_retry).await,
        "1-19" => runner.run(&fails_permanently, &input).await,
        "1-20" => runner.run(&error_caught, &input).await,
        "2-1" => runner.run(&wait_basic, &input).await,
        "2-2" => runner.run(&wait_named, &input).await,
        "2-3" => runner.run(&two_waits, &input).await,
        "2-4" => runner.run(&wait_minute, &input).await,
        "2-5" => runner.run(&wait_hour, &input).await,
        "3-1" => runner.run(&child_basic, &input).await,
        "3-2" => runner.run(&child_named, &input).await,
        "3-3" => runner.run(&child_two_steps, &input).await,
        "3-4" => runner.run(&child_fails, &input).await,
        "3-5" => runner.run(&child_failure_caught, &input).await,
        "3-6" => runner.run(&nested_children, &input).await,
        "3-7" => runner.run(&child_step_retried, &input).await,
        "3-8" => runner.run(&child_step_exhausted, &input).await,
        "3-9" => runner.run(&child_then_wait, &input).await,
        "3-10" => runner.run(&child_step_and_wait, &input).await,
        "3-11" => runner.run(&child_large_result, &input).await,
        "3-12" => return child_interrupted(input).await,
        "3-13" => runner.run(&child_wait_only, &input).await,
        "3-14" => runner.run(&child_custom_serdes, &input).await,
        "3-15" => runner.run(&child_error_without_step, &input).await,
        "3-16" => runner.run(&child_null, &input).await,
        "3-17" => runner.run(&child_logs_only, &input).await,
        "3-18" => runner.run(&child_then_more, &input).await,
        other => return Err(format!("no workflow for {other}")),
    };
    run.map_err(|e| e.to_string())
}

/// Runs `workflow` with the process dying right after the service
/// applied the first checkpoint request (a step's START, while its body
/// runs), as `process.exit` in the body does.
async fn crashing<W>(input: Value, workflow: W) -> Result<LocalRun<Value>, String>
where
    W: durable_yield::WorkflowFn<Value, Value>,
{
    let execution = LocalRunner::new()
        .start(&input)
        .map_err(|e| e.to_string())?;
    execution.inject_crash(1, CrashPoint::AfterRequest);
    drive(&execution, &workflow, 20).await?;
    execution.finish().map_err(|e| e.to_string())
}

fn text(input: &Value) -> String {
    match input {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn greeting(input: &Value) -> String {
    format!("Hello, {}!", text(input))
}

// ---- step (1-x)

async fn step_basic(mut wf: Workflow, input: Value) -> Outcome {
    let greeting = greeting(&input);
    let out: String = wf
        .step_with(StepConfig::new(), move |_| async move { Ok(greeting) })
        .await?;
    Ok(json!(out))
}

async fn step_named(mut wf: Workflow, input: Value) -> Outcome {
    let greeting = greeting(&input);
    let out: String = wf
        .step("custom_step_name", move |_| async move { Ok(greeting) })
        .await?;
    Ok(json!(out))
}

async fn sequential_steps(mut wf: Workflow, _: Value) -> Outcome {
    let first: String = wf
        .step("step_one", |_| async { Ok("first".to_owned()) })
        .await?;
    let second: String = wf
        .step(
            "step_two",
            move |_| async move { Ok(format!("{first}_second")) },
        )
        .await?;
    Ok(json!(second))
}

async fn complex_object(mut wf: Workflow, input: Value) -> Outcome {
    let out: Value = wf
        .step("build_response", move |_| async move {
            let tags = input.get("tags").cloned().unwrap_or(json!([]));
            let count = tags.as_array().map_or(0, Vec::len);
            Ok(json!({
                "user": {"name": input.get("name").cloned().unwrap_or(Value::Null), "tags": tags},
                "count": count,
            }))
        })
        .await?;
    Ok(out)
}

async fn null_result(mut wf: Workflow, _: Value) -> Outcome {
    let () = wf.step("do_nothing", |_| async { Ok(()) }).await?;
    Ok(Value::Null)
}

/// A codec that writes every string of a value in upper case (JSON
/// otherwise, untagged).
#[derive(Clone)]
struct Uppercase;

fn upper(value: Value) -> Value {
    match value {
        Value::String(s) => Value::String(s.to_uppercase()),
        Value::Array(items) => Value::Array(items.into_iter().map(upper).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, upper(v))).collect()),
        other => other,
    }
}

impl Codec for Uppercase {
    fn id(&self) -> &str {
        "uppercase"
    }
    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        cx: &PayloadContext<'_>,
    ) -> Result<Vec<u8>, CodecError> {
        let value = serde_json::to_value(value).map_err(|e| CodecError::Encode {
            codec: self.id().to_owned(),
            message: e.to_string(),
        })?;
        Json.encode(&upper(value), cx)
    }
    fn decode<T: DeserializeOwned>(
        &self,
        bytes: &[u8],
        cx: &PayloadContext<'_>,
    ) -> Result<T, CodecError> {
        Json.decode(bytes, cx)
    }
    fn is_text(&self) -> bool {
        true
    }
    fn tagged(&self) -> bool {
        false
    }
    fn binds_context(&self) -> bool {
        false
    }
}

async fn custom_serdes(mut wf: Workflow, input: Value) -> Outcome {
    let out: String = wf
        .step_with(
            StepConfig::named("return_input").codec(Uppercase),
            move |_| async move { Ok(text(&input)) },
        )
        .await?;
    Ok(json!(out))
}

async fn step_logger(mut wf: Workflow, input: Value) -> Outcome {
    let name = text(&input);
    let out: String = wf
        .step("greet", move |_ctx: StepContext| async move {
            tracing::info!("Greeting step started for: {name}");
            let greeting = format!("Hello, {name}!");
            tracing::info!("Greeting step completed with: {greeting}");
            Ok(greeting)
        })
        .await?;
    Ok(json!(out))
}

async fn step_then_wait(mut wf: Workflow, _: Value) -> Outcome {
    let out: String = wf
        .step("compute", |_| async { Ok("computed".to_owned()) })
        .await?;
    wf.wait(WaitConfig::new(), Duration::from_secs(2)).await;
    Ok(json!(out))
}

/// How many times the body of 1-9's step ran (it must run once).
static CACHED_RUNS: AtomicU32 = AtomicU32::new(0);

async fn replay_skips_step(mut wf: Workflow, _: Value) -> Outcome {
    let out: String = wf
        .step("cache", |_| async {
            CACHED_RUNS.fetch_add(1, Ordering::SeqCst);
            Ok("cached_value".to_owned())
        })
        .await?;
    wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
    if CACHED_RUNS.load(Ordering::SeqCst) != 1 {
        return Err("the succeeded step ran again on replay".into());
    }
    Ok(json!(out))
}

async fn replay_rethrows(mut wf: Workflow, _: Value) -> Outcome {
    let failed: Result<String, StepError> = wf
        .step_with(StepConfig::named("fails").retry(NoRetry), |_| async {
            Err(StepFailure::new("Error", "step executed and failed"))
        })
        .await;
    let caught = failed.is_err();
    wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
    Ok(json!({ "caught": caught }))
}

async fn retry_then_succeed(mut wf: Workflow, _: Value) -> Outcome {
    let out: String = wf
        .step_with(
            StepConfig::named("unreliable").retry(FixedDelay::new(Duration::from_secs(1), 3)),
            |ctx| async move {
                if ctx.attempt() == 1 {
                    Err(StepFailure::new("Error", "first attempt fails"))
                } else {
                    Ok("Operation succeeded".to_owned())
                }
            },
        )
        .await?;
    Ok(json!(out))
}

async fn retry_exhausted(mut wf: Workflow, _: Value) -> Outcome {
    let out: String = wf
        .step_with(
            StepConfig::named("always_fail").retry(FixedDelay::new(Duration::from_secs(1), 4)),
            |_| async { Err(StepFailure::new("Error", "always fails")) },
        )
        .await?;
    Ok(json!(out))
}

async fn default_retry(mut wf: Workflow, _: Value) -> Outcome {
    let out: String = wf
        .step("unreliable", |ctx| async move {
            if ctx.attempt() < 3 {
                Err(StepFailure::new("Error", "fails twice"))
            } else {
                Ok("third time".to_owned())
            }
        })
        .await?;
    Ok(json!(out))
}

async fn custom_backoff(mut wf: Workflow, _: Value) -> Outcome {
    let strategy = ExponentialBackoff::new()
        .max_attempts(5)
        .initial_delay(Duration::from_secs(2))
        .backoff_rate(3.0)
        .jitter(Jitter::None);
    let out: String = wf
        .step_with(
            StepConfig::named("flaky").retry(strategy),
            |ctx| async move {
                if ctx.attempt() < 3 {
                    Err(StepFailure::new("Error", "fails twice"))
                } else {
                    Ok("done".to_owned())
                }
            },
        )
        .await?;
    Ok(json!(out))
}

/// A transient failure, retried by 1-15's strategy and not by 1-16's.
#[derive(Debug)]
struct TransientError;

impl std::fmt::Display for TransientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the service is briefly unavailable")
    }
}

impl std::error::Error for TransientError {}

async fn retry_transient(mut wf: Workflow, _: Value) -> Outcome {
    let strategy = FixedDelay::new(Duration::from_secs(1), 3).only_error_types(["TransientError"]);
    let out: String = wf
        .step_with(
            StepConfig::named("transient").retry(strategy),
            |ctx| async move {
                if ctx.attempt() == 1 {
                    Err(StepFailure::from_error(TransientError))
                } else {
                    Ok("recovered".to_owned())
                }
            },
        )
        .await?;
    Ok(json!(out))
}

async fn no_retry_transient(mut wf: Workflow, _: Value) -> Outcome {
    let strategy = FixedDelay::new(Duration::from_secs(1), 3)
        .only_if(|e| e.error_type.as_deref() != Some("TransientError"));
    let out: String = wf
        .step_with(StepConfig::named("transient").retry(strategy), |_| async {
            Err(StepFailure::from_error(TransientError))
        })
        .await?;
    Ok(json!(out))
}

async fn at_most_once_no_retry(mut wf: Workflow, input: Value) -> Outcome {
    let logged = text(&input);
    let out: String = wf
        .step_with(
            StepConfig::named("at_most_once_flaky_step")
                .semantics(StepSemantics::AtMostOncePerRetry)
                .retry(NoRetry),
            move |_| async move {
                tracing::info!("{logged}");
                Ok("never recorded".to_owned())
            },
        )
        .await?;
    Ok(json!(out))
}

async fn at_most_once_retry(mut wf: Workflow, input: Value) -> Outcome {
    let logged = text(&input);
    let out: String = wf
        .step_with(
            StepConfig::named("at_most_once_flaky_step")
                .semantics(StepSemantics::AtMostOncePerRetry)
                .retry(FixedDelay::new(Duration::from_secs(1), 3)),
            move |_| async move {
                tracing::info!("{logged}");
                Ok("succeeded on second attempt".to_owned())
            },
        )
        .await?;
    Ok(json!(out))
}

async fn fails_permanently(mut wf: Workflow, _: Value) -> Outcome {
    let out: String = wf
        .step_with(StepConfig::named("failing").retry(NoRetry), |_| async {
            Err(StepFailure::new("Error", "always fails"))
        })
        .await?;
    Ok(json!(out))
}

async fn error_caught(mut wf: Workflow, _: Value) -> Outcome {
    let failed: Result<String, StepError> = wf
        .step_with(StepConfig::named("failing").retry(NoRetry), |_| async {
            Err(StepFailure::new("Error", "always fails"))
        })
        .await;
    let fallback = match failed {
        Ok(v) => v,
        Err(_) => "fallback".to_owned(),
    };
    let out: String = wf
        .step("recover", move |_| async move {
            Ok(format!("{fallback}_result"))
        })
        .await?;
    Ok(json!(out))
}

// ---- wait (2-x)

async fn wait_basic(mut wf: Workflow, _: Value) -> Outcome {
    wf.wait(WaitConfig::new(), Duration::from_secs(2)).await;
    Ok(Value::Null)
}

async fn wait_named(mut wf: Workflow, _: Value) -> Outcome {
    wf.wait("custom_wait_name", Duration::from_secs(2)).await;
    Ok(Value::Null)
}

async fn two_waits(mut wf: Workflow, _: Value) -> Outcome {
    wf.wait("wait-1", Duration::from_secs(2)).await;
    wf.wait("wait-2", Duration::from_secs(2)).await;
    Ok(json!({ "completedWaits": 2 }))
}

async fn wait_minute(mut wf: Workflow, _: Value) -> Outcome {
    wf.wait(WaitConfig::new(), Duration::from_secs(60)).await;
    Ok(Value::Null)
}

async fn wait_hour(mut wf: Workflow, _: Value) -> Outcome {
    wf.wait(WaitConfig::new(), Duration::from_secs(60 * 60))
        .await;
    Ok(Value::Null)
}

// ---- child contexts (3-x)

/// A step returning `value`.
async fn echo(wf: &mut Workflow, name: &'static str, value: String) -> Result<String, StepError> {
    wf.step(name, move |_| async move { Ok(value) }).await
}

async fn child_basic(mut wf: Workflow, input: Value) -> Outcome {
    let value = text(&input);
    let out: String = wf
        .child_with(ChildConfig::new(), move |mut wf| async move {
            echo(&mut wf, "echo", value).await
        })
        .await?;
    Ok(json!(out))
}

async fn child_named(mut wf: Workflow, input: Value) -> Outcome {
    let name = text(input.get("name").unwrap_or(&Value::Null));
    let value = text(input.get("value").unwrap_or(&Value::Null));
    let out: String = wf
        .child(name, move |mut wf| async move {
            echo(&mut wf, "echo", value).await
        })
        .await?;
    Ok(json!(out))
}

async fn child_two_steps(mut wf: Workflow, input: Value) -> Outcome {
    let value = text(&input);
    let out: String = wf
        .child("two_steps", move |mut wf| async move {
            let first = echo(&mut wf, "first", value).await?;
            echo(&mut wf, "second", first).await
        })
        .await?;
    Ok(json!(out))
}

async fn failing_step(wf: &mut Workflow) -> Result<String, StepError> {
    wf.step_with(StepConfig::named("failing").retry(NoRetry), |_| async {
        Err(StepFailure::new("Error", "the step fails"))
    })
    .await
}

async fn child_fails(mut wf: Workflow, _: Value) -> Outcome {
    let out: String = wf
        .child("fails", |mut wf| async move { failing_step(&mut wf).await })
        .await?;
    Ok(json!(out))
}

async fn child_failure_caught(mut wf: Workflow, input: Value) -> Outcome {
    let failed: Result<String, StepError> = wf
        .child("fails", |mut wf| async move { failing_step(&mut wf).await })
        .await;
    assert!(failed.is_err(), "the child context failed");
    let out = echo(&mut wf, "recovery", text(&input)).await?;
    Ok(json!(out))
}

async fn nested_children(mut wf: Workflow, input: Value) -> Outcome {
    let value = text(&input);
    let out: String = wf
        .child("outer", move |mut wf| async move {
            let outer = echo(&mut wf, "outer_step", value).await?;
            wf.child("inner", move |mut wf| async move {
                echo(&mut wf, "inner_step", outer).await
            })
            .await
        })
        .await?;
    Ok(json!(out))
}

async fn child_step_retried(mut wf: Workflow, input: Value) -> Outcome {
    let value = text(&input);
    let out: String = wf
        .child("retried", move |mut wf| async move {
            wf.step_with(
                StepConfig::named("flaky").retry(FixedDelay::new(Duration::from_secs(1), 3)),
                move |ctx| async move {
                    if ctx.attempt() == 1 {
                        Err(StepFailure::new("Error", "first attempt fails"))
                    } else {
                        Ok(value)
                    }
                },
            )
            .await
        })
        .await?;
    Ok(json!(out))
}

async fn child_step_exhausted(mut wf: Workflow, _: Value) -> Outcome {
    let out: String = wf
        .child("exhausted", |mut wf| async move {
            wf.step_with(
                StepConfig::named("always_fails").retry(FixedDelay::new(Duration::from_secs(1), 2)),
                |_| async { Err::<String, _>(StepFailure::new("Error", "always fails")) },
            )
            .await
        })
        .await?;
    Ok(json!(out))
}

async fn child_then_wait(mut wf: Workflow, input: Value) -> Outcome {
    let value = text(&input);
    let out: String = wf
        .child("cached", move |mut wf| async move {
            echo(&mut wf, "echo", value).await
        })
        .await?;
    wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
    Ok(json!(out))
}

async fn child_step_and_wait(mut wf: Workflow, input: Value) -> Outcome {
    let value = text(&input);
    let out: String = wf
        .child("step_and_wait", move |mut wf| async move {
            let out = echo(&mut wf, "echo", value).await?;
            wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
            Ok::<_, StepError>(out)
        })
        .await?;
    Ok(json!(out))
}

async fn child_large_result(mut wf: Workflow, input: Value) -> Outcome {
    let value = text(&input);
    let out: String = wf
        .child("large", move |mut wf| async move {
            tracing::info!("{value}");
            let small = echo(&mut wf, "small", value).await?;
            // Over the 256 KiB a CONTEXT result may hold: ReplayChildren.
            Ok::<_, StepError>(small.repeat(300 * 1024 / small.len().max(1) + 1))
        })
        .await?;
    wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
    Ok(json!(out.len()))
}

/// Whether 3-12's step body has run once (and hung, until the crash).
static INTERRUPTED_ONCE: AtomicU32 = AtomicU32::new(0);

async fn interrupted_child(mut wf: Workflow, input: Value) -> Outcome {
    let value = text(&input);
    let out: String = wf
        .child("interrupted", move |mut wf| async move {
            wf.step("slow", move |_| async move {
                if INTERRUPTED_ONCE.fetch_add(1, Ordering::SeqCst) == 0 {
                    // The first run never ends: the process dies in it.
                    std::future::pending::<()>().await;
                }
                Ok(value)
            })
            .await
        })
        .await?;
    Ok(json!(out))
}

/// 3-12: the process dies once the service recorded the step's START
/// (sent while its body runs), before its outcome; the next invocation
/// runs the body again without a new START.
async fn child_interrupted(input: Value) -> Result<LocalRun<Value>, String> {
    let execution = LocalRunner::new()
        .start(&input)
        .map_err(|e| e.to_string())?;
    let watched = execution.clone();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let crash = std::future::poll_fn(move |cx| {
        let started = watched.operations().iter().any(|o| {
            o.op_type == durable_yield::model::OperationType::Step
                && o.status == durable_yield::model::OperationStatus::Started
        });
        if started || std::time::Instant::now() >= deadline {
            return std::task::Poll::Ready(());
        }
        std::thread::sleep(Duration::from_millis(1));
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    });
    if execution
        .invoke_crashing(&interrupted_child, crash)
        .await
        .is_some()
    {
        return Err("the first invocation was not interrupted".into());
    }
    drive(&execution, &interrupted_child, 20).await?;
    execution.finish().map_err(|e| e.to_string())
}

async fn child_wait_only(mut wf: Workflow, input: Value) -> Outcome {
    let value = text(&input);
    let inner = value.clone();
    let out: String = wf
        .child("waits", move |mut wf| async move {
            wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
            Ok::<_, StepError>(inner)
        })
        .await?;
    let after = echo(&mut wf, "after", out).await?;
    Ok(json!(after))
}

/// A codec that writes a string in upper case as plain text (not JSON),
/// and reads plain text back as the string.
#[derive(Clone)]
struct UppercaseText;

impl Codec for UppercaseText {
    fn id(&self) -> &str {
        "uppercase-text"
    }
    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        _: &PayloadContext<'_>,
    ) -> Result<Vec<u8>, CodecError> {
        match serde_json::to_value(value) {
            Ok(Value::String(s)) => Ok(s.to_uppercase().into_bytes()),
            Ok(other) => Ok(other.to_string().into_bytes()),
            Err(e) => Err(CodecError::Encode {
                codec: self.id().to_owned(),
                message: e.to_string(),
            }),
        }
    }
    fn decode<T: DeserializeOwned>(
        &self,
        bytes: &[u8],
        _: &PayloadContext<'_>,
    ) -> Result<T, CodecError> {
        let text = String::from_utf8_lossy(bytes).into_owned();
        serde_json::from_value(Value::String(text)).map_err(|e| CodecError::Decode {
            codec: self.id().to_owned(),
            message: e.to_string(),
        })
    }
    fn is_text(&self) -> bool {
        true
    }
    fn tagged(&self) -> bool {
        false
    }
    fn binds_context(&self) -> bool {
        false
    }
}

async fn child_custom_serdes(mut wf: Workflow, input: Value) -> Outcome {
    let value = text(&input);
    let out: String = wf
        .child_with(
            ChildConfig::named("uppercased").codec(UppercaseText),
            move |mut wf| async move { echo(&mut wf, "echo", value).await },
        )
        .await?;
    Ok(json!(out))
}

async fn child_error_without_step(mut wf: Workflow, _: Value) -> Outcome {
    let out: String = wf
        .child("throws", |_wf| async move {
            Err::<String, _>(StepFailure::new("Error", "thrown in the child body"))
        })
        .await?;
    Ok(json!(out))
}

async fn child_null(mut wf: Workflow, _: Value) -> Outcome {
    let () = wf
        .child("nothing", |_wf| async move { Ok::<(), StepError>(()) })
        .await?;
    Ok(Value::Null)
}

/// How many times 3-17's child body ran (once: it is not replayed).
static LOGGING_CHILD_RUNS: AtomicU32 = AtomicU32::new(0);

async fn child_logs_only(mut wf: Workflow, input: Value) -> Outcome {
    let value = text(&input);
    let out: String = wf
        .child("logs", move |_wf| async move {
            LOGGING_CHILD_RUNS.fetch_add(1, Ordering::SeqCst);
            tracing::info!("{value}");
            Ok::<_, StepError>(value)
        })
        .await?;
    wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
    if LOGGING_CHILD_RUNS.load(Ordering::SeqCst) != 1 {
        return Err("the finished child context ran again on replay".into());
    }
    Ok(json!(out))
}

async fn child_then_more(mut wf: Workflow, input: Value) -> Outcome {
    let value = text(&input);
    let out: String = wf
        .child("step_and_wait", move |mut wf| async move {
            let out = echo(&mut wf, "inner", value).await?;
            wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
            Ok::<_, StepError>(out)
        })
        .await?;
    let after = echo(&mut wf, "outer", out).await?;
    wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
    Ok(json!(after))
}

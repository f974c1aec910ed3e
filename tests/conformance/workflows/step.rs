//! The workflows of the step (1-x) requirements.

use super::*;

pub(super) async fn step_basic(mut wf: Workflow, input: Value) -> Outcome {
    let greeting = greeting(&input);
    let out: String = wf
        .step_with(StepConfig::new(), move |_| async move { Ok(greeting) })
        .await?;
    Ok(json!(out))
}

pub(super) async fn step_named(mut wf: Workflow, input: Value) -> Outcome {
    let greeting = greeting(&input);
    let out: String = wf
        .step("custom_step_name", move |_| async move { Ok(greeting) })
        .await?;
    Ok(json!(out))
}

pub(super) async fn sequential_steps(mut wf: Workflow, _: Value) -> Outcome {
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

pub(super) async fn complex_object(mut wf: Workflow, input: Value) -> Outcome {
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

pub(super) async fn null_result(mut wf: Workflow, _: Value) -> Outcome {
    let () = wf.step("do_nothing", |_| async { Ok(()) }).await?;
    Ok(Value::Null)
}

/// `value` with every string in upper case.
pub(super) fn upper(value: Value) -> Value {
    match value {
        Value::String(s) => Value::String(s.to_uppercase()),
        Value::Array(items) => Value::Array(items.into_iter().map(upper).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, upper(v))).collect()),
        other => other,
    }
}

pub(super) async fn custom_serdes(mut wf: Workflow, input: Value) -> Outcome {
    let out: String = wf
        .step_with(
            StepConfig::named("return_input").codec(UPPERCASE),
            move |_| async move { Ok(text(&input)) },
        )
        .await?;
    Ok(json!(out))
}

pub(super) async fn step_logger(mut wf: Workflow, input: Value) -> Outcome {
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

pub(super) async fn step_then_wait(mut wf: Workflow, _: Value) -> Outcome {
    let out: String = wf
        .step("compute", |_| async { Ok("computed".to_owned()) })
        .await?;
    wf.wait(WaitConfig::new(), Duration::from_secs(2)).await;
    Ok(json!(out))
}

/// How many times the body of 1-9's step ran (it must run once).
pub(super) static CACHED_RUNS: RunCounter = RunCounter::new();

pub(super) async fn replay_skips_step(mut wf: Workflow, _: Value) -> Outcome {
    let out: String = wf
        .step("cache", |ctx| async move {
            CACHED_RUNS.ran(ctx.execution_arn());
            Ok("cached_value".to_owned())
        })
        .await?;
    wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
    if CACHED_RUNS.runs(wf.execution_arn()) != 1 {
        return Err("the succeeded step ran again on replay".into());
    }
    Ok(json!(out))
}

pub(super) async fn replay_rethrows(mut wf: Workflow, _: Value) -> Outcome {
    let failed: Result<String, StepError> = wf
        .step_with(StepConfig::named("fails").retry(NoRetry), |_| async {
            Err(StepFailure::new("Error", "step executed and failed"))
        })
        .await;
    let caught = failed.is_err();
    wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
    Ok(json!({ "caught": caught }))
}

pub(super) async fn retry_then_succeed(mut wf: Workflow, _: Value) -> Outcome {
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

pub(super) async fn retry_exhausted(mut wf: Workflow, _: Value) -> Outcome {
    let out: String = wf
        .step_with(
            StepConfig::named("always_fail").retry(FixedDelay::new(Duration::from_secs(1), 4)),
            |_| async { Err(StepFailure::new("Error", "always fails")) },
        )
        .await?;
    Ok(json!(out))
}

pub(super) async fn default_retry(mut wf: Workflow, _: Value) -> Outcome {
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

pub(super) async fn custom_backoff(mut wf: Workflow, _: Value) -> Outcome {
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
pub(super) struct TransientError;

impl std::fmt::Display for TransientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the service is briefly unavailable")
    }
}

impl std::error::Error for TransientError {}

pub(super) async fn retry_transient(mut wf: Workflow, _: Value) -> Outcome {
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

pub(super) async fn no_retry_transient(mut wf: Workflow, _: Value) -> Outcome {
    let strategy = FixedDelay::new(Duration::from_secs(1), 3)
        .only_if(|e| e.error_type.as_deref() != Some("TransientError"));
    let out: String = wf
        .step_with(StepConfig::named("transient").retry(strategy), |_| async {
            Err(StepFailure::from_error(TransientError))
        })
        .await?;
    Ok(json!(out))
}

/// A step run at most once per attempt that writes the input as its log
/// line; its first attempt never ends (the process dies in it, see
/// `crashing` in `cases.rs`), a later one returns `result`.
pub(super) async fn at_most_once(
    wf: &mut Workflow,
    input: &Value,
    retry: impl durable_yield::RetryStrategy,
    result: &'static str,
) -> Outcome {
    let logged = text(input);
    let out: String = wf
        .step_with(
            StepConfig::named("at_most_once_flaky_step")
                .semantics(StepSemantics::AtMostOncePerRetry)
                .retry(retry),
            move |ctx| async move {
                tracing::info!("{logged}");
                if ctx.attempt() == 1 {
                    die_here().await;
                }
                Ok(result.to_owned())
            },
        )
        .await?;
    Ok(json!(out))
}

pub(super) async fn at_most_once_no_retry(mut wf: Workflow, input: Value) -> Outcome {
    at_most_once(&mut wf, &input, NoRetry, "never recorded").await
}

pub(super) async fn at_most_once_retry(mut wf: Workflow, input: Value) -> Outcome {
    let retry = FixedDelay::new(Duration::from_secs(1), 3);
    at_most_once(&mut wf, &input, retry, "succeeded on second attempt").await
}

pub(super) async fn fails_permanently(mut wf: Workflow, _: Value) -> Outcome {
    let out: String = wf
        .step_with(StepConfig::named("failing").retry(NoRetry), |_| async {
            Err(StepFailure::new("Error", "always fails"))
        })
        .await?;
    Ok(json!(out))
}

pub(super) async fn error_caught(mut wf: Workflow, _: Value) -> Outcome {
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

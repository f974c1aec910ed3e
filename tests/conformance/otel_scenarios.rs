//! The workflows of AWS's OpenTelemetry conformance requirements (PyPI
//! `aws-durable-execution-conformance-tests-otel` 0.2.0): one per
//! `scenario` their `Input` names, doing what the requirement's
//! description and expected history say, with the operation names the
//! history holds.

use std::time::Duration;

use durable_yield::retry::{FixedDelay, NoRetry};
use durable_yield::{
    Branch, ChildConfig, Condition, ConditionConfig, InvokeConfig, MapConfig, ParallelConfig,
    StepConfig, StepError, StepFailure, WaitForCallbackConfig, Workflow,
};
use serde_json::{Value, json};

/// What a scenario returns.
pub type Outcome = Result<Value, durable_yield::BoxError>;

/// Whether a workflow here runs `scenario`.
pub fn covers(scenario: &str) -> bool {
    matches!(
        scenario,
        "success"
            | "wait-resume"
            | "retry"
            | "terminal-failure"
            | "child-context"
            | "parallel-hierarchy"
            | "map-hierarchy"
            | "handled-failure"
            | "wait-for-condition"
            | "wait-for-callback"
            | "child-context-failure"
            | "parallel-failure"
            | "map-failure"
            | "wait-for-condition-failure"
            | "wait-for-callback-failure"
            | "execution-failure"
            | "virtual-context"
            | "long-wait"
            | "long-retry"
            | "long-callback"
            | "chained-invoke"
            | "chained-invoke-failure"
            | "long-chained-invoke"
            | "wait-interrupted"
    )
}

/// The long scenarios' delay (`delay_seconds`, in seconds).
fn delay(input: &Value) -> Duration {
    let seconds = match &input["delay_seconds"] {
        Value::String(s) => s.parse().unwrap_or(1),
        v => v.as_u64().unwrap_or(1),
    };
    Duration::from_secs(seconds)
}

fn failure(message: &str) -> StepFailure {
    StepFailure::new("OtelScenarioError", message)
}

/// A step that fails on its first attempt and succeeds on its second,
/// `delay` apart (a new invocation).
async fn retried(wf: &mut Workflow, name: &'static str, delay: Duration) -> Outcome {
    let out: String = wf
        .step_with(
            StepConfig::named(name).retry(FixedDelay::new(delay, 3)),
            |ctx| async move {
                if ctx.attempt() == 1 {
                    Err(failure("the first attempt fails"))
                } else {
                    Ok("recovered".to_owned())
                }
            },
        )
        .await?;
    Ok(json!(out))
}

/// A wait-for-callback whose submitter does nothing durable.
async fn callback(wf: &mut Workflow, name: &'static str) -> Result<Value, StepError> {
    wf.wait_for_callback_with(WaitForCallbackConfig::named(name), |_, _id: String| async {
        Ok::<_, StepFailure>(())
    })
    .await
}

/// Runs scenario `scenario` (see [`covers`]).
pub async fn run(mut wf: Workflow, input: Value) -> Outcome {
    let scenario = input["scenario"].as_str().unwrap_or_default().to_owned();
    match scenario.as_str() {
        "success" => {
            let out: String = wf
                .step("otel-success", |_| async { Ok("done".to_owned()) })
                .await?;
            Ok(json!(out))
        }
        "wait-resume" => {
            wf.wait("otel-wait", Duration::from_secs(1)).await;
            let out: String = wf
                .step("otel-after-resume", |_| async { Ok("resumed".to_owned()) })
                .await?;
            Ok(json!(out))
        }
        "retry" => retried(&mut wf, "otel-retry", Duration::from_secs(1)).await,
        "long-retry" => retried(&mut wf, "otel-long-retry", delay(&input)).await,
        "terminal-failure" => {
            let out: String = wf
                .step_with(
                    StepConfig::named("otel-terminal-failure").retry(NoRetry),
                    |_| async { Err(failure("the step fails")) },
                )
                .await?;
            Ok(json!(out))
        }
        "child-context" => {
            let out: String = wf
                .child("otel-child-context", |mut wf| async move {
                    wf.step("otel-child-step", |_| async { Ok("child".to_owned()) })
                        .await
                })
                .await?;
            Ok(json!(out))
        }
        "parallel-hierarchy" => {
            let branch = |name: &'static str, step: &'static str| {
                Branch::named(name, move |mut wf: Workflow| async move {
                    wf.step(step, |_| async { Ok(step.to_owned()) }).await
                })
            };
            let result = wf
                .parallel_with(
                    ParallelConfig::named("otel-parallel").max_concurrency(1),
                    vec![
                        branch("otel-parallel-branch-a", "otel-parallel-step-a"),
                        branch("otel-parallel-branch-b", "otel-parallel-step-b"),
                    ],
                )
                .await?;
            Ok(json!(result.into_values()?))
        }
        "map-hierarchy" => {
            let config = MapConfig::named("otel-map")
                .max_concurrency(1)
                .item_namer(|_: &u32, i| format!("otel-map-iteration-{i}"));
            let result = wf
                .map_with(config, vec![0_u32, 1], |mut wf, item, _| async move {
                    let name = format!("otel-map-step-{item}");
                    wf.step(name, move |_| async move { Ok(item * 2) }).await
                })
                .await?;
            Ok(json!(result.into_values()?))
        }
        "handled-failure" => {
            let failed: Result<String, StepError> = wf
                .step_with(
                    StepConfig::named("otel-handled-failure").retry(NoRetry),
                    |_| async { Err(failure("the step fails")) },
                )
                .await;
            let recovered = failed.is_err();
            let out: String = wf
                .step("otel-recovery-step", |_| async {
                    Ok("recovered".to_owned())
                })
                .await?;
            Ok(json!({ "handled": recovered, "out": out }))
        }
        "wait-for-condition" => {
            let config = ConditionConfig::named("otel-condition")
                .strategy(FixedDelay::new(Duration::from_secs(1), 5));
            let out: i64 = wf
                .wait_for_condition_with(config, 0_i64, |_, n: i64| async move {
                    let n = n + 1;
                    Ok(if n >= 2 {
                        Condition::Met(n)
                    } else {
                        Condition::NotMet(n)
                    })
                })
                .await?;
            Ok(json!(out))
        }
        "wait-for-condition-failure" => {
            let config = ConditionConfig::named("otel-failed-condition").strategy(NoRetry);
            let out: i64 = wf
                .wait_for_condition_with(config, 0_i64, |_, _: i64| async {
                    Err(failure("the check fails"))
                })
                .await?;
            Ok(json!(out))
        }
        "wait-for-callback" => Ok(callback(&mut wf, "otel-callback").await?),
        "long-callback" => Ok(callback(&mut wf, "otel-long-callback").await?),
        "wait-for-callback-failure" => Ok(callback(&mut wf, "otel-failed-callback").await?),
        "child-context-failure" => {
            let out: String = wf
                .child("otel-failed-child-context", |_| async {
                    Err::<String, _>(failure("the child context fails"))
                })
                .await?;
            Ok(json!(out))
        }
        "parallel-failure" => {
            let result = wf
                .parallel_with(
                    ParallelConfig::named("otel-failed-parallel"),
                    vec![Branch::named("otel-failed-parallel-branch", |_| async {
                        Err::<Value, _>(failure("the branch fails"))
                    })],
                )
                .await?;
            Ok(json!(result.into_values()?))
        }
        "map-failure" => {
            let config = MapConfig::named("otel-failed-map")
                .item_namer(|_: &u32, i| format!("otel-failed-map-iteration-{i}"));
            let result = wf
                .map_with(config, vec![0_u32], |_, _, _| async {
                    Err::<u32, _>(failure("the item fails"))
                })
                .await?;
            Ok(json!(result.into_values()?))
        }
        "execution-failure" => Err("the handler fails before any durable operation".into()),
        "virtual-context" => {
            let out: String = wf
                .child_with(
                    ChildConfig::named("otel-virtual-context").virtual_context(),
                    |_| async { Ok::<_, StepError>("virtual-complete".to_owned()) },
                )
                .await?;
            Ok(json!(out))
        }
        "wait-interrupted" => {
            // Longer than the execution's time (see `EXECUTION_TIMEOUT`).
            wf.wait("otel-interrupted-wait", Duration::from_secs(3600))
                .await;
            Ok(json!("never"))
        }
        "long-wait" => {
            wf.wait("otel-long-wait", delay(&input)).await;
            let out: String = wf
                .step("otel-after-long-wait", |_| async {
                    Ok("resumed".to_owned())
                })
                .await?;
            Ok(json!(out))
        }
        "chained-invoke" => {
            let config = InvokeConfig::named("otel-invoke");
            let out: Value = wf.invoke_with(config, TARGET, &json!("ping")).await?;
            Ok(out)
        }
        "chained-invoke-failure" => {
            let config = InvokeConfig::named("otel-failed-invoke");
            let out: Value = wf
                .invoke_with(config, FAILING_TARGET, &json!("ping"))
                .await?;
            Ok(out)
        }
        "long-chained-invoke" => {
            let config = InvokeConfig::named("otel-long-invoke");
            let out: Value = wf.invoke_with(config, LONG_TARGET, &input).await?;
            Ok(out)
        }
        other => Err(format!("no workflow for the scenario {other:?}").into()),
    }
}

/// The time every scenario's execution has (`wait-interrupted` waits
/// longer).
pub const EXECUTION_TIMEOUT: Duration = Duration::from_secs(900);

/// The durable function `chained-invoke` invokes.
pub const TARGET: &str = "otel-target";
/// The durable function `chained-invoke-failure` invokes.
pub const FAILING_TARGET: &str = "otel-failing-target";
/// The durable function `long-chained-invoke` invokes.
pub const LONG_TARGET: &str = "otel-long-target";

/// Returns its input, with no durable operation.
pub async fn target(_: Workflow, input: Value) -> Outcome {
    Ok(input)
}

/// Fails, with no durable operation.
pub async fn failing_target(_: Workflow, _: Value) -> Outcome {
    Err("the invoked function fails".into())
}

/// Waits the scenario's delay, then returns.
pub async fn long_target(mut wf: Workflow, input: Value) -> Outcome {
    wf.wait("otel-long-invoke-target-wait", delay(&input)).await;
    Ok(json!("target-done"))
}

//! The workflows of the child contexts (3-x) requirements.

use super::*;

/// A step returning `value`.
pub(super) async fn echo(
    wf: &mut Workflow,
    name: &'static str,
    value: String,
) -> Result<String, StepError> {
    wf.step(name, move |_| async move { Ok(value) }).await
}

pub(super) async fn child_basic(mut wf: Workflow, input: Value) -> Outcome {
    let value = text(&input);
    let out: String = wf
        .child_with(ChildConfig::new(), move |mut wf| async move {
            echo(&mut wf, "echo", value).await
        })
        .await?;
    Ok(json!(out))
}

pub(super) async fn child_named(mut wf: Workflow, input: Value) -> Outcome {
    let name = text(input.get("name").unwrap_or(&Value::Null));
    let value = text(input.get("value").unwrap_or(&Value::Null));
    let out: String = wf
        .child(name, move |mut wf| async move {
            echo(&mut wf, "echo", value).await
        })
        .await?;
    Ok(json!(out))
}

pub(super) async fn child_two_steps(mut wf: Workflow, input: Value) -> Outcome {
    let value = text(&input);
    let out: String = wf
        .child("two_steps", move |mut wf| async move {
            let first = echo(&mut wf, "first", value).await?;
            echo(&mut wf, "second", first).await
        })
        .await?;
    Ok(json!(out))
}

pub(super) async fn failing_step(wf: &mut Workflow) -> Result<String, StepError> {
    wf.step_with(StepConfig::named("failing").retry(NoRetry), |_| async {
        Err(StepFailure::new("Error", "the step fails"))
    })
    .await
}

pub(super) async fn child_fails(mut wf: Workflow, _: Value) -> Outcome {
    let out: String = wf
        .child("fails", |mut wf| async move { failing_step(&mut wf).await })
        .await?;
    Ok(json!(out))
}

pub(super) async fn child_failure_caught(mut wf: Workflow, input: Value) -> Outcome {
    let failed: Result<String, StepError> = wf
        .child("fails", |mut wf| async move { failing_step(&mut wf).await })
        .await;
    assert!(failed.is_err(), "the child context failed");
    let out = echo(&mut wf, "recovery", text(&input)).await?;
    Ok(json!(out))
}

pub(super) async fn nested_children(mut wf: Workflow, input: Value) -> Outcome {
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

pub(super) async fn child_step_retried(mut wf: Workflow, input: Value) -> Outcome {
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

pub(super) async fn child_step_exhausted(mut wf: Workflow, _: Value) -> Outcome {
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

pub(super) async fn child_then_wait(mut wf: Workflow, input: Value) -> Outcome {
    let value = text(&input);
    let out: String = wf
        .child("cached", move |mut wf| async move {
            echo(&mut wf, "echo", value).await
        })
        .await?;
    wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
    Ok(json!(out))
}

/// A child context with a step returning `value`, then a wait of a second.
pub(super) async fn step_and_wait_child(
    wf: &mut Workflow,
    value: String,
) -> Result<String, StepError> {
    wf.child("step_and_wait", move |mut wf| async move {
        let out = echo(&mut wf, "echo", value).await?;
        wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
        Ok::<_, StepError>(out)
    })
    .await
}

pub(super) async fn child_step_and_wait(mut wf: Workflow, input: Value) -> Outcome {
    Ok(json!(step_and_wait_child(&mut wf, text(&input)).await?))
}

pub(super) async fn child_large_result(mut wf: Workflow, input: Value) -> Outcome {
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

/// Whether 3-12's step body has run (it dies in its first run).
pub(super) static INTERRUPTED: RunCounter = RunCounter::new();

/// 3-12's workflow: a child context whose step's first run dies.
pub async fn interrupted_child(mut wf: Workflow, input: Value) -> Outcome {
    let value = text(&input);
    let out: String = wf
        .child("interrupted", move |mut wf| async move {
            wf.step("slow", move |ctx| async move {
                if INTERRUPTED.runs(ctx.execution_arn()) == 0 {
                    INTERRUPTED.ran(ctx.execution_arn());
                    die_here().await;
                }
                Ok(value)
            })
            .await
        })
        .await?;
    Ok(json!(out))
}

pub(super) async fn child_wait_only(mut wf: Workflow, input: Value) -> Outcome {
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

pub(super) async fn child_custom_serdes(mut wf: Workflow, input: Value) -> Outcome {
    let value = text(&input);
    let out: String = wf
        .child_with(
            ChildConfig::named("uppercased").codec(UPPERCASE_TEXT),
            move |mut wf| async move { echo(&mut wf, "echo", value).await },
        )
        .await?;
    Ok(json!(out))
}

pub(super) async fn child_error_without_step(mut wf: Workflow, _: Value) -> Outcome {
    let out: String = wf
        .child("throws", |_wf| async move {
            Err::<String, _>(StepFailure::new("Error", "thrown in the child body"))
        })
        .await?;
    Ok(json!(out))
}

pub(super) async fn child_null(mut wf: Workflow, _: Value) -> Outcome {
    let () = wf
        .child("nothing", |_wf| async move { Ok::<(), StepError>(()) })
        .await?;
    Ok(Value::Null)
}

/// How many times 3-17's child body ran (once: it is not replayed).
pub(super) static LOGGING_CHILD_RUNS: RunCounter = RunCounter::new();

pub(super) async fn child_logs_only(mut wf: Workflow, input: Value) -> Outcome {
    let value = text(&input);
    let out: String = wf
        .child("logs", move |wf| async move {
            LOGGING_CHILD_RUNS.ran(wf.execution_arn());
            tracing::info!("{value}");
            Ok::<_, StepError>(value)
        })
        .await?;
    wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
    if LOGGING_CHILD_RUNS.runs(wf.execution_arn()) != 1 {
        return Err("the finished child context ran again on replay".into());
    }
    Ok(json!(out))
}

pub(super) async fn child_then_more(mut wf: Workflow, input: Value) -> Outcome {
    let out = step_and_wait_child(&mut wf, text(&input)).await?;
    let after = echo(&mut wf, "outer", out).await?;
    wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
    Ok(json!(after))
}

//! The workflows of the wait for condition (6-x) requirements.

use super::*;

/// Counts from `start` by one per check until `target`: each unmet check
/// returns the state it reached.
pub(super) async fn count_to(
    wf: &mut Workflow,
    config: ConditionConfig,
    start: i64,
    target: i64,
) -> Result<i64, StepError> {
    wf.wait_for_condition_with(config, start, move |_, state: i64| async move {
        let next = state + 1;
        Ok(if next >= target {
            Condition::Met(next)
        } else {
            Condition::NotMet(next)
        })
    })
    .await
}

pub(super) fn target(input: &Value) -> i64 {
    input.as_i64().unwrap_or(0)
}

pub(super) async fn condition_counter(mut wf: Workflow, input: Value) -> Outcome {
    Ok(json!(
        count_to(&mut wf, ConditionConfig::new(), 0, target(&input)).await?
    ))
}

pub(super) async fn condition_met_at_once(mut wf: Workflow, input: Value) -> Outcome {
    let threshold = target(&input);
    let out = wf
        .wait_for_condition_with(ConditionConfig::new(), 5_i64, move |_, state| async move {
            Ok(if state >= threshold {
                Condition::Met(state)
            } else {
                Condition::NotMet(state)
            })
        })
        .await?;
    Ok(json!(out))
}

pub(super) async fn condition_named(mut wf: Workflow, input: Value) -> Outcome {
    let config = ConditionConfig::named("poll-status");
    Ok(json!(count_to(&mut wf, config, 0, target(&input)).await?))
}

pub(super) async fn condition_from_five(mut wf: Workflow, input: Value) -> Outcome {
    Ok(json!(
        count_to(&mut wf, ConditionConfig::new(), 5, target(&input)).await?
    ))
}

pub(super) async fn condition_fixed_delay(mut wf: Workflow, input: Value) -> Outcome {
    let config = ConditionConfig::new().strategy(FixedDelay::new(Duration::from_secs(2), 60));
    Ok(json!(count_to(&mut wf, config, 0, target(&input)).await?))
}

pub(super) async fn condition_exhausted(mut wf: Workflow, _: Value) -> Outcome {
    let config = ConditionConfig::new().strategy(FixedDelay::new(Duration::from_secs(1), 3));
    Ok(json!(count_to(&mut wf, config, 0, i64::MAX).await?))
}

pub(super) async fn failing_check(wf: &mut Workflow) -> Result<i64, StepError> {
    wf.wait_for_condition_with(ConditionConfig::new(), 0_i64, |_, _| async {
        Err::<Condition<i64>, _>(StepFailure::new("Error", "the check fails"))
    })
    .await
}

pub(super) async fn condition_check_fails(mut wf: Workflow, _: Value) -> Outcome {
    Ok(json!(failing_check(&mut wf).await?))
}

pub(super) async fn condition_check_fails_caught(mut wf: Workflow, _: Value) -> Outcome {
    Ok(match failing_check(&mut wf).await {
        Ok(v) => json!(v),
        Err(_) => json!("recovered"),
    })
}

#[derive(Serialize, serde::Deserialize)]
pub(super) struct Job {
    status: String,
    attempts: u32,
}

pub(super) async fn condition_object_state(mut wf: Workflow, _: Value) -> Outcome {
    let initial = Job {
        status: "PENDING".into(),
        attempts: 0,
    };
    let out = wf
        .wait_for_condition_with(ConditionConfig::new(), initial, |_, job: Job| async move {
            let attempts = job.attempts + 1;
            let status = if attempts >= 2 { "DONE" } else { "PENDING" };
            let next = Job {
                status: status.into(),
                attempts,
            };
            Ok(if next.status == "PENDING" {
                Condition::NotMet(next)
            } else {
                Condition::Met(next)
            })
        })
        .await?;
    Ok(json!(out))
}

pub(super) async fn condition_null_state(mut wf: Workflow, _: Value) -> Outcome {
    let out: Option<i64> = wf
        .wait_for_condition_with(ConditionConfig::new(), None, |_, _: Option<i64>| async {
            Ok(Condition::Met(None))
        })
        .await?;
    Ok(json!(out))
}

pub(super) async fn condition_custom_serdes(mut wf: Workflow, _: Value) -> Outcome {
    let out = wf
        .wait_for_condition_with(
            ConditionConfig::new().codec(PREFIXED),
            String::new(),
            |_, state: String| async move {
                let next = format!("{state}x");
                Ok(if next.len() >= 2 {
                    Condition::Met(next)
                } else {
                    Condition::NotMet(next)
                })
            },
        )
        .await?;
    Ok(json!(out))
}

pub(super) async fn condition_then_step(mut wf: Workflow, input: Value) -> Outcome {
    let reached = count_to(&mut wf, ConditionConfig::new(), 0, target(&input)).await?;
    let out: i64 = wf
        .step("times_ten", move |_| async move { Ok(reached * 10) })
        .await?;
    Ok(json!(out))
}

pub(super) async fn two_conditions(mut wf: Workflow, _: Value) -> Outcome {
    let first = count_to(&mut wf, ConditionConfig::new(), 0, 2).await?;
    let second = count_to(&mut wf, ConditionConfig::new(), first, 4).await?;
    Ok(json!(second))
}

//! The workflows of the wait for callback (7-x) requirements.

use super::*;

/// A submitter that hands the callback id on and does nothing durable.
pub(super) async fn submit(_: StepContext, _id: String) -> Result<(), StepFailure> {
    Ok(())
}

pub(super) async fn wfc_basic(mut wf: Workflow, input: Value) -> Outcome {
    let out: Value = wf.wait_for_callback(text(&input), submit).await?;
    Ok(out)
}

pub(super) async fn wfc_approval(mut wf: Workflow, _: Value) -> Outcome {
    let out: Value = wf.wait_for_callback("approval", submit).await?;
    Ok(out)
}

pub(super) async fn wfc_unnamed(mut wf: Workflow, _: Value) -> Outcome {
    let out: Value = wf
        .wait_for_callback_with(WaitForCallbackConfig::new(), submit)
        .await?;
    Ok(out)
}

pub(super) async fn wfc_timeout(mut wf: Workflow, input: Value) -> Outcome {
    let config = WaitForCallbackConfig::named(text(&input)).timeout(Duration::from_secs(3));
    let out: Value = wf.wait_for_callback_with(config, submit).await?;
    Ok(out)
}

pub(super) async fn wfc_failure_caught(mut wf: Workflow, input: Value) -> Outcome {
    let out: Result<Value, StepError> = wf.wait_for_callback(text(&input), submit).await;
    Ok(match out {
        Ok(v) => v,
        Err(_) => json!("recovered"),
    })
}

pub(super) async fn wfc_submitter_fails(mut wf: Workflow, input: Value) -> Outcome {
    let config = WaitForCallbackConfig::named(text(&input))
        .submitter_retry(FixedDelay::new(Duration::from_secs(1), 2));
    let out: Value = wf
        .wait_for_callback_with(config, |_, _| async {
            Err(StepFailure::new("Error", "the submitter always fails"))
        })
        .await?;
    Ok(out)
}

pub(super) async fn wfc_in_child(mut wf: Workflow, input: Value) -> Outcome {
    let name = text(&input);
    let out: Value = wf
        .child("wrapper", move |mut wf| async move {
            wf.wait_for_callback::<Value, _, _>(name, submit).await
        })
        .await?;
    Ok(out)
}

pub(super) async fn wfc_two(mut wf: Workflow, _: Value) -> Outcome {
    let _first: Value = wf.wait_for_callback("first", submit).await?;
    let second: Value = wf.wait_for_callback("second", submit).await?;
    Ok(second)
}

pub(super) async fn wfc_after_wait_and_step(mut wf: Workflow, input: Value) -> Outcome {
    wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
    echo(&mut wf, "fixed", "data".into()).await?;
    let out: Value = wf.wait_for_callback(text(&input), submit).await?;
    Ok(out)
}

#[derive(serde::Deserialize, Serialize)]
pub(super) struct Status {
    status: String,
}

pub(super) async fn wfc_object(mut wf: Workflow, input: Value) -> Outcome {
    let out: Status = wf.wait_for_callback(text(&input), submit).await?;
    Ok(json!(out.status))
}

pub(super) async fn wfc_heartbeat_timeout(mut wf: Workflow, input: Value) -> Outcome {
    let config =
        WaitForCallbackConfig::named(text(&input)).heartbeat_timeout(Duration::from_secs(5));
    let out: Value = wf.wait_for_callback_with(config, submit).await?;
    Ok(out)
}

pub(super) async fn wfc_kept_alive(mut wf: Workflow, input: Value) -> Outcome {
    let config =
        WaitForCallbackConfig::named(text(&input)).heartbeat_timeout(Duration::from_secs(10));
    let out: Value = wf.wait_for_callback_with(config, submit).await?;
    Ok(out)
}

pub(super) async fn wfc_timeout_caught(mut wf: Workflow, input: Value) -> Outcome {
    let config = WaitForCallbackConfig::named(text(&input)).timeout(Duration::from_secs(3));
    let out: Result<Value, StepError> = wf.wait_for_callback_with(config, submit).await;
    Ok(match out {
        Ok(v) => v,
        Err(_) => json!("timed-out-handled"),
    })
}

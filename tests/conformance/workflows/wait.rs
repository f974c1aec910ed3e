//! The workflows of the wait (2-x) requirements.

use super::*;

pub(super) async fn wait_basic(mut wf: Workflow, _: Value) -> Outcome {
    wf.wait(WaitConfig::new(), Duration::from_secs(2)).await;
    Ok(Value::Null)
}

pub(super) async fn wait_named(mut wf: Workflow, _: Value) -> Outcome {
    wf.wait("custom_wait_name", Duration::from_secs(2)).await;
    Ok(Value::Null)
}

pub(super) async fn two_waits(mut wf: Workflow, _: Value) -> Outcome {
    wf.wait("wait-1", Duration::from_secs(2)).await;
    wf.wait("wait-2", Duration::from_secs(2)).await;
    Ok(json!({ "completedWaits": 2 }))
}

pub(super) async fn wait_minute(mut wf: Workflow, _: Value) -> Outcome {
    wf.wait(WaitConfig::new(), Duration::from_secs(60)).await;
    Ok(Value::Null)
}

pub(super) async fn wait_hour(mut wf: Workflow, _: Value) -> Outcome {
    wf.wait(WaitConfig::new(), Duration::from_secs(60 * 60))
        .await;
    Ok(Value::Null)
}

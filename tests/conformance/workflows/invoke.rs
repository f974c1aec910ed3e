//! The workflows of the chained invokes (5-x) requirements.

use super::*;

/// The target that returns its input.
pub const ECHO: &str = "conformance-echo";
/// The target that fails.
pub const FAIL: &str = "conformance-fail";
/// The target that returns the length of its input text.
pub const SIZE: &str = "conformance-size";

/// The workflow of [`ECHO`].
pub async fn target_echo(_: Workflow, input: Value) -> Outcome {
    Ok(input)
}

/// The workflow of [`FAIL`].
pub async fn target_fail(_: Workflow, _: Value) -> Outcome {
    Err(StepFailure::new("TargetError", "the target fails").into())
}

/// The workflow of [`SIZE`].
pub async fn target_size(_: Workflow, input: Value) -> Outcome {
    Ok(json!(text(&input).len()))
}

pub(super) async fn invoke_echo(mut wf: Workflow, input: Value) -> Outcome {
    let out: Value = wf.invoke(ECHO, &input).await?;
    Ok(out)
}

pub(super) async fn invoke_named(mut wf: Workflow, input: Value) -> Outcome {
    let config = InvokeConfig::named(text(&input["name"]));
    let out: Value = wf.invoke_with(config, ECHO, &input["payload"]).await?;
    Ok(out)
}

pub(super) async fn invoke_fails(mut wf: Workflow, _: Value) -> Outcome {
    let out: Value = wf.invoke(FAIL, &Value::Null).await?;
    Ok(out)
}

pub(super) async fn invoke_fails_caught(mut wf: Workflow, _: Value) -> Outcome {
    let out: Result<Value, InvokeError> = wf.invoke(FAIL, &Value::Null).await;
    Ok(out.unwrap_or_else(|_| json!("fallback")))
}

pub(super) async fn invoke_large(mut wf: Workflow, _: Value) -> Outcome {
    // Near the 256 KiB an invoke's payload may hold.
    let big = "x".repeat(250 * 1024);
    let out: Value = wf.invoke(SIZE, &big).await?;
    Ok(out)
}

pub(super) async fn invoke_tenant(mut wf: Workflow, input: Value) -> Outcome {
    let config = InvokeConfig::new().tenant_id(text(&input["tenantId"]));
    let out: Value = wf.invoke_with(config, ECHO, &input["payload"]).await?;
    Ok(out)
}

pub(super) async fn invoke_then_wait(mut wf: Workflow, input: Value) -> Outcome {
    let out: Value = wf.invoke(ECHO, &input).await?;
    wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
    Ok(out)
}

pub(super) async fn invoke_fails_then_wait(mut wf: Workflow, _: Value) -> Outcome {
    let out: Result<Value, InvokeError> = wf.invoke(FAIL, &Value::Null).await;
    let caught = out.is_err();
    wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
    Ok(json!({ "caught": caught }))
}

pub(super) async fn step_then_invoke(mut wf: Workflow, _: Value) -> Outcome {
    let value = echo(&mut wf, "prepare", "prepared".into()).await?;
    let out: Value = wf.invoke(ECHO, &value).await?;
    Ok(out)
}

pub(super) async fn invoke_then_step(mut wf: Workflow, _: Value) -> Outcome {
    let out: Value = wf.invoke(ECHO, "invoked").await?;
    let processed = echo(&mut wf, "process", format!("processed {}", text(&out))).await?;
    Ok(json!(processed))
}

pub(super) async fn invoke_in_child(mut wf: Workflow, _: Value) -> Outcome {
    let out: Value = wf
        .child("invoking", |mut wf| async move {
            wf.invoke::<_, Value>(ECHO, "from the child").await
        })
        .await?;
    Ok(out)
}

pub(super) async fn two_invokes(mut wf: Workflow, _: Value) -> Outcome {
    let first: Value = wf.invoke(ECHO, "first").await?;
    let second: Value = wf.invoke(ECHO, "second").await?;
    Ok(json!([first, second]))
}

pub(super) async fn invoke_payload_codec(mut wf: Workflow, input: Value) -> Outcome {
    let config = InvokeConfig::new().payload_codec(UPPERCASE);
    let out: Value = wf.invoke_with(config, ECHO, &input).await?;
    Ok(out)
}

pub(super) async fn invoke_result_codec(mut wf: Workflow, input: Value) -> Outcome {
    let config = InvokeConfig::new().result_codec(UPPER_RAW);
    let out: String = wf.invoke_with(config, ECHO, &input).await?;
    Ok(json!(out))
}

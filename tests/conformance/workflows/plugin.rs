//! The workflows of the plugins (10-x) requirements.

use super::*;

/// A step that logs `Greeting step running for: <input>` and greets.
pub async fn plugin_greet(mut wf: Workflow, input: Value) -> Outcome {
    let name = text(&input);
    let out: String = wf
        .step("greet", move |_| async move {
            log_line(format!("Greeting step running for: {name}"));
            Ok(format!("Hello, {name}!"))
        })
        .await?;
    Ok(json!(out))
}

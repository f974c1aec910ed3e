//! The workflows of the plugin (10-x) requirements, and the plugin they
//! run with (AWS's instrumentation plugin of those requirements).

use super::*;

/// A step that logs `Greeting step running for: <input>` and greets.
pub async fn plugin_greet(mut wf: Workflow, input: Value) -> Outcome {
    let name = text(&input);
    let out: String = wf
        .step("greet", move |_| async move {
            tracing::info!("Greeting step running for: {name}");
            Ok(format!("Hello, {name}!"))
        })
        .await?;
    Ok(json!(out))
}

/// AWS's instrumentation plugin of the plugin requirements: each hook
/// writes a JSON record to standard output (`plugin`, `hook` and the hook's fields, with the
/// execution ARN); operation and attempt hooks only for steps. A faulty one
/// writes `{plugin, hook}` and then fails.
#[derive(Clone)]
pub struct ConfPlugin {
    label: &'static str,
    faulty: bool,
}

struct ConfHooks {
    plugin: ConfPlugin,
    arn: String,
}

impl durable_yield::plugin::Plugin for ConfPlugin {
    fn invocation(
        &self,
        start: &durable_yield::plugin::InvocationStart<'_>,
    ) -> Result<Box<dyn durable_yield::plugin::InvocationHooks>, durable_yield::BoxError> {
        Ok(Box::new(ConfHooks {
            plugin: self.clone(),
            arn: start.execution_arn.to_owned(),
        }))
    }
}

impl ConfHooks {
    fn log(&self, hook: &str, fields: Value) -> durable_yield::plugin::HookResult {
        let mut record = json!({
            "plugin": self.plugin.label,
            "hook": hook,
            "durableExecutionArn": self.arn,
        });
        if !self.plugin.faulty
            && let (Some(record), Some(fields)) = (record.as_object_mut(), fields.as_object())
        {
            record.extend(fields.clone());
        }
        print_line(&record.to_string());
        if self.plugin.faulty {
            return Err(format!("{hook} fails on purpose").into());
        }
        Ok(())
    }
}

impl durable_yield::plugin::InvocationHooks for ConfHooks {
    fn on_invocation_start(
        &mut self,
        start: &durable_yield::plugin::InvocationStart<'_>,
    ) -> durable_yield::plugin::HookResult {
        self.log(
            "invocation-start",
            json!({ "first": start.first_invocation }),
        )
    }
    fn on_invocation_end(
        &mut self,
        end: &durable_yield::plugin::InvocationEnd<'_>,
    ) -> durable_yield::plugin::HookResult {
        self.log("invocation-end", json!({ "status": end.status.as_str() }))
    }
    fn on_operation_start(
        &mut self,
        event: &durable_yield::plugin::OperationEvent<'_>,
    ) -> durable_yield::plugin::HookResult {
        if event.op_type != durable_yield::model::OperationType::Step {
            return Ok(());
        }
        self.log("operation-start", json!({ "op": event.id.as_str() }))
    }
    fn on_operation_end(
        &mut self,
        event: &durable_yield::plugin::OperationEvent<'_>,
    ) -> durable_yield::plugin::HookResult {
        if event.op_type != durable_yield::model::OperationType::Step {
            return Ok(());
        }
        let status = serde_json::to_value(event.status).unwrap_or_default();
        self.log(
            "operation-end",
            json!({ "op": event.id.as_str(), "status": status }),
        )
    }
    fn on_attempt_start(
        &mut self,
        event: &durable_yield::plugin::AttemptEvent<'_>,
    ) -> durable_yield::plugin::HookResult {
        self.log(
            "attempt-start",
            json!({ "n": event.attempt, "op": event.id.as_str() }),
        )
    }
    fn on_attempt_end(
        &mut self,
        event: &durable_yield::plugin::AttemptEvent<'_>,
    ) -> durable_yield::plugin::HookResult {
        let outcome = event.outcome.map(|o| o.as_str());
        self.log(
            "attempt-end",
            json!({ "n": event.attempt, "outcome": outcome, "op": event.id.as_str() }),
        )
    }
}

/// The function of `examples/functions` that runs requirement `id` on
/// AWS's emulator: the plugin requirements' functions register their
/// plugins ([`plugins_of_function`]); `conformance-crash` drops the
/// invocation where a body dies ([`DIE`](super::DIE)).
pub fn function_of(id: &str) -> &'static str {
    match id {
        "1-17" | "1-18" | "3-12" => "conformance-crash",
        "10-4" => "conformance-plugin-faulty",
        "10-5" => "conformance-plugin-pair",
        _ if id.starts_with("10-") => "conformance-plugin",
        _ => "conformance",
    }
}

/// The plugins requirement `id` runs with.
pub fn plugins_of(id: &str) -> Vec<ConfPlugin> {
    plugins_of_function(function_of(id))
}

/// The plugins the function `name` registers (see [`function_of`]).
pub fn plugins_of_function(name: &str) -> Vec<ConfPlugin> {
    let plugin = |label, faulty| ConfPlugin { label, faulty };
    match name {
        "conformance-plugin" => vec![plugin("CONFPLUGIN", false)],
        "conformance-plugin-faulty" => vec![plugin("CONFPLUGIN-FAULTY", true)],
        "conformance-plugin-pair" => {
            vec![plugin("CONFPLUGIN-A", false), plugin("CONFPLUGIN-B", false)]
        }
        _ => Vec::new(),
    }
}

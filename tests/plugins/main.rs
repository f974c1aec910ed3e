//! Lifecycle plugins on the local runner: which hooks fire, in which order,
//! across invocations; several plugins in registration order; a plugin that
//! fails or panics changes nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use durable_yield::model::Operation;
use durable_yield::plugin::{
    AttemptEvent, FunctionEvent, HookResult, InvocationEnd, InvocationHooks, InvocationStart,
    OperationChange, OperationEvent, Plugin,
};
use durable_yield::retry::FixedDelay;
use durable_yield::{
    BoxError, LocalRunner, MapConfig, StepConfig, StepError, StepFailure, Workflow,
};

pub(crate) type Log = Arc<Mutex<Vec<String>>>;

/// Writes every hook as a line, prefixed with its tag.
pub(crate) struct Recorder {
    tag: &'static str,
    log: Log,
}

pub(crate) struct Recording {
    tag: &'static str,
    log: Log,
}

impl Recording {
    fn push(&self, line: String) {
        self.log.lock().unwrap().push(format!("{}{line}", self.tag));
    }
}

pub(crate) fn op_line(hook: &str, e: &OperationEvent<'_>) -> String {
    format!(
        "{hook} {} {}/{} {} replayed={} parent={}{}",
        e.name.unwrap_or("-"),
        e.op_type,
        e.sub_type.unwrap_or("-"),
        e.status,
        e.replayed,
        e.parent_id.is_some(),
        e.error
            .and_then(|e| e.error_type.as_deref())
            .map(|t| format!(" error={t}"))
            .unwrap_or_default()
    )
}

pub(crate) fn attempt_line(hook: &str, e: &AttemptEvent<'_>) -> String {
    format!(
        "{hook} {} #{}{}",
        e.name.unwrap_or("-"),
        e.attempt,
        e.outcome
            .map(|o| format!(" {}", o.as_str()))
            .unwrap_or_default()
    )
}

impl Plugin for Recorder {
    fn invocation(
        &self,
        start: &InvocationStart<'_>,
    ) -> Result<Box<dyn InvocationHooks>, BoxError> {
        let hooks = Recording {
            tag: self.tag,
            log: self.log.clone(),
        };
        hooks.push(format!(
            "invocation start first={} updated={}",
            start.first_invocation,
            start.updated_operation_ids.len()
        ));
        Ok(Box::new(hooks))
    }
}

impl InvocationHooks for Recording {
    fn on_operation_start(&mut self, e: &OperationEvent<'_>) -> HookResult {
        self.push(op_line("op start", e));
        Ok(())
    }
    fn on_operation_end(&mut self, e: &OperationEvent<'_>) -> HookResult {
        self.push(op_line("op end", e));
        Ok(())
    }
    fn on_attempt_start(&mut self, e: &AttemptEvent<'_>) -> HookResult {
        self.push(attempt_line("attempt start", e));
        Ok(())
    }
    fn on_attempt_end(&mut self, e: &AttemptEvent<'_>) -> HookResult {
        self.push(attempt_line("attempt end", e));
        Ok(())
    }
    fn on_invocation_end(&mut self, e: &InvocationEnd<'_>) -> HookResult {
        self.push(format!("invocation end {}", e.status));
        Ok(())
    }
}

/// A retried step, a wait, a child context with a step, a two-item map.
async fn flow(mut wf: Workflow, _: ()) -> Result<u32, StepError> {
    let a: u32 = wf
        .step_with(
            StepConfig::named("flaky").retry(FixedDelay::new(Duration::from_secs(2), 3)),
            |ctx| async move {
                if ctx.attempt() == 1 {
                    Err(StepFailure::new("Flaky", "first try"))
                } else {
                    Ok(1)
                }
            },
        )
        .await?;
    wf.wait("pause", Duration::from_secs(10)).await;
    let b: u32 = wf
        .child("inner", |mut wf| async move {
            wf.step("deep", |_| async { Ok(2) }).await
        })
        .await?;
    let items = wf
        .map_with(
            MapConfig::named("items").max_concurrency(1),
            vec![3u32, 4],
            |mut wf, x, _| async move { wf.step("double", move |_| async move { Ok(x * 2) }).await },
        )
        .await?;
    let c: u32 = items.into_values()?.into_iter().sum();
    Ok(a + b + c)
}

pub(crate) fn recorder(tag: &'static str) -> (Recorder, Log) {
    let log = Log::default();
    (
        Recorder {
            tag,
            log: log.clone(),
        },
        log,
    )
}

mod hooks;
mod registration;

/// Writes the subtype every hook reports, with the hook's name.
struct SubTypes(Log);

struct SubTypeHooks(Log);

impl SubTypeHooks {
    fn push(&self, hook: &str, name: Option<&str>, sub_type: Option<&str>) {
        let line = format!("{hook} {} {}", name.unwrap_or("-"), sub_type.unwrap_or("-"));
        self.0.lock().unwrap().push(line);
    }
}

impl Plugin for SubTypes {
    fn invocation(&self, _: &InvocationStart<'_>) -> Result<Box<dyn InvocationHooks>, BoxError> {
        Ok(Box::new(SubTypeHooks(self.0.clone())))
    }
}

impl InvocationHooks for SubTypeHooks {
    fn on_operation_start(&mut self, e: &OperationEvent<'_>) -> HookResult {
        self.push("op start", e.name, e.sub_type);
        Ok(())
    }
    fn on_operation_end(&mut self, e: &OperationEvent<'_>) -> HookResult {
        self.push("op end", e.name, e.sub_type);
        Ok(())
    }
    fn on_attempt_start(&mut self, e: &AttemptEvent<'_>) -> HookResult {
        self.push("attempt start", e.name, Some(e.sub_type));
        Ok(())
    }
    fn on_function_start(&mut self, e: &FunctionEvent<'_>) -> HookResult {
        self.push("function start", e.name, e.sub_type);
        Ok(())
    }
}

#[tokio::test]
async fn plugins_see_custom_subtypes() {
    let log = Log::default();
    let workflow = |mut wf: Workflow, _: ()| async move {
        let config = StepConfig::named("charge").sub_type("Payment");
        let a: u32 = wf.step_with(config, |_| async { Ok(1) }).await?;
        let config = durable_yield::ChildConfig::named("reserve").sub_type("Reservation");
        let b: u32 = wf
            .child_with(config, |mut wf| async move {
                wf.step("hold", |_| async { Ok(2u32) }).await
            })
            .await?;
        Ok::<_, StepError>(a + b)
    };
    let runner = LocalRunner::new().plugin(SubTypes(log.clone()));
    let run = runner.run(&workflow, &()).await.unwrap();
    assert_eq!(run.result, Some(3));
    let lines = log.lock().unwrap().clone();
    for expected in [
        "op start charge Payment",
        "attempt start charge Payment",
        "function start charge Payment",
        "op end charge Payment",
        "op start reserve Reservation",
        "function start reserve Reservation",
        "attempt start hold Step",
        "op end reserve Reservation",
    ] {
        assert!(
            lines.iter().any(|l| l == expected),
            "{expected}: {lines:#?}"
        );
    }
}

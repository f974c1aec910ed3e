//! Lifecycle plugins on the local runner: which hooks fire, in which order,
//! across invocations; several plugins in registration order; a plugin that
//! fails or panics changes nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use durable_yield::model::Operation;
use durable_yield::plugin::{
    AttemptEvent, HookResult, InvocationEnd, InvocationHooks, InvocationStart, OperationEvent,
    Plugin,
};
use durable_yield::retry::FixedDelay;
use durable_yield::{
    BoxError, LocalRunner, MapConfig, StepConfig, StepError, StepFailure, Workflow,
};

type Log = Arc<Mutex<Vec<String>>>;

/// Writes every hook as a line, prefixed with its tag.
struct Recorder {
    tag: &'static str,
    log: Log,
}

struct Recording {
    tag: &'static str,
    log: Log,
}

impl Recording {
    fn push(&self, line: String) {
        self.log.lock().unwrap().push(format!("{}{line}", self.tag));
    }
}

fn op_line(hook: &str, e: &OperationEvent<'_>) -> String {
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

fn attempt_line(hook: &str, e: &AttemptEvent<'_>) -> String {
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

fn recorder(tag: &'static str) -> (Recorder, Log) {
    let log = Log::default();
    (
        Recorder {
            tag,
            log: log.clone(),
        },
        log,
    )
}

#[tokio::test]
async fn hooks_fire_in_order_across_invocations() {
    let (plugin, log) = recorder("");
    let run = LocalRunner::new()
        .plugin(plugin)
        .run(&flow, &())
        .await
        .unwrap();
    assert_eq!(run.result, Some(1 + 2 + 6 + 8));
    let lines = log.lock().unwrap().clone();
    let expected = [
        // 1: the first attempt fails and is retried two seconds later.
        "invocation start first=true updated=0",
        "op start flaky STEP/Step STARTED replayed=false parent=false",
        "attempt start flaky #1",
        "attempt end flaky #1 FAILED",
        "invocation end PENDING",
        // 2: the retry is due; the second attempt succeeds; the wait starts.
        "invocation start first=false updated=1",
        "op start flaky STEP/Step READY replayed=true parent=false",
        "attempt start flaky #2",
        "attempt end flaky #2 SUCCEEDED",
        "op end flaky STEP/Step SUCCEEDED replayed=false parent=false",
        "op start pause WAIT/Wait STARTED replayed=false parent=false",
        "invocation end PENDING",
        // 3: the wait is over (changed since the last invocation); the
        // child context, its step, the map and its branches run.
        "invocation start first=false updated=1",
        "op end pause WAIT/Wait SUCCEEDED replayed=true parent=false",
        "op start inner CONTEXT/RunInChildContext STARTED replayed=false parent=false",
        "op start deep STEP/Step STARTED replayed=false parent=true",
        "attempt start deep #1",
        "attempt end deep #1 SUCCEEDED",
        "op end deep STEP/Step SUCCEEDED replayed=false parent=true",
        "op end inner CONTEXT/RunInChildContext SUCCEEDED replayed=false parent=false",
        "op start items CONTEXT/Map STARTED replayed=false parent=false",
        "op start map-item-0 CONTEXT/MapIteration STARTED replayed=false parent=true",
        "op start double STEP/Step STARTED replayed=false parent=true",
        "attempt start double #1",
        "attempt end double #1 SUCCEEDED",
        "op end double STEP/Step SUCCEEDED replayed=false parent=true",
        "op end map-item-0 CONTEXT/MapIteration SUCCEEDED replayed=false parent=true",
        "op start map-item-1 CONTEXT/MapIteration STARTED replayed=false parent=true",
        "op start double STEP/Step STARTED replayed=false parent=true",
        "attempt start double #1",
        "attempt end double #1 SUCCEEDED",
        "op end double STEP/Step SUCCEEDED replayed=false parent=true",
        "op end map-item-1 CONTEXT/MapIteration SUCCEEDED replayed=false parent=true",
        "op end items CONTEXT/Map SUCCEEDED replayed=false parent=false",
        "invocation end SUCCEEDED",
    ];
    assert_eq!(lines, expected, "{lines:#?}");
}

#[tokio::test]
async fn plugins_receive_hooks_in_registration_order() {
    let log = Log::default();
    let runner = LocalRunner::new()
        .plugin(Recorder {
            tag: "A ",
            log: log.clone(),
        })
        .plugin(Recorder {
            tag: "B ",
            log: log.clone(),
        });
    runner.run(&flow, &()).await.unwrap();
    let lines = log.lock().unwrap().clone();
    assert!(lines.len() > 40);
    for pair in lines.chunks(2) {
        let a = pair[0].strip_prefix("A ");
        let b = pair[1].strip_prefix("B ");
        assert!(a.is_some() && a == b, "not A then B: {pair:?}");
    }
}

/// Fails every hook: with an error, or by panicking.
struct Broken {
    panic: bool,
    at_start: bool,
}

fn fail(panic: bool) -> HookResult {
    if panic {
        panic!("plugin bug");
    }
    Err("plugin failure".into())
}

/// The hooks of a [`Broken`] plugin: whether they panic.
struct BrokenHooks(bool);

impl Plugin for Broken {
    fn invocation(&self, _: &InvocationStart<'_>) -> Result<Box<dyn InvocationHooks>, BoxError> {
        if self.at_start {
            fail(self.panic)?;
        }
        Ok(Box::new(BrokenHooks(self.panic)))
    }
}

impl InvocationHooks for BrokenHooks {
    fn on_operation_start(&mut self, _: &OperationEvent<'_>) -> HookResult {
        fail(self.0)
    }
    fn on_operation_end(&mut self, _: &OperationEvent<'_>) -> HookResult {
        fail(false)
    }
    fn on_attempt_start(&mut self, _: &AttemptEvent<'_>) -> HookResult {
        fail(self.0)
    }
    fn on_attempt_end(&mut self, _: &AttemptEvent<'_>) -> HookResult {
        fail(self.0)
    }
    fn on_invocation_end(&mut self, _: &InvocationEnd<'_>) -> HookResult {
        fail(self.0)
    }
}

/// What a history says, without the EXECUTION operation (its id differs
/// per execution).
fn shape(ops: &[Operation]) -> Vec<String> {
    ops.iter()
        .skip(1)
        .map(|o| {
            format!(
                "{} {:?} {} {:?} {:?}",
                o.id,
                o.name,
                o.status,
                o.step_details.as_ref().map(|d| (&d.result, d.attempt)),
                o.context_details.as_ref().map(|d| &d.result),
            )
        })
        .collect()
}

#[tokio::test]
async fn failing_and_panicking_plugins_change_nothing() {
    let runner = || LocalRunner::new().execution_name("same");
    let plain = runner().run(&flow, &()).await.unwrap();

    let (after, log) = recorder("");
    let broken = runner()
        .plugin(Broken {
            panic: true,
            at_start: false,
        })
        .plugin(Broken {
            panic: false,
            at_start: false,
        })
        .plugin(Broken {
            panic: true,
            at_start: true,
        })
        .plugin(after)
        .run(&flow, &())
        .await
        .unwrap();
    assert_eq!(broken.result, plain.result);
    assert_eq!(broken.invocations, plain.invocations);
    assert_eq!(shape(&broken.operations), shape(&plain.operations));
    // The plugin registered after the broken ones got every hook.
    let (reference, reference_log) = recorder("");
    runner().plugin(reference).run(&flow, &()).await.unwrap();
    assert_eq!(*log.lock().unwrap(), *reference_log.lock().unwrap());
}

#[tokio::test]
async fn failed_operations_and_executions_report_their_errors() {
    async fn failing(mut wf: Workflow, _: ()) -> Result<u32, StepError> {
        wf.step_with(
            StepConfig::named("doomed").retry(durable_yield::retry::NoRetry),
            |_| async { Err::<u32, _>(StepFailure::new("Doomed", "no luck")) },
        )
        .await
    }
    let (plugin, log) = recorder("");
    let run = LocalRunner::new()
        .plugin(plugin)
        .run(&failing, &())
        .await
        .unwrap();
    assert!(run.error.is_some());
    assert_eq!(
        *log.lock().unwrap(),
        [
            "invocation start first=true updated=0",
            "op start doomed STEP/Step STARTED replayed=false parent=false",
            "attempt start doomed #1",
            "attempt end doomed #1 FAILED",
            "op end doomed STEP/Step FAILED replayed=false parent=false error=Doomed",
            "invocation end FAILED",
        ]
    );
}

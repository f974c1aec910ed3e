//! Which hooks fire, in which order, with what; plugins that fail or panic.

use super::*;

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
pub(super) struct Broken {
    panic: bool,
    at_start: bool,
}

pub(super) fn fail(panic: bool) -> HookResult {
    if panic {
        panic!("plugin bug");
    }
    Err("plugin failure".into())
}

/// The hooks of a [`Broken`] plugin: whether they panic.
pub(super) struct BrokenHooks(bool);

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
pub(super) fn shape(ops: &[Operation]) -> Vec<String> {
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

/// Writes the hooks of AWS's newest plugin revision as lines: function
/// starts and ends, operation changes, the invocation-start hook.
pub(super) struct Functions(Log);

pub(super) struct FunctionLines(Log);

impl FunctionLines {
    fn push(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }
}

impl Plugin for Functions {
    fn invocation(&self, _: &InvocationStart<'_>) -> Result<Box<dyn InvocationHooks>, BoxError> {
        Ok(Box::new(FunctionLines(self.0.clone())))
    }
}

pub(super) fn function_line(hook: &str, e: &FunctionEvent<'_>) -> String {
    format!(
        "{hook} {} {}/{}{}{}{}{} parent={}",
        e.name.unwrap_or("-"),
        e.op_type,
        e.sub_type.unwrap_or("-"),
        e.attempt.map(|a| format!(" #{a}")).unwrap_or_default(),
        if e.replay_children {
            " replay-children"
        } else {
            ""
        },
        if e.replayed { " replayed" } else { "" },
        e.outcome
            .map(|o| format!(" {}", o.as_str()))
            .unwrap_or_default(),
        e.parent_id.is_some(),
    )
}

impl InvocationHooks for FunctionLines {
    fn on_invocation_start(&mut self, start: &InvocationStart<'_>) -> HookResult {
        self.push(format!("invocation start first={}", start.first_invocation));
        Ok(())
    }
    fn on_function_start(&mut self, e: &FunctionEvent<'_>) -> HookResult {
        self.push(function_line("fn start", e));
        Ok(())
    }
    fn on_function_end(&mut self, e: &FunctionEvent<'_>) -> HookResult {
        self.push(function_line("fn end", e));
        Ok(())
    }
    fn on_operation_change(&mut self, change: &OperationChange<'_>) -> HookResult {
        // Every updated operation is in the full map, as it now stands.
        for u in change.updated {
            let now = change.operations.iter().find(|o| o.id == u.id);
            if now.map(|o| o.status) != Some(u.status) {
                return Err(format!("{} is not in the full map as updated", u.id).into());
            }
        }
        let mut names: Vec<String> = change
            .updated
            .iter()
            .map(|o| format!("{}={}", o.name.as_deref().unwrap_or("-"), o.status))
            .collect();
        names.sort();
        self.push(format!(
            "change {} of {}",
            names.join(","),
            change.operations.len()
        ));
        Ok(())
    }
    fn on_invocation_end(&mut self, e: &InvocationEnd<'_>) -> HookResult {
        self.push(format!("invocation end {}", e.status));
        Ok(())
    }
}

/// A child holding a step and a wait, then a two-item map whose second
/// item fails.
async fn contexts(mut wf: Workflow, _: ()) -> Result<u32, StepError> {
    let a: u32 = wf
        .child("group", |mut wf| async move {
            let a: u32 = wf.step("inside", |_| async { Ok(1) }).await?;
            wf.wait("nap", Duration::from_secs(5)).await;
            Ok::<_, StepError>(a)
        })
        .await?;
    let r = wf
        .map_with(
            MapConfig::named("items")
                .max_concurrency(1)
                .completion(durable_yield::CompletionPolicy::all()),
            vec![1u32, 2],
            |_, x, _| async move {
                if x == 2 {
                    Err::<u32, _>("two is bad")
                } else {
                    Ok(x)
                }
            },
        )
        .await?;
    Ok(a + r.successes().sum::<u32>())
}

#[tokio::test]
async fn function_and_change_hooks_fire_as_aws_newest_plugins_expect() {
    let log = Log::default();
    let run = LocalRunner::new()
        .plugin(Functions(log.clone()))
        .run(&contexts, &())
        .await
        .unwrap();
    assert_eq!(run.result, Some(2));
    let lines = log.lock().unwrap().clone();
    let expected = [
        // 1: the child's code starts, its step runs, the wait suspends it:
        // the child's code ends INCOMPLETE at the end of the invocation.
        "invocation start first=true",
        "fn start group CONTEXT/RunInChildContext parent=false",
        "fn start inside STEP/Step #1 parent=true",
        "fn end inside STEP/Step #1 SUCCEEDED parent=true",
        "change group=STARTED,inside=SUCCEEDED of 3",
        "change nap=STARTED of 4",
        "fn end group CONTEXT/RunInChildContext INCOMPLETE parent=false",
        "invocation end PENDING",
        // 2: the child's code runs again over its records and ends; each
        // map item's code runs once.
        "invocation start first=false",
        "fn start group CONTEXT/RunInChildContext replayed parent=false",
        "fn end group CONTEXT/RunInChildContext SUCCEEDED parent=false",
        "change group=SUCCEEDED of 4",
        "fn start map-item-0 CONTEXT/MapIteration parent=true",
        "fn end map-item-0 CONTEXT/MapIteration SUCCEEDED parent=true",
        "change items=STARTED,map-item-0=SUCCEEDED of 6",
        "fn start map-item-1 CONTEXT/MapIteration parent=true",
        "fn end map-item-1 CONTEXT/MapIteration FAILED parent=true",
        "change map-item-1=FAILED of 7",
        "change items=SUCCEEDED of 7",
        "invocation end SUCCEEDED",
    ];
    assert_eq!(lines, expected, "{lines:#?}");
}

/// A plugin whose invocation-start hook fails (or panics) still gets every
/// other hook of the invocation; one whose instance cannot be created is
/// skipped for the invocation; neither affects the plugin beside it.
#[tokio::test]
async fn a_failing_start_hook_is_isolated_from_the_other_hooks() {
    struct FailingStart {
        panic: bool,
        log: Log,
    }
    struct FailingStartHooks {
        panic: bool,
        inner: Recording,
    }
    impl Plugin for FailingStart {
        fn invocation(
            &self,
            _: &InvocationStart<'_>,
        ) -> Result<Box<dyn InvocationHooks>, BoxError> {
            Ok(Box::new(FailingStartHooks {
                panic: self.panic,
                inner: Recording {
                    tag: "",
                    log: self.log.clone(),
                },
            }))
        }
    }
    impl InvocationHooks for FailingStartHooks {
        fn on_invocation_start(&mut self, _: &InvocationStart<'_>) -> HookResult {
            fail(self.panic)
        }
        fn on_operation_start(&mut self, e: &OperationEvent<'_>) -> HookResult {
            self.inner.on_operation_start(e)
        }
        fn on_operation_end(&mut self, e: &OperationEvent<'_>) -> HookResult {
            self.inner.on_operation_end(e)
        }
        fn on_attempt_start(&mut self, e: &AttemptEvent<'_>) -> HookResult {
            self.inner.on_attempt_start(e)
        }
        fn on_attempt_end(&mut self, e: &AttemptEvent<'_>) -> HookResult {
            self.inner.on_attempt_end(e)
        }
        fn on_invocation_end(&mut self, e: &InvocationEnd<'_>) -> HookResult {
            self.inner.on_invocation_end(e)
        }
    }
    for panic in [false, true] {
        let failing = Log::default();
        let (beside, beside_log) = recorder("");
        let run = LocalRunner::new()
            .execution_name("same")
            .plugin(FailingStart {
                panic,
                log: failing.clone(),
            })
            .plugin(Broken {
                panic,
                at_start: true,
            })
            .plugin(beside)
            .run(&flow, &())
            .await
            .unwrap();
        assert_eq!(run.result, Some(1 + 2 + 6 + 8));
        let (reference, reference_log) = recorder("");
        LocalRunner::new()
            .execution_name("same")
            .plugin(reference)
            .run(&flow, &())
            .await
            .unwrap();
        let reference = reference_log.lock().unwrap().clone();
        // The plugin beside them got every hook.
        assert_eq!(*beside_log.lock().unwrap(), reference);
        // The plugin whose start hook failed got every hook but the start
        // (which the reference recorder writes from `invocation`).
        let without_start: Vec<String> = reference
            .iter()
            .filter(|l| !l.starts_with("invocation start"))
            .cloned()
            .collect();
        assert_eq!(*failing.lock().unwrap(), without_start, "panic={panic}");
    }
}

/// Operation-end info carries the checkpointed result on success and the
/// error on failure (AWS's requirement 10-14), the attempt that ended and
/// the record with its timestamps (10-20).
#[tokio::test]
async fn operation_end_carries_result_error_and_attempt() {
    struct Ends(Log);
    struct EndLines(Log);
    impl Plugin for Ends {
        fn invocation(
            &self,
            _: &InvocationStart<'_>,
        ) -> Result<Box<dyn InvocationHooks>, BoxError> {
            Ok(Box::new(EndLines(self.0.clone())))
        }
    }
    impl InvocationHooks for EndLines {
        fn on_operation_start(&mut self, e: &OperationEvent<'_>) -> HookResult {
            self.0.lock().unwrap().push(format!(
                "start {} attempt={:?}",
                e.name.unwrap_or("-"),
                e.attempt
            ));
            Ok(())
        }
        fn on_operation_end(&mut self, e: &OperationEvent<'_>) -> HookResult {
            // The end is reported once the service recorded it: the
            // record holds its start and end timestamps.
            let stamped = e
                .record
                .is_some_and(|r| r.start_timestamp.is_some() && r.end_timestamp.is_some());
            self.0.lock().unwrap().push(format!(
                "end {} {} result={} error={} attempt={:?} stamped={stamped}",
                e.name.unwrap_or("-"),
                e.status,
                e.result.map_or("NONE", |r| r.as_str()),
                e.error
                    .and_then(|e| e.error_message.as_deref())
                    .unwrap_or("NONE"),
                e.attempt
            ));
            Ok(())
        }
        fn on_invocation_start(&mut self, e: &InvocationStart<'_>) -> HookResult {
            // The execution's input, as recorded (AWS's `execution_input`).
            self.0.lock().unwrap().push(format!(
                "invocation start input={}",
                e.execution_input.map_or("NONE", |p| p.as_str()),
            ));
            Ok(())
        }
        fn on_invocation_end(&mut self, e: &InvocationEnd<'_>) -> HookResult {
            self.0.lock().unwrap().push(format!(
                "invocation end {} terminal={} first={} operations={} started={} input={}",
                e.status,
                e.status.is_terminal(),
                e.first_invocation,
                e.operations.len(),
                e.execution_started_at.is_some(),
                e.execution_input.map_or("NONE", |p| p.as_str()),
            ));
            Ok(())
        }
    }
    async fn two(mut wf: Workflow, _: String) -> Result<String, StepError> {
        let a: String = wf.step("a", |_| async { Ok("task-a".to_owned()) }).await?;
        let config = StepConfig::named("b").retry(FixedDelay::new(Duration::from_secs(1), 2));
        let b: String = wf
            .step_with(config, |_| async {
                Err::<String, _>(StepFailure::new("Boom", "boom"))
            })
            .await?;
        Ok(a + &b)
    }
    let log = Log::default();
    let run = LocalRunner::new()
        .plugin(Ends(log.clone()))
        .run(&two, &"order-7".to_owned())
        .await
        .unwrap();
    assert!(run.error.is_some());
    assert_eq!(
        *log.lock().unwrap(),
        [
            "invocation start input=\"order-7\"",
            "start a attempt=Some(1)",
            "end a SUCCEEDED result=\"task-a\" error=NONE attempt=Some(1) stamped=true",
            "start b attempt=Some(1)",
            "invocation end PENDING terminal=false first=true operations=3 started=true \
             input=\"order-7\"",
            // Invocation 2: the retry of b.
            "invocation start input=\"order-7\"",
            "start b attempt=Some(2)",
            "end b FAILED result=NONE error=boom attempt=Some(2) stamped=true",
            "invocation end FAILED terminal=true first=false operations=3 started=true \
             input=\"order-7\"",
        ]
    );
}

/// A virtual child records no end: its end is reported when it returns,
/// before what the workflow does next, not held for a checkpoint answer.
#[tokio::test]
async fn a_virtual_child_ends_in_order() {
    async fn grouped(mut wf: Workflow, _: ()) -> Result<u32, StepError> {
        let a: u32 = wf
            .child_with(
                durable_yield::ChildConfig::named("group").virtual_context(),
                |mut wf| async move { wf.step("inside", |_| async { Ok(1u32) }).await },
            )
            .await?;
        wf.step("next", move |_| async move { Ok(a + 1) }).await
    }
    let (plugin, log) = recorder("");
    let run = LocalRunner::new()
        .plugin(plugin)
        .run(&grouped, &())
        .await
        .unwrap();
    assert_eq!(run.result, Some(2));
    assert_eq!(
        *log.lock().unwrap(),
        [
            "invocation start first=true updated=0",
            "op start group CONTEXT/RunInChildContext STARTED replayed=false parent=false",
            "op start inside STEP/Step STARTED replayed=false parent=false",
            "attempt start inside #1",
            "attempt end inside #1 SUCCEEDED",
            "op end inside STEP/Step SUCCEEDED replayed=false parent=false",
            "op end group CONTEXT/RunInChildContext SUCCEEDED replayed=false parent=false",
            "op start next STEP/Step STARTED replayed=false parent=false",
            "attempt start next #1",
            "attempt end next #1 SUCCEEDED",
            "op end next STEP/Step SUCCEEDED replayed=false parent=false",
            "invocation end SUCCEEDED",
        ]
    );
}

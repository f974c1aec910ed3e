//! Callbacks and wait-for-condition on the local runner: ids, answers,
//! time-outs, heartbeats, replay, and polling with a wait strategy.

use std::time::Duration;

use durable_yield::local::{CallbackAnswer, LocalError};
use durable_yield::model::{ErrorObject, OperationStatus as S, OperationType as T};
use durable_yield::retry::{ExponentialBackoff, FixedDelay, Jitter};
use durable_yield::{
    Branch, CallbackConfig, CallbackEnding, Condition, ConditionConfig, ExecutionStatus,
    LocalRunner, StepError, StepFailure, Workflow,
};
use durable_yield_tests::Counter;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Approval {
    approved: bool,
    by: String,
}

/// Creates a callback, tells the (test) approver in a step, waits for it.
async fn approval(mut wf: Workflow, _: ()) -> Result<String, StepError> {
    let cb = wf
        .create_callback::<Approval>(
            CallbackConfig::named("approval").timeout(Duration::from_secs(3600)),
        )
        .await;
    let id = cb.id().to_owned();
    let _: String = wf
        .step("notify", move |_| async move { Ok(format!("sent {id}")) })
        .await?;
    match wf.callback_result(&cb).await {
        Ok(a) => Ok(format!("approved={} by {}", a.approved, a.by)),
        Err(e) => Ok(format!(
            "{:?}: {}",
            e.ending(),
            e.error_type().unwrap_or("")
        )),
    }
}

#[tokio::test]
async fn a_callback_answered_later_resumes_the_workflow() {
    let answer = Approval {
        approved: true,
        by: "ada".into(),
    };
    let run = LocalRunner::new()
        .answer_callback(
            "approval",
            CallbackAnswer::success(&answer).after(Duration::from_secs(1800)),
        )
        .run(&approval, &())
        .await
        .unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.result.as_deref(), Some("approved=true by ada"));
    assert_eq!(run.invocations, 2, "suspended once, until the answer");
    assert_eq!(run.elapsed, Duration::from_secs(1800));
    let cb = run.operation("approval").unwrap();
    assert_eq!((cb.op_type, cb.status), (T::Callback, S::Succeeded));
    assert_eq!(cb.sub_type.as_deref(), Some("Callback"));
    let details = cb.callback_details.as_ref().unwrap();
    assert!(
        details
            .callback_id
            .as_deref()
            .is_some_and(|id| !id.is_empty())
    );
    assert_eq!(
        details.result.as_ref().map(|p| p.as_str()),
        Some(r#"{"approved":true,"by":"ada"}"#)
    );
    // The step that used the id ran once, with the id the service issued.
    let notify = run.operation("notify").unwrap();
    let recorded = notify
        .step_details
        .as_ref()
        .unwrap()
        .result
        .as_ref()
        .unwrap();
    assert!(
        recorded
            .as_str()
            .contains(details.callback_id.as_deref().unwrap())
    );
}

#[tokio::test]
async fn failures_and_time_outs_are_distinct_errors() {
    let failed = LocalRunner::new()
        .answer_callback(
            "approval",
            CallbackAnswer::failure(ErrorObject::new("Rejected", "budget exceeded")),
        )
        .run(&approval, &())
        .await
        .unwrap();
    assert_eq!(failed.result.as_deref(), Some("Failed: Rejected"));
    assert_eq!(failed.operation("approval").unwrap().status, S::Failed);

    // Nobody answers: the one-hour time-out fires on the virtual clock.
    let timed_out = LocalRunner::new().run(&approval, &()).await.unwrap();
    assert_eq!(
        timed_out.result.as_deref(),
        Some("TimedOut: Callback.Timeout")
    );
    assert_eq!(timed_out.elapsed, Duration::from_secs(3600));
    assert_eq!(timed_out.operation("approval").unwrap().status, S::TimedOut);
}

#[tokio::test]
async fn heartbeats_keep_a_callback_alive_until_they_stop() {
    async fn watched(mut wf: Workflow, _: ()) -> Result<String, StepError> {
        let cb = wf
            .create_callback::<String>(
                CallbackConfig::named("job").heartbeat_timeout(Duration::from_secs(10)),
            )
            .await;
        match wf.callback_result(&cb).await {
            Ok(v) => Ok(v),
            Err(e) => Ok(format!("{:?} {}", e.ending(), e.message().unwrap_or(""))),
        }
    }
    let execution = LocalRunner::new().start(&()).unwrap();
    execution.invoke(&watched).await;
    let id = execution.callback_id("job").unwrap();
    for _ in 0..3 {
        execution.advance_clock(Duration::from_secs(8));
        execution.send_callback_heartbeat(&id).unwrap();
    }
    // 24 s in, alive thanks to the heartbeats; it times out 10 s after the last.
    assert!(execution.advance_time());
    execution.invoke(&watched).await;
    let run = execution.finish::<String>().unwrap();
    assert_eq!(
        run.result.as_deref(),
        Some("HeartbeatTimedOut Callback timed out on heartbeat")
    );
    assert_eq!(run.elapsed, Duration::from_secs(34));
    // A callback that ended takes no more answers.
    assert!(matches!(
        execution.send_callback_success(&id, "\"late\""),
        Err(LocalError::UnknownCallback(_))
    ));
    assert!(matches!(
        execution.send_callback_success("nope", "1"),
        Err(LocalError::UnknownCallback(_))
    ));
}

/// A heartbeat changes no operation, so the service does not invoke the
/// function for it (AWS's conformance requirements 4-5 and 7-13): the
/// runner's heartbeat answers move the clock without an invocation.
#[tokio::test]
async fn a_heartbeat_answer_invokes_nothing() {
    async fn watched(mut wf: Workflow, _: ()) -> Result<String, StepError> {
        let cb = wf
            .create_callback::<String>(
                CallbackConfig::named("job").heartbeat_timeout(Duration::from_secs(10)),
            )
            .await;
        Ok(wf.callback_result(&cb).await?)
    }
    let run = LocalRunner::new()
        .answer_callback(
            "job",
            CallbackAnswer::heartbeat().after(Duration::from_secs(8)),
        )
        .answer_callback(
            "job",
            CallbackAnswer::heartbeat().after(Duration::from_secs(16)),
        )
        .answer_callback(
            "job",
            CallbackAnswer::success(&"done").after(Duration::from_secs(24)),
        )
        .run(&watched, &())
        .await
        .unwrap();
    assert_eq!(run.result.as_deref(), Some("done"));
    // Kept alive past its 10 s heartbeat time-out by the two heartbeats.
    assert_eq!(run.elapsed, Duration::from_secs(24));
    // The first invocation, and the one for the answer: none for the beats.
    assert_eq!(run.invocations, 2);
}

#[tokio::test]
async fn plain_text_and_empty_answers_are_readable() {
    async fn two(mut wf: Workflow, _: ()) -> Result<String, StepError> {
        let text = wf.create_callback::<String>("text").await;
        let empty = wf.create_callback::<Option<u32>>("empty").await;
        let t = wf.callback_result(&text).await?;
        let e = wf.callback_result(&empty).await?;
        Ok(format!("{t} {e:?}"))
    }
    let execution = LocalRunner::new().start(&()).unwrap();
    execution.invoke(&two).await;
    let text = execution.callback_id("text").unwrap();
    let empty = execution.callback_id("empty").unwrap();
    // What `aws lambda send-durable-execution-callback-success --result ok` sends.
    execution.send_callback_success(&text, "ok").unwrap();
    execution.send_callback_success(&empty, "").unwrap();
    execution.invoke(&two).await;
    let run = execution.finish::<String>().unwrap();
    assert_eq!(run.result.as_deref(), Some("ok None"));
}

#[tokio::test]
async fn two_callbacks_awaited_in_reverse_order() {
    let replays = Counter::new();
    let workflow = {
        let replays = replays.clone();
        move |mut wf: Workflow, _: ()| {
            let replays = replays.clone();
            async move {
                let first = wf.create_callback::<u32>("first").await;
                let second = wf.create_callback::<u32>("second").await;
                // Code between creation and result runs on every replay,
                // with the same ids.
                replays.hit();
                let b = wf.callback_result(&second).await?;
                let a = wf.callback_result(&first).await?;
                Ok::<_, StepError>(format!("{a}-{b} {} {}", first.id(), second.id()))
            }
        }
    };
    let run = LocalRunner::new()
        .answer_callback(
            "first",
            CallbackAnswer::success(&1).after(Duration::from_secs(60)),
        )
        .answer_callback(
            "second",
            CallbackAnswer::success(&2).after(Duration::from_secs(120)),
        )
        .run(&workflow, &())
        .await
        .unwrap();
    let result = run.result.unwrap();
    let ids: Vec<&str> = run
        .operations
        .iter()
        .filter(|o| o.op_type == T::Callback)
        .map(|o| {
            o.callback_details
                .as_ref()
                .unwrap()
                .callback_id
                .as_deref()
                .unwrap()
        })
        .collect();
    assert_eq!(result, format!("1-2 {} {}", ids[0], ids[1]));
    assert_eq!(run.elapsed, Duration::from_secs(120));
    assert_eq!(replays.get(), run.invocations);
}

#[tokio::test]
async fn a_callback_nobody_answers_is_a_clear_error_not_a_hang() {
    async fn forever(mut wf: Workflow, _: ()) -> Result<u32, StepError> {
        let cb = wf.create_callback::<u32>("never").await;
        Ok(wf.callback_result(&cb).await?)
    }
    let error = LocalRunner::new().run(&forever, &()).await.unwrap_err();
    match error {
        LocalError::Blocked(what) => assert!(what.contains("\"never\""), "{what}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn callback_time_outs_beyond_the_service_limit_fail_before_anything_is_sent() {
    async fn bad(mut wf: Workflow, _: ()) -> Result<u32, StepError> {
        let cb = wf
            .create_callback::<u32>(
                CallbackConfig::named("x").timeout(Duration::from_secs(100_000_000)),
            )
            .await;
        Ok(wf.callback_result(&cb).await?)
    }
    let run = LocalRunner::new().run(&bad, &()).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Failed);
    let error = run.error.unwrap();
    assert_eq!(error.error_type.as_deref(), Some("InvalidConfig"));
    assert_eq!(run.operations.len(), 1);
}

#[tokio::test]
async fn a_callback_in_one_branch_does_not_hold_back_the_other() {
    let workflow = |mut wf: Workflow, _: ()| async move {
        let r = wf
            .parallel(
                "both",
                vec![
                    Branch::named("ask", |mut wf| async move {
                        let cb = wf.create_callback::<String>("answer").await;
                        Ok::<_, StepError>(wf.callback_result(&cb).await?)
                    }),
                    Branch::named("work", |mut wf| async move {
                        wf.step("work", |_| async { Ok("done".to_owned()) }).await
                    }),
                ],
            )
            .await?;
        r.into_values()
    };
    let execution = LocalRunner::new()
        .answer_callback(
            "answer",
            CallbackAnswer::raw_success("yes").after(Duration::from_secs(5)),
        )
        .start(&())
        .unwrap();
    execution.invoke(&workflow).await;
    let ops = execution.operations();
    let work = ops
        .iter()
        .find(|o| o.name.as_deref() == Some("work") && o.op_type == T::Context);
    assert_eq!(
        work.map(|o| o.status),
        Some(S::Succeeded),
        "work finished meanwhile"
    );
    durable_yield_tests::drive(&execution, &workflow, 5)
        .await
        .unwrap();
    let run = execution.finish::<Vec<String>>().unwrap();
    assert_eq!(run.result, Some(vec!["yes".to_owned(), "done".to_owned()]));
    let cb = run.operation("answer").unwrap();
    let parent = run
        .operations
        .iter()
        .find(|o| Some(o.id) == cb.parent_id)
        .unwrap();
    assert_eq!(parent.name.as_deref(), Some("ask"));
}

/// Polls a counter that reaches 3 on the fourth check, with delays of
/// 2, 4 and 8 s.
async fn counter(mut wf: Workflow, limit: u32) -> Result<u32, StepError> {
    let strategy = ExponentialBackoff::new()
        .initial_delay(Duration::from_secs(2))
        .backoff_rate(2.0)
        .max_attempts(limit)
        .jitter(Jitter::None);
    let config = ConditionConfig::named("count").strategy(strategy);
    wf.wait_for_condition_with(config, 0u32, |ctx, n| async move {
        assert_eq!(
            ctx.attempt(),
            n + 1,
            "attempt k sees the state of check k-1"
        );
        Ok(if n + 1 >= 4 {
            Condition::Met(n + 1)
        } else {
            Condition::NotMet(n + 1)
        })
    })
    .await
}

#[tokio::test]
async fn wait_for_condition_polls_with_the_strategy_s_delays() {
    let run = LocalRunner::new().run(&counter, &10).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.result, Some(4));
    assert_eq!(run.invocations, 4);
    assert_eq!(run.elapsed, Duration::from_secs(2 + 4 + 8));
    let op = run.operation("count").unwrap();
    assert_eq!((op.op_type, op.status), (T::Step, S::Succeeded));
    assert_eq!(op.sub_type.as_deref(), Some("WaitForCondition"));
    let d = op.step_details.as_ref().unwrap();
    assert_eq!(d.result.as_ref().map(|p| p.as_str()), Some("4"));
    assert_eq!(d.attempt, Some(4));
    // Each unmet check was a RETRY carrying the state and no error.
    let retries: Vec<(Option<String>, bool)> = run
        .timeline
        .events
        .iter()
        .filter_map(|e| match e {
            durable_yield::local::TimelineEvent::Applied {
                action: durable_yield::model::OperationAction::Retry,
                payload,
                error,
                ..
            } => Some((
                payload.as_ref().map(|p| p.as_str().to_owned()),
                error.is_some(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        retries,
        vec![
            (Some("1".into()), false),
            (Some("2".into()), false),
            (Some("3".into()), false)
        ]
    );
}

#[tokio::test]
async fn wait_for_condition_gives_up_after_the_strategy_s_attempts() {
    let run = LocalRunner::new().run(&counter, &3).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Failed);
    let error = run.error.clone().unwrap();
    assert_eq!(
        error.error_type.as_deref(),
        Some("WaitForConditionExhausted")
    );
    assert!(error.error_message.unwrap().contains("3 times"));
    assert_eq!(run.operation("count").unwrap().status, S::Failed);
    assert_eq!(run.invocations, 3);
}

#[tokio::test]
async fn a_failing_check_fails_the_wait_at_once() {
    let checks = Counter::new();
    let workflow = {
        let checks = checks.clone();
        move |mut wf: Workflow, _: ()| {
            let checks = checks.clone();
            async move {
                let config = ConditionConfig::named("probe")
                    .strategy(FixedDelay::new(Duration::from_secs(1), 10));
                let r = wf
                    .wait_for_condition_with(config, 0u32, move |_, n| async move {
                        checks.hit();
                        if n == 1 {
                            return Err(StepFailure::new("CarrierDown", "no answer"));
                        }
                        Ok(Condition::NotMet(n + 1))
                    })
                    .await;
                let e = r.unwrap_err();
                assert_eq!(e.operation_kind(), "wait for condition");
                Ok::<_, StepError>(e.error_type().unwrap_or("").to_owned())
            }
        }
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.result.as_deref(), Some("CarrierDown"));
    assert_eq!(checks.get(), 2, "no retry of a failing check");
}

#[tokio::test]
async fn conditions_in_branches_poll_side_by_side() {
    let workflow = |mut wf: Workflow, _: ()| async move {
        let r = wf
            .map("pollers", vec![2u32, 3], |mut wf, target, _| async move {
                let config = ConditionConfig::named("reach")
                    .strategy(FixedDelay::new(Duration::from_secs(10), 10));
                wf.wait_for_condition_with(config, 0u32, move |_, n| async move {
                    Ok(if n + 1 >= target {
                        Condition::Met(n + 1)
                    } else {
                        Condition::NotMet(n + 1)
                    })
                })
                .await
            })
            .await?;
        r.into_values()
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.result, Some(vec![2, 3]));
    // Both polled in the same invocations: 20 s, not 30 s.
    assert_eq!(run.elapsed, Duration::from_secs(20));
}

#[tokio::test]
async fn callback_endings_are_typed() {
    async fn ends(mut wf: Workflow, _: ()) -> Result<String, StepError> {
        let cb = wf.create_callback::<u32>("n").await;
        let e = wf.callback_result(&cb).await.unwrap_err();
        assert_eq!(e.ending(), CallbackEnding::Undecodable);
        // Into a StepError with `?`, for workflows that just fail.
        let step: StepError = e.into();
        Ok(step.to_string())
    }
    let run = LocalRunner::new()
        .answer_callback("n", CallbackAnswer::raw_success("not a number"))
        .run(&ends, &())
        .await
        .unwrap();
    let text = run.result.unwrap();
    assert!(
        text.starts_with("callback \"n\" failed: CallbackResultUndecodable"),
        "{text}"
    );
}

#[tokio::test]
async fn wait_for_callback_runs_a_retried_submitter_then_waits() {
    let submissions = Counter::new();
    let workflow = {
        let submissions = submissions.clone();
        move |mut wf: Workflow, _: ()| {
            let submissions = submissions.clone();
            async move {
                let config = durable_yield::WaitForCallbackConfig::named("approval")
                    .timeout(Duration::from_secs(3600))
                    .submitter_retry(FixedDelay::new(Duration::from_secs(1), 3));
                let verdict: String = wf
                    .wait_for_callback_with(config, move |ctx, id| async move {
                        submissions.hit();
                        assert!(!id.is_empty());
                        if ctx.attempt() == 1 {
                            return Err(StepFailure::new("MailDown", "try again"));
                        }
                        Ok(())
                    })
                    .await?;
                wf.wait("later", Duration::from_secs(60)).await;
                Ok::<_, StepError>(verdict)
            }
        }
    };
    let run = LocalRunner::new()
        .answer_callback(
            "approval create callback id",
            CallbackAnswer::raw_success("yes").after(Duration::from_secs(30)),
        )
        .run(&workflow, &())
        .await
        .unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.result.as_deref(), Some("yes"));
    assert_eq!(
        submissions.get(),
        2,
        "failed once, retried once, never again"
    );
    let context = run.operation("approval").unwrap();
    assert_eq!(context.sub_type.as_deref(), Some("WaitForCallback"));
    assert_eq!(context.status, S::Succeeded);
    let cb = run.operation("approval create callback id").unwrap();
    let step = run.operation("approval submitter").unwrap();
    assert_eq!((cb.op_type, cb.parent_id), (T::Callback, Some(context.id)));
    assert_eq!((step.op_type, step.parent_id), (T::Step, Some(context.id)));
    assert_eq!(
        context
            .context_details
            .as_ref()
            .unwrap()
            .result
            .as_ref()
            .map(|p| p.as_str()),
        Some("\"yes\"")
    );
}

#[tokio::test]
async fn a_wait_for_callback_that_times_out_fails_with_the_callback_s_error() {
    async fn wait(mut wf: Workflow, _: ()) -> Result<String, StepError> {
        let config =
            durable_yield::WaitForCallbackConfig::named("signoff").timeout(Duration::from_secs(5));
        let r: Result<String, StepError> = wf
            .wait_for_callback_with(config, |_, _| async { Ok(()) })
            .await;
        let e = r.unwrap_err();
        Ok(format!(
            "{} {}",
            e.operation_kind(),
            e.error_type().unwrap_or("")
        ))
    }
    let run = LocalRunner::new().run(&wait, &()).await.unwrap();
    assert_eq!(
        run.result.as_deref(),
        Some("wait for callback Callback.Timeout")
    );
    assert_eq!(run.operation("signoff").unwrap().status, S::Failed);
}

/// Doubles its input after a one-minute wait.
async fn doubler(mut wf: Workflow, n: u64) -> Result<u64, StepError> {
    wf.wait("think", Duration::from_secs(60)).await;
    wf.step("double", move |_| async move { Ok(n * 2) }).await
}

/// Versions before 0.2 named an unnamed invoke after its function; their
/// executions replay with today's unnamed invoke, and a new invoke
/// records no name.
#[tokio::test]
async fn an_invoke_named_after_its_function_by_an_old_version_still_replays() {
    let old = |mut wf: Workflow, n: u64| async move {
        let config = durable_yield::InvokeConfig::named("doubler");
        let doubled: u64 = wf.invoke_with(config, "doubler", &n).await?;
        Ok::<_, StepError>(doubled)
    };
    let new = |mut wf: Workflow, n: u64| async move {
        let doubled: u64 = wf.invoke("doubler", &n).await?;
        let again: u64 = wf.invoke("doubler", &doubled).await?;
        Ok::<_, StepError>(again)
    };
    let execution = LocalRunner::new()
        .register_workflow("doubler", doubler)
        .start(&3u64)
        .unwrap();
    execution.invoke(&old).await.unwrap();
    assert_eq!(execution.status(), ExecutionStatus::Running);
    while execution.status() == ExecutionStatus::Running {
        execution.advance_time();
        execution.invoke(&new).await.unwrap();
    }
    let run = execution.finish::<u64>().unwrap();
    assert_eq!(run.result, Some(12), "{:?}", run.error);
    let names: Vec<Option<&str>> = run
        .operations
        .iter()
        .filter(|o| o.op_type == T::ChainedInvoke)
        .map(|o| o.name.as_deref())
        .collect();
    assert_eq!(names, vec![Some("doubler"), None]);
}

#[tokio::test]
async fn invokes_call_registered_functions_once_and_replay_their_results() {
    let calls = Counter::new();
    let workflow = |mut wf: Workflow, n: u64| async move {
        let doubled: u64 = wf.invoke("doubler", &n).await?;
        let greeting: String = wf
            .invoke("greeter", &serde_json::json!({"name": "ada"}))
            .await?;
        wf.wait("after", Duration::from_secs(10)).await;
        Ok::<_, StepError>(format!("{doubled} {greeting}"))
    };
    let counted = calls.clone();
    let run = LocalRunner::new()
        .register_workflow("doubler", doubler)
        .register_function("greeter", move |input| {
            counted.hit();
            Ok(serde_json::json!(format!(
                "hello {}",
                input["name"].as_str().unwrap_or("?")
            )))
        })
        .run(&workflow, &21u64)
        .await
        .unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.result.as_deref(), Some("42 hello ada"));
    assert_eq!(calls.get(), 1, "replays never invoke again");
    assert_eq!(
        run.elapsed,
        Duration::from_secs(70) + Duration::from_millis(4),
        "the target's minute, then ten seconds (and a millisecond each way per invoke)"
    );
    assert_eq!(run.invoked.len(), 2);
    let target = run.invoked[0].run.as_ref().expect("the workflow's own run");
    assert_eq!(target.result, Some(serde_json::json!(42)));
    assert_eq!(target.invocations, 2);
    // Unnamed, as AWS's SDKs record an invoke without a name.
    let op = run
        .operations
        .iter()
        .find(|o| o.op_type == T::ChainedInvoke)
        .unwrap();
    assert_eq!(op.name, None);
    assert_eq!((op.op_type, op.status), (T::ChainedInvoke, S::Succeeded));
    assert_eq!(op.sub_type.as_deref(), Some("ChainedInvoke"));
}

#[tokio::test]
async fn failing_and_missing_functions_are_typed_errors() {
    async fn failing(mut wf: Workflow, _: serde_json::Value) -> Result<u32, StepError> {
        wf.step_with(
            durable_yield::StepConfig::named("break").retry(durable_yield::retry::NoRetry),
            |_| async { Err::<u32, _>(StepFailure::new("Broken", "it broke")) },
        )
        .await
    }
    let workflow = |mut wf: Workflow, _: ()| async move {
        let failed = wf.invoke::<_, u32>("failing", &()).await.unwrap_err();
        let missing = wf
            .invoke::<_, u32>("arn:aws:lambda:us-west-2:1:function:nope:live", &1)
            .await;
        let missing = missing.unwrap_err();
        Ok::<_, StepError>(format!(
            "{:?} {} / {:?} {}",
            failed.ending(),
            failed.error_type().unwrap_or(""),
            missing.ending(),
            missing.message().unwrap_or("")
        ))
    };
    let run = LocalRunner::new()
        .register_workflow("failing", failing)
        .run(&workflow, &())
        .await
        .unwrap();
    assert_eq!(
        run.result.as_deref(),
        Some(
            "Failed Broken / FunctionNotFound Function not found: arn:aws:lambda:us-west-2:1:function:nope:live."
        )
    );
    let missing = run
        .operations
        .iter()
        .rev()
        .find(|o| o.op_type == T::ChainedInvoke)
        .unwrap();
    assert_eq!(missing.status, S::Failed);
}

/// `?` on a callback's or an invoke's error, in a workflow whose error is
/// any boxed error, records the error as the service gave it (its type and
/// message), not a wrapper with `ErrorType` `Error`.
#[tokio::test]
async fn callback_and_invoke_errors_keep_their_type_through_question_mark() {
    let callback = |mut wf: Workflow, _: ()| async move {
        let cb = wf.create_callback::<String>("approval").await;
        let v = wf.callback_result(&cb).await?;
        Ok::<_, durable_yield::BoxError>(v)
    };
    let run = LocalRunner::new()
        .answer_callback(
            "approval",
            CallbackAnswer::failure(ErrorObject::new("Rejected", "the approver said no")),
        )
        .run(&callback, &())
        .await
        .unwrap();
    let e = run.error.unwrap();
    assert_eq!(e.error_type.as_deref(), Some("Rejected"));
    assert_eq!(e.error_message.as_deref(), Some("the approver said no"));

    let invoke = |mut wf: Workflow, _: ()| async move {
        let v: u32 = wf.invoke("missing", &1u32).await?;
        Ok::<_, durable_yield::BoxError>(v)
    };
    let run = LocalRunner::new().run(&invoke, &()).await.unwrap();
    let e = run.error.unwrap();
    assert_eq!(e.error_type.as_deref(), Some("ResourceNotFoundException"));
    assert_eq!(
        e.error_message.as_deref(),
        Some("Function not found: missing.")
    );
}

/// On the local runner, an invoked function reads its input as JSON, as a
/// Lambda function reads its event: a payload that is not JSON (here
/// MessagePack's tagged base64) fails the invoked execution with a message
/// that says so, instead of reaching it as `null`.
#[tokio::test]
async fn an_invoke_input_that_is_not_json_fails_the_invoked_function_and_says_why() {
    let target = |_: Workflow, x: u32| async move { Ok::<_, StepError>(x * 2) };
    let workflow = |mut wf: Workflow, ()| async move {
        let config =
            durable_yield::InvokeConfig::new().payload_codec(durable_yield::codecs::MsgPack);
        let e = wf
            .invoke_with::<_, u32, _, _>(config, "double", &21u32)
            .await
            .unwrap_err();
        Ok::<_, StepError>(format!(
            "{} {}",
            e.error_type().unwrap_or(""),
            e.message().unwrap_or("")
        ))
    };
    let run = LocalRunner::new()
        .register_workflow("double", target)
        .run(&workflow, &())
        .await
        .unwrap();
    let result = run.result.unwrap();
    assert!(
        result.starts_with("InvalidInput the input is not JSON (")
            && result.ends_with(
                "): a chained invoke's input is the invoked function's event; encode it with an \
                 untagged text codec (InvokeConfig::payload_codec)"
            ),
        "{result}"
    );
    assert_eq!(run.invoked.len(), 1);
    assert!(
        run.invoked[0].input.starts_with("msgpack:"),
        "{:?}",
        run.invoked[0].input
    );
}

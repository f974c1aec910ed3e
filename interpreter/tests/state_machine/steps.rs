//! Steps: at-most-once, retries, names, wait durations, idempotency keys,
//! recorded errors, jitter.

use super::*;

async fn flaky_at_most_once(mut wf: Workflow, _: ()) -> Result<u32, StepError> {
    use durable_yield_interpreter::StepSemantics;
    wf.step_with(
        StepConfig::named("pay")
            .semantics(StepSemantics::AtMostOncePerRetry)
            .retry(FixedDelay::new(Duration::from_secs(7), 2)),
        |ctx| async move {
            if ctx.attempt() == 1 {
                Err(StepFailure::new("Busy", "try later"))
            } else {
                Ok(9)
            }
        },
    )
    .await
}

#[test]
fn at_most_once_starts_alone_and_a_failure_is_retried() {
    let id = ids(1);
    let mut it = Interpreter::new(ARN, vec![execution("null")], &flaky_at_most_once);
    // START goes alone, and the workflow waits for the answer.
    match it.poll() {
        Some(Action::Checkpoint {
            handle,
            updates,
            wait_for_response,
        }) => {
            CHECKPOINTS.with(|c| c.borrow_mut().push_back(handle));
            assert!(wait_for_response);
            assert_eq!(updates.len(), 1);
            assert_eq!(updates[0].action, A::Start);
        }
        other => panic!("{other:?}"),
    }
    assert!(it.poll().is_none(), "the body waits for the START");
    ack(&mut it, vec![step_op(id[0], "pay", S::Started, 0, None)]);
    let (context, updates) = run_step(&mut it);
    assert_eq!(context.attempt(), 1);
    // The failure becomes a RETRY with the strategy's delay, alone (its
    // START was sent already).
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].action, A::Retry);
    assert_eq!(
        updates[0]
            .step_options
            .as_ref()
            .unwrap()
            .next_attempt_delay_seconds,
        Some(7)
    );
    assert_eq!(
        updates[0].error.as_ref().unwrap().error_type.as_deref(),
        Some("Busy")
    );
    let mut pending = step_op(id[0], "pay", S::Pending, 1, None);
    std::sync::Arc::make_mut(pending.step_details.as_mut().unwrap()).next_attempt_timestamp =
        Some(7_000);
    ack(&mut it, vec![pending]);
    assert!(matches!(
        it.poll(),
        Some(Action::Finish(Outcome::Pending {
            resume_at: Some(7_000)
        }))
    ));
}

#[test]
fn a_step_outcome_does_not_need_the_answer_but_a_wait_does() {
    let mut it = Interpreter::new(ARN, vec![execution("4")], &step_wait_step);
    let (_, outcome) = expect_run(&mut it);
    finish_step(&mut it, outcome);
    match it.poll() {
        Some(Action::Checkpoint {
            handle,
            wait_for_response,
            ..
        }) => {
            assert!(!wait_for_response);
            CHECKPOINTS.with(|c| c.borrow_mut().push_back(handle));
        }
        other => panic!("{other:?}"),
    }
    ack(&mut it, vec![]);
    match it.poll() {
        Some(Action::Checkpoint {
            wait_for_response, ..
        }) => assert!(wait_for_response),
        other => panic!("{other:?}"),
    }
}

/// The error type the interpreter failed the execution with.
fn failed_with(it: &mut Interpreter) -> (String, String) {
    match it.poll() {
        Some(Action::Finish(Outcome::Failed(e))) => (
            e.error_type.unwrap_or_default(),
            e.error_message.unwrap_or_default(),
        ),
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn an_unknown_operation_fails_only_when_the_workflow_reaches_it() {
    let id = ids(3);
    let future = |id: OperationId, t: &str, s: &str| -> Operation {
        serde_json::from_value(serde_json::json!({
            "Id": id.as_str(), "Type": t, "Status": s, "Name": "a", "SubType": "Step"
        }))
        .unwrap()
    };
    // Recorded past where the workflow goes (op 3 of a 2-op prefix): the
    // workflow runs as usual.
    let history = vec![
        execution("4"),
        step_op(id[0], "a", S::Succeeded, 1, Some("5")),
        future(id[2], "FUTURE_OP", "STARTED"),
    ];
    let mut it = Interpreter::new(ARN, history, &step_wait_step);
    let updates = expect_checkpoint(&mut it);
    assert_eq!(updates[0].op_type, T::Wait);

    // Reached: a typed error naming the type, not a non-determinism error.
    let history = vec![execution("4"), future(id[0], "FUTURE_OP", "STARTED")];
    let mut it = Interpreter::new(ARN, history, &step_wait_step);
    let (kind, message) = failed_with(&mut it);
    assert_eq!(kind, "UnknownOperation");
    assert!(
        message.contains("type FUTURE_OP") && message.contains("upgrade"),
        "{message}"
    );
    let history = vec![execution("4"), future(id[0], "STEP", "PAUSED")];
    let mut it = Interpreter::new(ARN, history, &step_wait_step);
    let (kind, message) = failed_with(&mut it);
    assert_eq!(kind, "UnknownOperation");
    assert!(message.contains("status PAUSED"), "{message}");
}

#[test]
fn a_later_started_record_never_reruns_a_succeeded_step() {
    let id = ids(1);
    let history = vec![
        execution("4"),
        step_op(id[0], "a", S::Succeeded, 1, Some("5")),
        step_op(id[0], "a", S::Started, 1, None),
    ];
    let mut it = Interpreter::new(ARN, history, &step_wait_step);
    // Straight to the wait: "a" is replayed, not run.
    let updates = expect_checkpoint(&mut it);
    assert_eq!((updates[0].op_type, updates[0].action), (T::Wait, A::Start));
    assert_eq!(it.replayed(), 1);
    assert_eq!(it.executed(), 0);
}

#[test]
fn invalid_names_fail_before_anything_is_checkpointed() {
    for (name, why) in [
        ("café".to_owned(), "contains 'é'"),
        (String::new(), "empty"),
        ("x".repeat(257), "257 bytes"),
        ("tab\there".to_owned(), "contains '\\t'"),
    ] {
        let workflow = move |mut wf: Workflow, _: ()| {
            let name = name.clone();
            async move { wf.step(name, |_| async { Ok(1u8) }).await }
        };
        let mut it = Interpreter::new(ARN, vec![execution("null")], &workflow);
        let (kind, message) = failed_with(&mut it);
        assert_eq!(kind, "InvalidName");
        assert!(message.contains(why), "{message}");
    }
    let ok = |mut wf: Workflow, _: ()| async move {
        wf.wait("x".repeat(256), Duration::from_secs(1)).await;
        Ok::<_, StepError>(())
    };
    let mut it = Interpreter::new(ARN, vec![execution("null")], &ok);
    assert_eq!(expect_checkpoint(&mut it)[0].action, A::Start);
}

/// On replay, a name that matches its record is not checked again (the
/// service accepted it); a different one is checked first, so an invalid
/// new name is reported as such, not as a changed workflow.
#[test]
fn replayed_names_are_checked_only_when_they_differ_from_the_record() {
    let id = ids(1);
    let recorded = || {
        vec![
            execution("null"),
            step_op(id[0], "a", S::Succeeded, 1, Some("1")),
        ]
    };
    let named = |name: &'static str| {
        move |mut wf: Workflow, _: ()| async move { wf.step(name, |_| async { Ok(2u8) }).await }
    };
    let mut it = Interpreter::new(ARN, recorded(), &named("a"));
    match it.poll() {
        Some(Action::Finish(Outcome::Succeeded(p))) => assert_eq!(p.as_str(), "1"),
        other => panic!("expected the recorded result, got {other:?}"),
    }
    let mut it = Interpreter::new(ARN, recorded(), &named("caf\u{e9}"));
    let (kind, message) = failed_with(&mut it);
    assert_eq!(kind, "InvalidName", "{message}");
    let mut it = Interpreter::new(ARN, recorded(), &named("b"));
    assert_eq!(failed_with(&mut it).0, "NonDeterministicExecution");
}

#[test]
fn wait_durations_round_up_to_whole_seconds() {
    for (duration, expected) in [
        (Duration::from_millis(1500), Some(2)),
        (Duration::from_millis(1), Some(1)),
        (Duration::from_secs(60), Some(60)),
        (Duration::ZERO, None),
        (Duration::from_secs(31_622_400), Some(31_622_400)),
        (Duration::from_millis(31_622_400_001), None),
    ] {
        let workflow = move |mut wf: Workflow, _: ()| async move {
            wf.wait("w", duration).await;
            Ok::<_, StepError>(())
        };
        let mut it = Interpreter::new(ARN, vec![execution("null")], &workflow);
        match expected {
            Some(seconds) => {
                let updates = expect_checkpoint(&mut it);
                assert_eq!(
                    updates[0].wait_options.as_ref().unwrap().wait_seconds,
                    seconds
                );
            }
            None => assert_eq!(failed_with(&mut it).0, "InvalidWaitDuration"),
        }
    }
}

#[test]
fn idempotency_keys_differ_per_execution_and_repeat_per_attempt() {
    let flaky = |mut wf: Workflow, _: ()| async move {
        wf.step_with(
            StepConfig::named("charge").retry(FixedDelay::new(Duration::from_secs(1), 3)),
            |ctx| async move { Err::<u8, _>(StepFailure::new("Busy", ctx.idempotency_key())) },
        )
        .await
    };
    let key = |arn: &str, history: Vec<Operation>| {
        let mut it = Interpreter::new(arn, history, &flaky);
        let (context, outcome) = expect_run(&mut it);
        assert_eq!(context.execution_arn(), arn);
        let message = outcome.unwrap_err().error_object().error_message.clone();
        (
            context.idempotency_key(),
            message.unwrap(),
            context.attempt(),
        )
    };
    let other = "arn:aws:lambda:us-east-1:123456789012:function:f:1/durable-execution/e2/2";
    let first = key(ARN, vec![execution("null")]);
    let second = key(other, vec![execution("null")]);
    assert_ne!(first.0, second.0);
    assert_eq!(first.0, first.1, "the body saw the context's key");
    assert_eq!(first.0.len(), 40);
    assert!(first.0.bytes().all(|b| b.is_ascii_hexdigit()));
    // The second attempt (a replay after the RETRY) has the same key.
    let id = ids(1);
    let retry = key(
        ARN,
        vec![
            execution("null"),
            step_op(id[0], "charge", S::Ready, 1, None),
        ],
    );
    assert_eq!(retry.2, 2);
    assert_eq!(retry.0, first.0);
}

#[test]
fn only_the_sdks_own_result_failures_skip_the_retry_strategy() {
    // A user error that happens to be called "CodecError" is retried.
    let named = |mut wf: Workflow, _: ()| async move {
        wf.step("a", |_| async {
            Err::<u8, _>(StepFailure::new("CodecError", "mine"))
        })
        .await
    };
    let mut it = Interpreter::new(ARN, vec![execution("null")], &named);
    let (_, updates) = run_step(&mut it);
    assert_eq!(updates.last().unwrap().action, A::Retry);
    // A result the codec cannot encode fails the step at once.
    let unencodable = |mut wf: Workflow, _: ()| async move {
        let map: std::collections::HashMap<(u8, u8), u8> = [((1, 2), 3)].into();
        wf.step("a", move |_| async move { Ok(map) })
            .await
            .map(|_| ())
    };
    let mut it = Interpreter::new(ARN, vec![execution("null")], &unencodable);
    let (_, updates) = run_step(&mut it);
    let last = updates.last().unwrap();
    assert_eq!(last.action, A::Fail);
    assert_eq!(
        last.error.as_ref().unwrap().error_type.as_deref(),
        Some("CodecError")
    );
}

#[test]
fn strategies_see_the_live_error_value() {
    let typed = |mut wf: Workflow, _: ()| async move {
        let strategy = |failed: &FailedAttempt| {
            let timed_out = failed
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut);
            timed_out.then(|| Duration::from_secs(3))
        };
        wf.step_with(StepConfig::named("a").retry(strategy), |_| async {
            let e = std::io::Error::new(std::io::ErrorKind::TimedOut, "slow");
            Err::<u8, _>(e.into())
        })
        .await
    };
    let mut it = Interpreter::new(ARN, vec![execution("null")], &typed);
    let (_, updates) = run_step(&mut it);
    let last = updates.last().unwrap();
    assert_eq!(last.action, A::Retry);
    let error = last.error.as_ref().unwrap();
    assert_eq!(error.error_type.as_deref(), Some("Error"));
    assert_eq!(error.error_message.as_deref(), Some("slow"));
}

#[test]
fn long_step_errors_are_recorded_truncated_and_seen_as_recorded() {
    let long = |mut wf: Workflow, _: ()| async move {
        let r = wf
            .step_with(StepConfig::named("a").retry(NoRetry), |_| async {
                Err::<u8, _>(StepFailure::msg("\"".repeat(100_000)))
            })
            .await;
        Ok::<_, StepError>(r.unwrap_err().message().unwrap_or("").len())
    };
    let mut it = Interpreter::new(ARN, vec![execution("null")], &long);
    let (_, updates) = run_step(&mut it);
    let error = updates.last().unwrap().error.clone().unwrap();
    assert!(serde_json::to_vec(&error).unwrap().len() <= MAX_ERROR_JSON);
    let recorded = error.error_message.unwrap();
    assert!(recorded.contains("…[truncated "));
    ack(&mut it, vec![]);
    match it.poll() {
        Some(Action::Finish(Outcome::Succeeded(p))) => {
            assert_eq!(p.as_str(), recorded.len().to_string())
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn jitter_is_a_function_of_the_execution_step_and_attempt() {
    let failing = |mut wf: Workflow, _: ()| async move {
        let config = StepConfig::named("a").retry(
            ExponentialBackoff::new()
                .max_delay(Duration::from_secs(60))
                .initial_delay(Duration::from_secs(60)),
        );
        wf.step_with(config, |_| async { Err::<u8, _>(StepFailure::msg("no")) })
            .await
    };
    let delay = |arn: &str| {
        let mut it = Interpreter::new(arn, vec![execution("null")], &failing);
        let (_, updates) = run_step(&mut it);
        let retry = updates.last().unwrap();
        assert_eq!(retry.action, A::Retry);
        retry
            .step_options
            .as_ref()
            .unwrap()
            .next_attempt_delay_seconds
            .unwrap()
    };
    // The same execution: the same delay (decided once, but reproducible).
    assert_eq!(delay(ARN), delay(ARN));
    // Other executions: other delays (full jitter over 1..=60 s).
    let mut delays: Vec<u32> = (0..8)
        .map(|i| {
            delay(&format!(
                "arn:aws:lambda:us-east-1:1:function:f:1/durable-execution/n{i}/{i}"
            ))
        })
        .collect();
    delays.sort_unstable();
    delays.dedup();
    assert!(delays.len() > 2, "{delays:?}");
}

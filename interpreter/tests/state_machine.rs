//! The interpreter as a state machine, driven by hand without any async
//! runtime: which actions it emits, in which order, for live runs and
//! replays.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use durable_yield_interpreter::id::operation_id;
use durable_yield_interpreter::limits::MAX_ERROR_JSON;
use durable_yield_interpreter::model::{
    ExecutionDetails, Operation, OperationAction as A, OperationId, OperationStatus as S,
    OperationType as T, OperationUpdate, SharedStr, StepDetails, WaitDetails,
};
use durable_yield_interpreter::retry::{ExponentialBackoff, FailedAttempt, FixedDelay, NoRetry};
use durable_yield_interpreter::{
    Action, CheckpointHandle, Interpreter, Outcome, StepConfig, StepContext, StepError,
    StepFailure, StepHandle, StepOutcome, Workflow,
};

const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:f:1/durable-execution/e/1";

/// Polls a step body that completes without waiting (all bodies here do).
fn run_now(mut f: impl Future<Output = StepOutcome> + Unpin) -> StepOutcome {
    let mut cx = Context::from_waker(Waker::noop());
    match std::pin::Pin::new(&mut f).poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("test step bodies complete at once"),
    }
}

thread_local! {
    /// The handle of the last step body handed out.
    static LAST_STEP: Cell<Option<StepHandle>> = const { Cell::new(None) };
    /// The checkpoints handed out and not answered yet.
    static CHECKPOINTS: RefCell<VecDeque<CheckpointHandle>> = const { RefCell::new(VecDeque::new()) };
}

/// Reports the outcome of the last step body handed out.
fn finish_step(it: &mut Interpreter, outcome: StepOutcome) {
    let handle = LAST_STEP
        .with(|h| h.get())
        .expect("a step body was handed out");
    it.step_finished(handle, outcome);
}

/// Answers the oldest checkpoint handed out.
fn ack(it: &mut Interpreter, delta: Vec<Operation>) {
    let handle = CHECKPOINTS
        .with(|c| c.borrow_mut().pop_front())
        .expect("a checkpoint was handed out");
    it.checkpoint_finished(handle, delta);
}

/// The next action must be a step body to run; returns its context and
/// its outcome, run to completion.
fn expect_run(it: &mut Interpreter) -> (StepContext, StepOutcome) {
    match it.poll() {
        Some(Action::RunStep(run)) => {
            LAST_STEP.with(|h| h.set(Some(run.handle)));
            let context = run.context.clone();
            (context, run_now(run.into_body()))
        }
        other => panic!("expected RunStep, got {other:?}"),
    }
}

/// The next action must be a checkpoint; returns its updates.
fn expect_checkpoint(it: &mut Interpreter) -> Vec<OperationUpdate> {
    match it.poll() {
        Some(Action::Checkpoint {
            handle, updates, ..
        }) => {
            CHECKPOINTS.with(|c| c.borrow_mut().push_back(handle));
            updates
        }
        other => panic!("expected Checkpoint, got {other:?}"),
    }
}

/// Runs the pending step body and returns the checkpoint it produces.
fn run_step(it: &mut Interpreter) -> (StepContext, Vec<OperationUpdate>) {
    let (context, outcome) = expect_run(it);
    finish_step(it, outcome);
    (context, expect_checkpoint(it))
}

fn execution(input: &str) -> Operation {
    let mut op = Operation::new(OperationId::new("exec").unwrap(), T::Execution, S::Started);
    op.execution_details = Some(std::sync::Arc::new(ExecutionDetails::new(Some(
        input.into(),
    ))));
    op
}

fn ids(n: usize) -> Vec<OperationId> {
    (1..=n as u64).map(|k| operation_id(None, k)).collect()
}

fn step_op(
    id: OperationId,
    name: &str,
    status: S,
    attempt: u32,
    result: Option<&str>,
) -> Operation {
    let mut op = Operation::new(id, T::Step, status);
    op.name = Some(SharedStr::new(name));
    op.sub_type = Some("Step".into());
    op.step_details = Some(std::sync::Arc::new({
        let mut details = StepDetails::default();
        details.attempt = Some(attempt);
        details.result = result.map(Into::into);
        details
    }));
    op
}

fn wait_op(id: OperationId, name: &str, status: S, end: i64) -> Operation {
    let mut op = Operation::new(id, T::Wait, status);
    op.name = Some(SharedStr::new(name));
    op.sub_type = Some("Wait".into());
    op.wait_details = Some(std::sync::Arc::new(WaitDetails::new(end)));
    op
}

async fn step_wait_step(mut wf: Workflow, x: u32) -> Result<u32, StepError> {
    let a: u32 = wf.step("a", move |_| async move { Ok(x + 1) }).await?;
    wf.wait("w", Duration::from_secs(5)).await;
    let b: u32 = wf.step("b", move |_| async move { Ok(a * 10) }).await?;
    Ok(b)
}

#[test]
fn a_live_step_is_one_checkpoint_with_start_and_succeed() {
    let id = ids(2);
    let mut it = Interpreter::new(ARN, vec![execution("4")], &step_wait_step);
    let (context, outcome) = expect_run(&mut it);
    assert_eq!(context.operation_id(), &id[0]);
    assert_eq!(context.name(), Some("a"));
    assert_eq!(context.attempt(), 1);
    assert!(it.poll().is_none(), "nothing to do while the body runs");
    finish_step(&mut it, outcome);
    let updates = expect_checkpoint(&mut it);
    let actions: Vec<_> = updates.iter().map(|u| (u.id, u.action)).collect();
    assert_eq!(actions, vec![(id[0], A::Start), (id[0], A::Succeed)]);
    assert_eq!(updates[1].payload.as_ref().unwrap().as_str(), "5");
    assert_eq!(updates[0].sub_type.as_deref(), Some("Step"));
    assert!(
        it.poll().is_none(),
        "nothing to do until the checkpoint is acknowledged"
    );
    ack(
        &mut it,
        vec![step_op(id[0], "a", S::Succeeded, 1, Some("5"))],
    );

    let updates = expect_checkpoint(&mut it);
    assert_eq!(updates.len(), 1);
    assert_eq!((updates[0].op_type, updates[0].action), (T::Wait, A::Start));
    assert_eq!(updates[0].wait_options.as_ref().unwrap().wait_seconds, 5);
    ack(&mut it, vec![wait_op(id[1], "w", S::Started, 99_000)]);
    match it.poll() {
        Some(Action::Finish(Outcome::Pending { resume_at })) => assert_eq!(resume_at, Some(99_000)),
        other => panic!("expected Pending, got {other:?}"),
    }
    assert!(it.poll().is_none());
    assert_eq!((it.replayed(), it.executed()), (0, 1));
}

#[test]
fn a_full_replay_emits_nothing_but_the_result() {
    let id = ids(3);
    let history = vec![
        execution("4"),
        step_op(id[0], "a", S::Succeeded, 1, Some("5")),
        wait_op(id[1], "w", S::Succeeded, 1),
        step_op(id[2], "b", S::Succeeded, 1, Some("50")),
    ];
    let mut it = Interpreter::new(ARN, history, &step_wait_step);
    match it.poll() {
        Some(Action::Finish(Outcome::Succeeded(p))) => assert_eq!(p.as_str(), "50"),
        other => panic!("expected Succeeded, got {other:?}"),
    }
    assert_eq!((it.replayed(), it.executed()), (3, 0));
}

#[test]
fn replayed_values_come_from_history_not_from_the_body() {
    let id = ids(3);
    // History says step "a" returned 7 (say, an earlier deploy computed it).
    let history = vec![
        execution("4"),
        step_op(id[0], "a", S::Succeeded, 1, Some("7")),
        wait_op(id[1], "w", S::Succeeded, 1),
    ];
    let mut it = Interpreter::new(ARN, history, &step_wait_step);
    let (context, updates) = run_step(&mut it);
    assert_eq!(context.name(), Some("b"));
    assert_eq!(updates[1].payload.as_ref().unwrap().as_str(), "70");
}

#[test]
fn a_wait_that_is_already_over_when_acknowledged_does_not_suspend() {
    let id = ids(2);
    let history = vec![
        execution("1"),
        step_op(id[0], "a", S::Succeeded, 1, Some("2")),
    ];
    let mut it = Interpreter::new(ARN, history, &step_wait_step);
    expect_checkpoint(&mut it);
    ack(&mut it, vec![wait_op(id[1], "w", S::Succeeded, 1)]);
    assert!(matches!(it.poll(), Some(Action::RunStep(_))));
}

#[test]
fn an_interrupted_attempt_reruns_without_a_new_start() {
    let id = ids(1);
    let history = vec![execution("1"), step_op(id[0], "a", S::Started, 0, None)];
    let mut it = Interpreter::new(ARN, history, &step_wait_step);
    let (context, updates) = run_step(&mut it);
    assert_eq!(context.attempt(), 1);
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].action, A::Succeed);
}

#[test]
fn a_ready_step_starts_its_next_attempt_and_a_pending_one_suspends() {
    let id = ids(1);
    let ready = vec![execution("1"), step_op(id[0], "a", S::Ready, 2, None)];
    let mut it = Interpreter::new(ARN, ready, &step_wait_step);
    let (context, updates) = run_step(&mut it);
    assert_eq!(context.attempt(), 3);
    assert_eq!(
        updates.iter().map(|u| u.action).collect::<Vec<_>>(),
        vec![A::Start, A::Succeed]
    );

    let mut pending = step_op(id[0], "a", S::Pending, 1, None);
    std::sync::Arc::make_mut(pending.step_details.as_mut().unwrap()).next_attempt_timestamp =
        Some(12_345);
    let mut it = Interpreter::new(ARN, vec![execution("1"), pending], &step_wait_step);
    assert!(matches!(
        it.poll(),
        Some(Action::Finish(Outcome::Pending {
            resume_at: Some(12_345)
        }))
    ));
}

#[test]
fn a_missing_execution_operation_fails_with_a_typed_error() {
    let mut it = Interpreter::new(ARN, vec![], &step_wait_step);
    match it.poll() {
        Some(Action::Finish(Outcome::Failed(e))) => {
            assert_eq!(e.error_type.as_deref(), Some("InvalidExecutionState"))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        it.error(),
        Some(durable_yield_interpreter::ExecutionError::InvalidHistory(_))
    ));
}

#[test]
fn driving_out_of_order_is_an_internal_error_not_a_panic() {
    // Handles from another invocation, answered to this one.
    let mut other = Interpreter::new(ARN, vec![execution("1")], &step_wait_step);
    let step = match other.poll() {
        Some(Action::RunStep(run)) => run.handle,
        a => panic!("{a:?}"),
    };
    other.step_finished(step, Ok("2".into()));
    let checkpoint = match other.poll() {
        Some(Action::Checkpoint { handle, .. }) => handle,
        a => panic!("{a:?}"),
    };
    let mut it = Interpreter::new(ARN, vec![execution("1")], &step_wait_step);
    it.checkpoint_finished(checkpoint, vec![]);
    match it.poll() {
        Some(Action::Finish(Outcome::Failed(e))) => {
            assert_eq!(e.error_type.as_deref(), Some("InternalError"))
        }
        other => panic!("{other:?}"),
    }
    it.step_finished(step, Ok("1".into()));
    assert!(it.poll().is_none());
    // A checkpoint answered twice, while the next one is outstanding.
    let mut it = Interpreter::new(ARN, vec![execution("1")], &step_wait_step);
    let (_, outcome) = expect_run(&mut it);
    finish_step(&mut it, outcome);
    let first = match it.poll() {
        Some(Action::Checkpoint { handle, .. }) => handle,
        a => panic!("{a:?}"),
    };
    it.checkpoint_finished(first, vec![]);
    assert!(matches!(it.poll(), Some(Action::Checkpoint { .. })));
    it.checkpoint_finished(first, vec![]);
    match it.poll() {
        Some(Action::Finish(Outcome::Failed(e))) => {
            assert_eq!(e.error_type.as_deref(), Some("InternalError"))
        }
        other => panic!("{other:?}"),
    }
    // A step reported twice.
    let mut it = Interpreter::new(ARN, vec![execution("1")], &step_wait_step);
    let (_, outcome) = expect_run(&mut it);
    finish_step(&mut it, outcome);
    finish_step(&mut it, Ok("3".into()));
    match it.poll() {
        Some(Action::Finish(Outcome::Failed(e))) => {
            assert_eq!(e.error_type.as_deref(), Some("InternalError"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_result_recorded_without_payload_reads_as_null() {
    async fn optional(mut wf: Workflow, _: ()) -> Result<Option<u32>, StepError> {
        wf.step("maybe", |_| async { Ok(Some(1u32)) }).await
    }
    let id = ids(1);
    let history = vec![
        execution(""),
        step_op(id[0], "maybe", S::Succeeded, 1, None),
    ];
    let mut it = Interpreter::new(ARN, history, &optional);
    match it.poll() {
        Some(Action::Finish(Outcome::Succeeded(p))) => assert_eq!(p.as_str(), "null"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_interpreter_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let it = Interpreter::new(ARN, vec![execution("1")], &step_wait_step);
    assert_send(&it);
}

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

#[test]
fn random_values_come_from_the_entropy_the_driver_sets() {
    let draw = |mut wf: Workflow, _: ()| async move { wf.random::<u64>().await };
    let value = |entropy: u128| {
        let mut it = Interpreter::new(ARN, vec![execution("null")], &draw);
        it.set_entropy(entropy);
        let (_, updates) = run_step(&mut it);
        updates.last().unwrap().payload.clone().unwrap()
    };
    // The interpreter reads no randomness of its own: the same input gives
    // the same value; other entropy, another value.
    assert_eq!(value(1), value(1));
    assert_ne!(value(1), value(2));
    // All 128 bits count: entropies that differ only in the upper half
    // give other values.
    assert_ne!(value(1), value(1 | (1 << 100)));
    assert_ne!(value(1 << 64), value(1 << 65));
}

#[test]
fn uuids_use_the_whole_128_bit_entropy() {
    let draw = |mut wf: Workflow, _: ()| async move { wf.uuid().await };
    let value = |entropy: u128| {
        let mut it = Interpreter::new(ARN, vec![execution("null")], &draw);
        it.set_entropy(entropy);
        let (_, updates) = run_step(&mut it);
        updates.last().unwrap().payload.clone().unwrap()
    };
    let mut seen = std::collections::HashSet::new();
    // 64 entropies that differ in one bit each, half of them above bit 64:
    // 64 different UUIDs.
    for bit in (0..128).step_by(2) {
        let uuid = value(1u128 << bit);
        assert_eq!(uuid.as_str().len(), 38, "{uuid:?}"); // quoted JSON
        assert!(seen.insert(uuid.as_str().to_owned()), "bit {bit}");
    }
}

/// After `Finish`, nothing a driver may still call panics: polling again,
/// answers to step bodies and checkpoints handed out before (late, or
/// twice), merged operations, held STARTs, observations.
#[test]
fn calls_after_finish_never_panic() {
    let wf = |mut wf: Workflow, _: ()| async move {
        let a: u32 = wf.step("a", |_| async { Ok(1) }).await?;
        Ok::<_, StepError>(a)
    };
    let mut it = Interpreter::new(ARN, vec![execution("null")], &wf);
    it.observe(Vec::new());
    let (_, updates) = run_step(&mut it);
    assert_eq!(updates.len(), 2, "START and SUCCEED");
    let step = LAST_STEP.with(|h| h.get()).unwrap();
    let checkpoint = CHECKPOINTS.with(|c| c.borrow().front().copied()).unwrap();
    ack(&mut it, Vec::new());
    let mut finished = false;
    for _ in 0..3 {
        match it.poll() {
            Some(Action::Finish(_)) => finished = true,
            None => {}
            other => panic!("after the end: {other:?}"),
        }
    }
    assert!(finished);
    // Late and repeated answers, and everything else a driver calls.
    it.step_finished(step, Ok("1".into()));
    it.step_finished(step, Err(StepFailure::new("Late", "too late")));
    it.checkpoint_finished(checkpoint, Vec::new());
    it.checkpoint_finished(checkpoint, vec![execution("null")]);
    it.merge_operations(vec![step_op(ids(1)[0], "a", S::Succeeded, 1, Some("1"))]);
    it.set_now(5);
    it.send_deferred();
    let _ = it.take_observations();
    for _ in 0..3 {
        match it.poll() {
            None | Some(Action::Finish(_)) => {}
            other => panic!("after the end: {other:?}"),
        }
    }
}

/// A parallel that completes with one branch while the other's body still
/// runs: the late body's outcome, reported after `Finish`, is ignored.
#[test]
fn a_body_that_ends_after_finish_is_ignored() {
    let wf = |mut wf: Workflow, _: ()| async move {
        let branches = vec![
            durable_yield_interpreter::Branch::named("fast", |mut wf: Workflow| async move {
                wf.step("f", |_| async { Ok(1u32) }).await
            }),
            durable_yield_interpreter::Branch::named("slow", |mut wf: Workflow| async move {
                wf.step("s", |_| async { Ok(2u32) }).await
            }),
        ];
        let config = durable_yield_interpreter::ParallelConfig::named("race")
            .completion(durable_yield_interpreter::CompletionPolicy::default().min_successful(1));
        let r = wf.parallel_with(config, branches).await?;
        Ok::<_, StepError>(r.success_count() as u32)
    };
    let mut it = Interpreter::new(ARN, vec![execution("null")], &wf);
    let mut bodies = Vec::new();
    let mut finished = false;
    for _ in 0..200 {
        match it.poll() {
            Some(Action::RunStep(run)) => bodies.push(run),
            Some(Action::Checkpoint { handle, .. }) => it.checkpoint_finished(handle, Vec::new()),
            Some(Action::Finish(_)) => {
                finished = true;
                break;
            }
            Some(other) => panic!("{other:?}"),
            None => {
                // Run the first body only; the other stays out.
                let Some(run) = (!bodies.is_empty()).then(|| bodies.remove(0)) else {
                    break;
                };
                if bodies.is_empty() && run.context.name() == Some("s") {
                    bodies.push(run);
                    break;
                }
                let handle = run.handle;
                let outcome = run_now(run.into_body());
                it.step_finished(handle, outcome);
            }
        }
    }
    assert!(finished, "the race ends with one branch");
    for run in bodies {
        let handle = run.handle;
        let outcome = run_now(run.into_body());
        it.step_finished(handle, outcome);
    }
    for _ in 0..3 {
        match it.poll() {
            None | Some(Action::Finish(_)) => {}
            other => panic!("after the end: {other:?}"),
        }
    }
}

/// JSON whose storage is unreachable: every encode and decode fails with
/// the transient `CodecError::Unavailable`.
#[derive(Clone, Copy)]
struct Unreachable;

impl durable_yield_codecs::Codec for Unreachable {
    fn id(&self) -> &str {
        "unreachable"
    }
    fn encode<T: serde::Serialize + ?Sized>(
        &self,
        _: &T,
        _: &durable_yield_codecs::PayloadContext<'_>,
    ) -> Result<Vec<u8>, durable_yield_codecs::CodecError> {
        Err(durable_yield_codecs::CodecError::unavailable(
            "unreachable",
            "timed out",
        ))
    }
    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        _: &[u8],
        _: &durable_yield_codecs::PayloadContext<'_>,
    ) -> Result<T, durable_yield_codecs::CodecError> {
        Err(durable_yield_codecs::CodecError::unavailable(
            "unreachable",
            "timed out",
        ))
    }
    fn is_text(&self) -> bool {
        true
    }
}

async fn unreachable_step(mut wf: Workflow, _: u32) -> Result<u32, StepError> {
    wf.step_with(StepConfig::named("a").codec(Unreachable), |_| async {
        Ok(1u32)
    })
    .await
}

/// A transient codec failure (AWS's `RetryableSerDesError`) ends the
/// invocation with `Outcome::Retry`, recording no failure: live, when the
/// step's result cannot be encoded (no checkpoint of its outcome; only its
/// START, held back while the body ran, goes out first, as decided before
/// the failure), and on replay, when a recorded one cannot be decoded (no
/// FAIL of the execution).
#[test]
fn a_transient_codec_failure_ends_the_invocation_with_retry_and_records_nothing() {
    let mut it = Interpreter::new(ARN, vec![execution("4")], &unreachable_step);
    let (_, outcome) = expect_run(&mut it);
    assert!(outcome.is_err());
    finish_step(&mut it, outcome);
    match it.poll() {
        Some(Action::Checkpoint { updates, .. }) => {
            let actions: Vec<_> = updates.iter().map(|u| (u.action, u.id)).collect();
            assert_eq!(actions, [(A::Start, ids(1)[0])]);
        }
        other => panic!("expected the step's START, got {other:?}"),
    }
    match it.poll() {
        Some(Action::Finish(Outcome::Retry(error))) => {
            assert_eq!(error.error_type.as_deref(), Some("CodecError"));
            let message = error.error_message.unwrap_or_default();
            assert!(message.contains("timed out"), "{message}");
        }
        other => panic!("expected Retry and no other checkpoint, got {other:?}"),
    }
    assert!(it.poll().is_none());
    assert!(it.error().is_some_and(|e| e.is_transient()));

    let id = ids(1);
    let history = vec![
        execution("4"),
        step_op(id[0], "a", S::Succeeded, 1, Some("unreachable:1")),
    ];
    let mut it = Interpreter::new(ARN, history, &unreachable_step);
    match it.poll() {
        Some(Action::Finish(Outcome::Retry(error))) => {
            assert_eq!(error.error_type.as_deref(), Some("CodecError"));
        }
        other => panic!("expected Retry, got {other:?}"),
    }
    assert_eq!(it.executed(), 0);
}

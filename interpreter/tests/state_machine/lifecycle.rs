//! Live runs, replays, waits and the order actions come in.

use super::*;

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

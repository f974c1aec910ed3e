//! Entropy, and what never panics: calls after the end, bodies that end
//! late, codecs that cannot work.

use super::*;

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

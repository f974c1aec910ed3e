//! Replay safety: non-determinism, codec mismatches, foreign awaits and
//! invalid wait durations all end the execution with a clear error.

use std::time::Duration;

use durable_yield::codecs::{Bincode, MsgPack};
use durable_yield::model::OperationType as T;
use durable_yield::{
    Branch, ExecutionStatus, LocalExecution, LocalRunner, MapConfig, Nesting, StepConfig,
    StepError, Workflow,
};
use durable_yield_tests::Counter;

/// v1 of a workflow: step "reserve", wait, step "charge".
async fn v1(mut wf: Workflow, _: ()) -> Result<u32, StepError> {
    let n: u32 = wf.step("reserve", |_| async { Ok(7) }).await?;
    wf.wait("hold", Duration::from_secs(60)).await;
    let m: u32 = wf.step("charge", move |_| async move { Ok(n * 2) }).await?;
    Ok(m)
}

/// Runs v1's first invocation (which suspends on the wait) and fires the timer.
async fn suspended_v1() -> LocalExecution {
    let execution = LocalRunner::new().start(&()).unwrap();
    execution.invoke(&v1).await.unwrap();
    assert_eq!(execution.status(), ExecutionStatus::Running);
    assert!(execution.advance_time());
    execution
}

fn error_of(execution: &LocalExecution) -> (String, String) {
    let run = execution.finish::<u32>().unwrap();
    assert_eq!(run.status, ExecutionStatus::Failed);
    let e = run.error.unwrap();
    (e.error_type.unwrap(), e.error_message.unwrap())
}

#[tokio::test]
async fn unchanged_code_replays_to_the_same_result() {
    let execution = suspended_v1().await;
    execution.invoke(&v1).await.unwrap();
    let run = execution.finish::<u32>().unwrap();
    assert_eq!(run.result, Some(14));
}

#[tokio::test]
async fn a_renamed_step_is_non_deterministic() {
    let later = Counter::new();
    let v2 = {
        let later = later.clone();
        move |mut wf: Workflow, _: ()| {
            let later = later.clone();
            async move {
                // Workflow code that tries to swallow any error and go on.
                let n: u32 = wf
                    .step("reserve-stock", |_| async { Ok(7) })
                    .await
                    .unwrap_or(0);
                let _: () = wf
                    .step("after", move |_| async move {
                        later.hit();
                        Ok(())
                    })
                    .await
                    .unwrap_or(());
                Ok::<_, StepError>(n)
            }
        }
    };
    let execution = suspended_v1().await;
    execution.invoke(&v2).await.unwrap();
    let (error_type, message) = error_of(&execution);
    assert_eq!(error_type, "NonDeterministicExecution");
    assert!(message.contains("STEP/Step \"reserve\""), "{message}");
    assert!(message.contains("STEP/Step \"reserve-stock\""), "{message}");
    assert!(message.contains("operation #1"), "{message}");
    assert!(message.contains("1ced8f5b"), "names the id: {message}");
    assert!(
        message.contains("new function version"),
        "says what to do: {message}"
    );
    assert_eq!(later.get(), 0, "nothing after the mismatch ran");
    let ops = execution.operations();
    assert_eq!(ops.len(), 3, "nothing was checkpointed: {ops:?}");
}

#[tokio::test]
async fn a_step_turned_wait_is_non_deterministic() {
    let v2 = |mut wf: Workflow, _: ()| async move {
        wf.wait("reserve", Duration::from_secs(1)).await;
        Ok::<_, StepError>(0u32)
    };
    let execution = suspended_v1().await;
    execution.invoke(&v2).await.unwrap();
    let (error_type, message) = error_of(&execution);
    assert_eq!(error_type, "NonDeterministicExecution");
    assert!(
        message.contains("recorded STEP/Step \"reserve\""),
        "{message}"
    );
    assert!(
        message.contains("requests WAIT/Wait \"reserve\""),
        "{message}"
    );
}

#[tokio::test]
async fn a_removed_operation_is_non_deterministic() {
    // v2 dropped the "reserve" step: its first call now lands on op #1.
    let v2 = |mut wf: Workflow, _: ()| async move {
        wf.wait("hold", Duration::from_secs(60)).await;
        Ok::<_, StepError>(0u32)
    };
    let execution = suspended_v1().await;
    execution.invoke(&v2).await.unwrap();
    assert_eq!(error_of(&execution).0, "NonDeterministicExecution");
}

#[tokio::test]
async fn an_operation_appended_after_recorded_ones_just_runs() {
    // Adding work after everything recorded is a compatible change.
    let v2 = |mut wf: Workflow, _: ()| async move {
        let n: u32 = wf.step("reserve", |_| async { Ok(0) }).await?;
        wf.wait("hold", Duration::from_secs(60)).await;
        let m: u32 = wf.step("charge", move |_| async move { Ok(n + 1) }).await?;
        Ok::<_, StepError>(m)
    };
    let execution = suspended_v1().await;
    execution.invoke(&v2).await.unwrap();
    // "reserve" is replayed (7), not re-run (0).
    assert_eq!(execution.finish::<u32>().unwrap().result, Some(8));
}

#[tokio::test]
async fn a_codec_change_is_a_clear_error() {
    let writer = |mut wf: Workflow, _: ()| async move {
        let v: Vec<u32> = wf
            .step_with(StepConfig::named("items").codec(MsgPack), |_| async {
                Ok(vec![1, 2, 3])
            })
            .await?;
        wf.wait("hold", Duration::from_secs(1)).await;
        Ok::<_, StepError>(v.len() as u32)
    };
    let reader_runs = Counter::new();
    let reader = {
        let reader_runs = reader_runs.clone();
        move |mut wf: Workflow, _: ()| {
            let reader_runs = reader_runs.clone();
            async move {
                let v: Vec<u32> = wf
                    .step_with(
                        StepConfig::named("items").codec(Bincode),
                        move |_| async move {
                            reader_runs.hit();
                            Ok(vec![])
                        },
                    )
                    .await?;
                Ok::<_, StepError>(v.len() as u32)
            }
        }
    };
    let execution = LocalRunner::new().start(&()).unwrap();
    execution.invoke(&writer).await.unwrap();
    execution.advance_time();
    execution.invoke(&reader).await.unwrap();
    let (error_type, message) = error_of(&execution);
    assert_eq!(error_type, "CodecError");
    assert!(message.contains("\"items\""), "names the step: {message}");
    assert!(
        message.contains("`msgpack`") && message.contains("`bincode`"),
        "names both codecs: {message}"
    );
    assert!(
        message.contains("executions in flight"),
        "says what to do: {message}"
    );
    assert_eq!(reader_runs.get(), 0);
}

#[tokio::test]
async fn awaiting_a_foreign_future_fails_with_the_last_operation() {
    let workflow = |mut wf: Workflow, _: ()| async move {
        let _: u32 = wf.step("fetch", |_| async { Ok(1) }).await?;
        tokio::time::sleep(Duration::from_millis(1)).await;
        Ok::<_, StepError>(())
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Failed);
    let error = run.error.unwrap();
    assert_eq!(error.error_type.as_deref(), Some("ForeignAwait"));
    let message = error.error_message.unwrap();
    assert!(message.contains("after STEP/Step \"fetch\""), "{message}");
    assert!(message.contains("inside a step body"), "{message}");
    assert_eq!(run.invocations, 1);
}

#[tokio::test]
async fn a_foreign_await_before_any_operation_is_caught_too() {
    let workflow = |_wf: Workflow, _: ()| async move {
        tokio::task::yield_now().await;
        Ok::<_, StepError>(())
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    let message = run.error.unwrap().error_message.unwrap();
    assert!(message.contains("before its first operation"), "{message}");
}

#[tokio::test]
async fn foreign_futures_that_are_ready_at_once_are_harmless() {
    let workflow = |mut wf: Workflow, _: ()| async move {
        std::future::ready(()).await;
        let v: u32 = wf.step("s", |_| async { Ok(3) }).await?;
        async {}.await;
        Ok::<_, StepError>(v)
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.result, Some(3));
}

#[tokio::test]
async fn invalid_wait_durations_fail_before_anything_is_checkpointed() {
    for duration in [
        Duration::ZERO,
        Duration::from_millis(31_622_400_001),
        Duration::from_secs(31_622_401),
        Duration::MAX,
    ] {
        let workflow = move |mut wf: Workflow, _: ()| async move {
            let _: u32 = wf.step("before", |_| async { Ok(1) }).await?;
            wf.wait("bad", duration).await;
            Ok::<_, StepError>(())
        };
        let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
        assert_eq!(run.status, ExecutionStatus::Failed, "{duration:?}");
        let error = run.error.unwrap();
        assert_eq!(error.error_type.as_deref(), Some("InvalidWaitDuration"));
        let message = error.error_message.unwrap();
        assert!(message.contains("\"bad\""), "{message}");
        assert!(message.contains("at most 31622400 s"), "{message}");
        assert!(
            run.operations.iter().all(|op| op.op_type != T::Wait),
            "no wait was checkpointed for {duration:?}"
        );
    }
}

#[tokio::test]
async fn fractional_wait_durations_round_up_to_whole_seconds() {
    for (duration, seconds) in [
        (Duration::from_millis(500), 1),
        (Duration::from_millis(1500), 2),
        (Duration::from_secs(3), 3),
    ] {
        let workflow = move |mut wf: Workflow, _: ()| async move {
            wf.wait("deadline", duration).await;
            Ok::<_, StepError>(())
        };
        let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
        assert_eq!(run.status, ExecutionStatus::Succeeded, "{duration:?}");
        assert_eq!(run.elapsed, Duration::from_secs(seconds), "{duration:?}");
    }
}

/// What one step attempt saw: (execution ARN, attempt, idempotency key).
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, u32, String)>>>;

/// "charge" fails its first attempt (retried after 1 s), then a wait, then
/// "ship"; every attempt records its key.
fn charge_then_ship(
    seen: Seen,
) -> impl Fn(Workflow, ()) -> durable_yield_tests::BoxFuture<Result<String, StepError>>
+ Send
+ Sync
+ 'static {
    move |mut wf: Workflow, _: ()| {
        let seen = seen.clone();
        Box::pin(async move {
            let arn = wf.execution_arn().to_owned();
            let retry = durable_yield::retry::FixedDelay::new(Duration::from_secs(1), 3);
            let record = seen.clone();
            let charged: String = wf
                .step_with(
                    StepConfig::named("charge").retry(retry),
                    move |ctx| async move {
                        let key = ctx.idempotency_key();
                        record.lock().unwrap().push((
                            ctx.execution_arn().to_owned(),
                            ctx.attempt(),
                            key.clone(),
                        ));
                        if ctx.attempt() == 1 {
                            Err(durable_yield::StepFailure::msg("provider timed out"))
                        } else {
                            Ok(key)
                        }
                    },
                )
                .await?;
            wf.wait("cool-off", Duration::from_secs(60)).await;
            let record = seen.clone();
            let _: () = wf
                .step("ship", move |ctx| async move {
                    record.lock().unwrap().push((
                        ctx.execution_arn().to_owned(),
                        0,
                        ctx.idempotency_key(),
                    ));
                    Ok(())
                })
                .await?;
            Ok(format!("{arn} {charged}"))
        })
    }
}

#[tokio::test]
async fn idempotency_keys_are_per_execution_and_stable_across_attempts_and_replays() {
    let mut keys = Vec::new();
    for _ in 0..2 {
        let seen = Seen::default();
        let run = LocalRunner::new()
            .run(&charge_then_ship(seen.clone()), &())
            .await
            .unwrap();
        let result = run.result.unwrap();
        let seen = seen.lock().unwrap().clone();
        // charge attempt 1, charge attempt 2 (a later invocation), ship.
        assert_eq!(seen.iter().map(|s| s.1).collect::<Vec<_>>(), vec![1, 2, 0]);
        let (arn, _, charge) = &seen[0];
        assert_eq!(&seen[1].2, charge, "a retry keeps the key");
        assert_ne!(&seen[2].2, charge, "another step has another key");
        assert!(seen.iter().all(|s| &s.0 == arn));
        assert_eq!(
            result,
            format!("{arn} {charge}"),
            "replay returned the same key"
        );
        assert!(charge.len() <= 64 && charge.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert!(run.invocations >= 3);
        keys.push((arn.clone(), charge.clone()));
    }
    assert_ne!(keys[0].0, keys[1].0, "two executions, two ARNs");
    assert_ne!(
        keys[0].1, keys[1].1,
        "two executions, two keys for one step"
    );
}

#[tokio::test]
async fn now_random_and_uuid_are_recorded_once_and_replayed() {
    type Values = (u64, u64, [u8; 4], f64, String);
    let seen: std::sync::Arc<std::sync::Mutex<Vec<Values>>> = Default::default();
    let record = seen.clone();
    let workflow = move |mut wf: Workflow, _: ()| {
        let record = record.clone();
        async move {
            let now = wf.now().await?;
            let ms = now
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64;
            let r: u64 = wf.random().await?;
            let bytes: [u8; 4] = wf.random().await?;
            let unit: f64 = wf.random().await?;
            let id = wf.uuid().await?;
            record
                .lock()
                .unwrap()
                .push((ms, r, bytes, unit, id.clone()));
            wf.wait("later", Duration::from_secs(3600)).await;
            let later = wf.now().await?;
            Ok::<_, StepError>((ms, later.duration_since(now).unwrap().as_secs(), id))
        }
    };
    let start = 1_800_000_000_000;
    let run = LocalRunner::new()
        .start_time(start)
        .run(&workflow, &())
        .await
        .unwrap();
    let (ms, gap, id) = run.result.clone().unwrap();
    // The virtual clock: the start time, then an hour later.
    assert_eq!(ms, start as u64);
    assert_eq!(gap, 3600);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen.len(),
        2,
        "the code before the wait ran in two invocations"
    );
    assert_eq!(seen[0], seen[1], "the replay saw the recorded values");
    assert_eq!(seen[0].4, id);
    assert!((0.0..1.0).contains(&seen[0].3));
    assert_eq!(id.len(), 36);
    let names: Vec<_> = run
        .operations
        .iter()
        .filter_map(|op| op.name.as_deref())
        .collect();
    assert_eq!(
        names,
        vec!["now", "random", "random", "random", "uuid", "later", "now"]
    );
    // Another execution draws other values.
    let other = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_ne!(other.result.unwrap().2, id);
}

/// A recorded wait or callback replays whatever duration or time-out the
/// code asks for now: a change that makes them invalid fails new ones, not
/// executions that already passed them.
#[tokio::test]
async fn recorded_waits_and_callbacks_are_not_validated_again() {
    fn flow(
        wait: Duration,
        timeout: Duration,
    ) -> impl Fn(Workflow, ()) -> durable_yield_tests::BoxFuture<Result<String, StepError>>
    + Send
    + Sync
    + 'static {
        move |mut wf: Workflow, _: ()| {
            Box::pin(async move {
                wf.wait("pause", wait).await;
                let cb = wf
                    .create_callback::<String>(
                        durable_yield::CallbackConfig::named("approval").timeout(timeout),
                    )
                    .await;
                Ok(wf.callback_result(&cb).await?)
            })
        }
    }
    let valid = flow(Duration::from_secs(60), Duration::from_secs(3600));
    let run = LocalRunner::new()
        .answer_callback(
            "approval",
            durable_yield::local::CallbackAnswer::raw_success("\"yes\""),
        )
        .run(&valid, &())
        .await
        .unwrap();
    assert_eq!(run.result.as_deref(), Some("yes"), "{:?}", run.error);
    // The same history, code that now asks for a zero wait and a time-out
    // over the service's limit.
    let invalid = flow(Duration::ZERO, Duration::from_secs(200_000_000));
    let summary = durable_yield_tests::replay_history(&invalid, &run.arn, &run.operations).await;
    assert_eq!(
        summary.output.status,
        durable_yield::model::InvocationStatus::Succeeded,
        "{:?}",
        summary.output.error
    );
    // New ones are still refused.
    let fresh = LocalRunner::new().run(&invalid, &()).await.unwrap();
    assert_eq!(
        fresh.error.and_then(|e| e.error_type),
        Some("InvalidWaitDuration".to_owned())
    );
}

/// Detection depends on the future, not on timing: a channel with nothing
/// in it yet is caught every time, one that already holds a value never.
#[tokio::test]
async fn a_foreign_await_is_caught_exactly_when_the_future_has_to_wait() {
    for _ in 0..20 {
        let waiting = |mut wf: Workflow, _: ()| async move {
            let _: u32 = wf.step("s", |_| async { Ok(1) }).await?;
            // Nothing has been sent when it is polled.
            let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
            let v = rx.await.unwrap_or(0);
            drop(tx);
            Ok::<_, StepError>(v)
        };
        let run = LocalRunner::new().run(&waiting, &()).await.unwrap();
        assert_eq!(
            run.error.and_then(|e| e.error_type).as_deref(),
            Some("ForeignAwait")
        );
        let ready = |mut wf: Workflow, _: ()| async move {
            let _: u32 = wf.step("s", |_| async { Ok(1) }).await?;
            let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
            let _ = tx.send(2);
            let v = rx.await.unwrap_or(0);
            Ok::<_, StepError>(v)
        };
        let run = LocalRunner::new().run(&ready, &()).await.unwrap();
        assert_eq!(run.result, Some(2), "{:?}", run.error);
    }
}

/// Map and parallel values that JSON and MessagePack write as `null`
/// (`None`, `()`, a `null` JSON value), read back from the recorded batch
/// result by every later invocation: as the live run had them, one per
/// branch that succeeded. (Until 2026-12-05 a replay dropped them: it read
/// `[None, Some(1), None]` back as `[Some(1)]`, and `()` items as none.)
async fn null_values(mut wf: Workflow, _: ()) -> Result<String, StepError> {
    let items = |mut wf: Workflow, i: u32, _| async move {
        wf.step("s", move |_| async move { Ok((i == 1).then_some(i)) })
            .await
    };
    let options: Vec<Option<u32>> = wf.map("options", 0..3u32, items).await?.into_values()?;
    let packed = MapConfig::named("packed").batch_codec(MsgPack);
    let packed: Vec<Option<u32>> = wf.map_with(packed, 0..3u32, items).await?.into_values()?;
    let flat = MapConfig::named("flat").nesting(Nesting::Flat);
    let flat: Vec<Option<u32>> = wf.map_with(flat, 0..3u32, items).await?.into_values()?;
    let units = wf
        .map("units", 0..2u32, |_, _, _| async {
            Ok::<(), StepError>(())
        })
        .await?
        .into_values()?;
    let nulls = wf
        .parallel(
            "nulls",
            vec![
                Branch::named("a", |_| async {
                    Ok::<_, StepError>(serde_json::Value::Null)
                }),
                Branch::named("b", |_| async { Ok::<_, StepError>(serde_json::json!(2)) }),
            ],
        )
        .await?
        .into_values()?;
    let seen = format!("{options:?} {packed:?} {flat:?} {} {nulls:?}", units.len());
    // What the live run saw, recorded; every replay must see the same.
    let live: String = wf
        .step("live", {
            let seen = seen.clone();
            move |_| async move { Ok(seen) }
        })
        .await?;
    wf.wait("pause", Duration::from_secs(1)).await;
    if seen != live {
        return Ok(format!("replayed as {seen}, ran as {live}"));
    }
    Ok(seen)
}

#[tokio::test]
async fn batch_values_written_as_null_replay_as_they_ran() {
    let run = LocalRunner::new().run(&null_values, &()).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    let expected =
        "[None, Some(1), None] [None, Some(1), None] [None, Some(1), None] 2 [Null, Number(2)]";
    assert_eq!(run.result.as_deref(), Some(expected));
    // The second invocation replayed every batch from its record.
    let invocations = run
        .timeline
        .events
        .iter()
        .filter(|e| matches!(e, durable_yield::local::TimelineEvent::Invoked { .. }))
        .count();
    assert_eq!(invocations, 2);
}

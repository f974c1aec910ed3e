//! Replay safety: non-determinism, codec mismatches, foreign awaits and
//! invalid wait durations all end the execution with a clear error.

use std::time::Duration;

use durable_yield::codecs::{Bincode, MsgPack};
use durable_yield::model::OperationType as T;
use durable_yield::{
    ExecutionStatus, LocalExecution, LocalRunner, StepConfig, StepError, Workflow,
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

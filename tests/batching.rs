//! How checkpoint updates are grouped into requests.

use std::time::Duration;

use durable_yield::local::TimelineEvent;
use durable_yield::model::{OperationStatus as S, OperationType as T};
use durable_yield::{
    CheckpointBatching, LocalExecution, LocalRun, LocalRunner, StepError, Workflow,
};
use durable_yield_tests::BoxFuture;
use durable_yield_tests::shape;

/// `n` steps, then a wait, then one more step.
async fn steps_then_wait(mut wf: Workflow, n: u32) -> Result<u32, StepError> {
    let mut sum = 0;
    for i in 0..n {
        sum += wf
            .step(format!("s{i}"), move |_| async move { Ok(i) })
            .await?;
    }
    wf.wait("w", Duration::from_secs(1)).await;
    let last: u32 = wf.step("last", |_| async { Ok(100) }).await?;
    Ok(sum + last)
}

/// Checkpoint requests per invocation, from the timeline.
fn requests<T>(run: &LocalRun<T>) -> Vec<u64> {
    run.timeline
        .events
        .iter()
        .filter_map(|e| match e {
            TimelineEvent::Returned { checkpoints, .. } => Some(*checkpoints),
            _ => None,
        })
        .collect()
}

/// `steps_then_wait(5)`'s operations were recorded in the order they ran.
fn assert_recorded_in_order(run: &LocalRun<u32>) {
    let names: Vec<_> = shape(&run.operations)
        .into_iter()
        .map(|(_, name, _)| name)
        .collect();
    let expected = ["s0", "s1", "s2", "s3", "s4", "w", "last"].map(Some);
    assert_eq!(names[0], None, "the execution comes first");
    assert_eq!(names[1..], expected);
}

#[tokio::test]
async fn by_default_each_live_step_is_one_request() {
    let run = LocalRunner::new().run(&steps_then_wait, &5).await.unwrap();
    assert_eq!(run.result, Some(110));
    // 5 steps + the wait's START; then the last step.
    assert_eq!(requests(&run), vec![6, 1]);
}

#[tokio::test]
async fn a_delay_lets_steps_share_a_request() {
    let runner =
        LocalRunner::new().batching(CheckpointBatching::new().max_delay(Duration::from_secs(60)));
    let run = runner.run(&steps_then_wait, &5).await.unwrap();
    assert_eq!(run.result, Some(110));
    // The 5 steps ride along with the wait's START; the last step is sent
    // before the invocation returns.
    assert_eq!(requests(&run), vec![1, 1]);
    assert_eq!(run.operations.len(), 8);
    assert!(
        run.operations[1..]
            .iter()
            .all(|op| op.status == S::Succeeded)
    );
}

#[tokio::test]
async fn requests_are_split_at_the_update_limit_in_order() {
    let runner = LocalRunner::new().batching(
        CheckpointBatching::new()
            .max_delay(Duration::from_secs(60))
            .max_updates(4),
    );
    let run = runner.run(&steps_then_wait, &5).await.unwrap();
    assert_eq!(run.result, Some(110));
    // 10 step updates + 1 wait START = 11 updates: requests of at most 4.
    assert_eq!(requests(&run), vec![3, 1]);
    assert_recorded_in_order(&run);
}

#[tokio::test]
async fn requests_are_split_at_the_byte_limit_in_order() {
    // Every update is over a one-byte cap: each goes in a request of its
    // own, in order.
    let runner = LocalRunner::new().batching(
        CheckpointBatching::new()
            .max_delay(Duration::from_secs(60))
            .max_bytes(1),
    );
    let run = runner.run(&steps_then_wait, &5).await.unwrap();
    assert_eq!(run.result, Some(110));
    // 10 step updates + the wait's START; then the last step's 2 updates.
    assert_eq!(requests(&run), vec![11, 2]);
    assert_recorded_in_order(&run);
}

/// Two map items create a callback each; with one update per request, the
/// first callback's START is answered by an earlier request of the flush
/// than the last, and its id still reaches the workflow.
#[tokio::test]
async fn what_every_request_of_a_split_flush_answers_reaches_the_workflow() {
    async fn two_callbacks(mut wf: Workflow, _: ()) -> Result<Vec<String>, StepError> {
        wf.map("callbacks", 0..2u32, |mut wf, i, _| async move {
            let callback = wf.create_callback::<u32>(format!("cb{i}")).await;
            Ok::<_, StepError>(callback.id().to_owned())
        })
        .await?
        .into_values()
    }
    let runner = LocalRunner::new().batching(CheckpointBatching::new().max_updates(1));
    let run = runner.run(&two_callbacks, &()).await.unwrap();
    let recorded: Vec<String> = ["cb0", "cb1"]
        .into_iter()
        .map(|name| {
            let op = run.operation(name).unwrap();
            op.callback_details
                .as_ref()
                .unwrap()
                .callback_id
                .clone()
                .unwrap()
        })
        .collect();
    assert_eq!(run.result, Some(recorded));
    // The map, its two items and their callbacks: five operations sent one
    // per request with the first callback's START, before the items end.
    assert!(requests(&run)[0] >= 5, "{:?}", requests(&run));
}

/// Steps "a" (fast), "b" (200 ms on the execution's virtual clock) and
/// "c" (fast).
fn fast_slow_fast(
    execution: LocalExecution,
) -> impl Fn(Workflow, ()) -> BoxFuture<Result<u32, StepError>> + Send + Sync + 'static {
    move |mut wf: Workflow, _: ()| {
        let execution = execution.clone();
        Box::pin(async move {
            let a: u32 = wf.step("a", |_| async { Ok(1) }).await?;
            let b: u32 = wf
                .step("b", move |_| async move {
                    execution.advance_clock(Duration::from_millis(200));
                    Ok(a + 1)
                })
                .await?;
            let c: u32 = wf.step("c", move |_| async move { Ok(b + 1) }).await?;
            Ok(c)
        })
    }
}

/// The batching delay is measured with the service's clock, here the
/// local runner's virtual clock: no wall-clock sleeps, no flakiness.
#[tokio::test]
async fn held_updates_go_out_once_the_delay_has_passed() {
    let mut counts = Vec::new();
    for delay in [
        Duration::ZERO,
        Duration::from_millis(199),
        Duration::from_millis(200),
        Duration::from_millis(201),
        Duration::from_secs(60),
    ] {
        let execution = LocalRunner::new()
            .batching(CheckpointBatching::new().max_delay(delay))
            .start(&())
            .unwrap();
        let workflow = fast_slow_fast(execution.clone());
        let summary = execution.invoke(&workflow).await.unwrap();
        let run = execution.finish::<u32>().unwrap();
        assert_eq!(run.result, Some(3));
        assert_eq!(
            shape(&run.operations)[1..].to_vec(),
            vec![
                (T::Step, Some("a"), S::Succeeded),
                (T::Step, Some("b"), S::Succeeded),
                (T::Step, Some("c"), S::Succeeded)
            ]
        );
        counts.push(summary.checkpoints);
    }
    // No delay: one request per step. Up to 200 ms: "a" is held while "b"
    // runs (200 ms), is due when "c" is about to run, and goes out with
    // "b"; "c" goes out at the end. Over 200 ms: one request at the end.
    assert_eq!(counts, vec![3, 2, 2, 1, 1]);
}

#[tokio::test]
async fn a_result_over_the_operation_limit_fails_the_step_before_sending() {
    let workflow = |mut wf: Workflow, _: ()| async move {
        let r: Result<String, StepError> = wf
            .step("huge", |_| async { Ok("x".repeat(2 * 1024 * 1024)) })
            .await;
        let e = r.unwrap_err();
        Ok::<_, StepError>(format!(
            "{:?}: {}",
            e.error_type(),
            e.message().unwrap_or("")
        ))
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    let out = run.result.clone().unwrap();
    assert!(out.starts_with("Some(\"PayloadTooLarge\")"), "{out}");
    assert!(
        out.contains("\"huge\"") && out.contains("2097154 bytes"),
        "{out}"
    );
    let op = run.operation("huge").unwrap();
    assert_eq!(op.status, S::Failed);
    assert!(op.step_details.as_ref().unwrap().result.is_none());
}

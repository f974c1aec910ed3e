//! A step's START reaches the service while its body runs (AWS's SDKs do
//! the same): a body the process dies in leaves `STARTED` records (the
//! step's and its child context's) behind, and a fast body still costs one
//! request, START and outcome together.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use durable_yield::local::TimelineEvent;
use durable_yield::model::{
    Operation, OperationAction as A, OperationStatus as S, OperationType as T,
};
use durable_yield::{CheckpointBatching, LocalExecution, LocalRunner, StepError, Workflow};
use durable_yield_tests::BoxFuture;
use durable_yield_tests::{Counter, shape};

/// A step "before", then a child context "ctx" holding the step "slow",
/// whose body never ends on its first run (the process dies in it) and
/// returns at once on later runs.
fn crashing(
    runs: Counter,
) -> impl Fn(Workflow, ()) -> BoxFuture<Result<String, StepError>> + Send + Sync + 'static {
    move |mut wf: Workflow, _: ()| {
        let runs = runs.clone();
        Box::pin(async move {
            let before: u32 = wf.step("before", |_| async { Ok(1) }).await?;
            let slow: String = wf
                .child("ctx", move |mut wf| async move {
                    wf.step("slow", move |ctx| async move {
                        if runs.hit() == 1 {
                            std::future::pending::<()>().await;
                        }
                        Ok(format!("attempt {}", ctx.attempt()))
                    })
                    .await
                })
                .await?;
            Ok(format!("{before} {slow}"))
        })
    }
}

/// Completes once `execution` holds operations that `done` accepts,
/// checking whenever it is polled (it asks to be polled again at once).
/// Also completes, setting `gave_up`, after `limit`, so that a regression
/// fails the test instead of hanging it.
struct Until<F> {
    execution: LocalExecution,
    done: F,
    deadline: Instant,
    gave_up: Arc<AtomicBool>,
}

impl<F: Fn(&[Operation]) -> bool + Unpin> Future for Until<F> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if (self.done)(&self.execution.operations()) {
            return Poll::Ready(());
        }
        if Instant::now() >= self.deadline {
            self.gave_up.store(true, Ordering::SeqCst);
            return Poll::Ready(());
        }
        std::thread::sleep(Duration::from_millis(1));
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

fn started(ops: &[Operation], op_type: T, name: &str) -> bool {
    ops.iter()
        .any(|o| o.op_type == op_type && o.name.as_deref() == Some(name) && o.status == S::Started)
}

/// An applied update: `(invocation, type, name, action)`.
type Applied = (u32, T, String, A);

/// Every applied update, with the invocation it was applied in, and the
/// invocations that failed.
fn applied(events: &[TimelineEvent]) -> (Vec<Applied>, Vec<u32>) {
    let mut invocation = 0;
    let mut updates = Vec::new();
    let mut failed = Vec::new();
    for e in events {
        match e {
            TimelineEvent::Invoked { invocation: n, .. } => invocation = *n,
            TimelineEvent::Applied {
                op_type,
                name,
                action,
                ..
            } => updates.push((
                invocation,
                *op_type,
                name.as_deref().unwrap_or("").to_owned(),
                *action,
            )),
            TimelineEvent::InvocationFailed { invocation, .. } => failed.push(*invocation),
            _ => {}
        }
    }
    (updates, failed)
}

#[tokio::test]
async fn a_crash_inside_a_step_leaves_the_step_and_its_context_started() {
    let runs = Counter::new();
    let workflow = crashing(runs.clone());
    let execution = LocalRunner::new().start(&()).unwrap();
    let gave_up = Arc::new(AtomicBool::new(false));
    // The process dies once the service has recorded that "slow" started:
    // its body is still running then (it never ends).
    let crash = Until {
        execution: execution.clone(),
        done: |ops: &[Operation]| started(ops, T::Step, "slow"),
        deadline: Instant::now() + Duration::from_secs(30),
        gave_up: gave_up.clone(),
    };
    assert!(execution.invoke_crashing(&workflow, crash).await.is_none());
    assert!(
        !gave_up.load(Ordering::SeqCst),
        "the START of the running step never reached the service"
    );
    assert_eq!(runs.get(), 1);
    assert_eq!(
        shape(&execution.operations())[1..].to_vec(),
        vec![
            (T::Step, Some("before"), S::Succeeded),
            (T::Context, Some("ctx"), S::Started),
            (T::Step, Some("slow"), S::Started),
        ]
    );
    // The next invocation runs the body again (at least once), without a
    // new START, and "before" is not run again. A START leaves the attempt
    // count as it was, so the body runs as attempt 1 again.
    execution.invoke(&workflow).await.unwrap();
    let run = execution.finish::<String>().unwrap();
    assert_eq!(run.result.as_deref(), Some("1 attempt 1"));
    assert_eq!(runs.get(), 2);
    let (updates, failed) = applied(&run.timeline.events);
    assert_eq!(failed, vec![1]);
    let expected = [
        (1, T::Step, "before", A::Start),
        (1, T::Step, "before", A::Succeed),
        (1, T::Context, "ctx", A::Start),
        (1, T::Step, "slow", A::Start),
        (2, T::Step, "slow", A::Succeed),
        (2, T::Context, "ctx", A::Succeed),
    ]
    .map(|(i, t, n, a)| (i, t, n.to_owned(), a));
    assert_eq!(updates, expected.to_vec());
}

/// `n` fast steps inside a child context, then a slow one.
async fn fast_then_slow(mut wf: Workflow, n: u32) -> Result<u32, StepError> {
    wf.child("group", move |mut wf| async move {
        let mut sum = 0;
        for i in 0..n {
            sum += wf
                .step(format!("fast-{i}"), move |_| async move { Ok(i) })
                .await?;
        }
        Ok::<_, StepError>(sum)
    })
    .await?;
    wf.step("slow", |_| async {
        // A body that waits on I/O longer than the START may wait.
        tokio::time::sleep(Duration::from_millis(400)).await;
        Ok(7)
    })
    .await
}

#[tokio::test]
async fn fast_steps_cost_one_request_and_a_slow_one_two() {
    let execution = LocalRunner::new().start(&5u32).unwrap();
    let summary = execution.invoke(&fast_then_slow).await.unwrap();
    let run = execution.finish::<u32>().unwrap();
    assert_eq!(run.result, Some(7));
    // The context's START rides with the first fast step; each fast step
    // is one request; the context's SUCCEED one; the slow step two (its
    // START while the body runs, then its outcome).
    assert_eq!(summary.checkpoints, 5 + 1 + 2);
    let (updates, _) = applied(&run.timeline.events);
    let slow: Vec<A> = updates
        .iter()
        .filter(|u| u.2 == "slow")
        .map(|u| u.3)
        .collect();
    assert_eq!(slow, vec![A::Start, A::Succeed]);
}

#[tokio::test]
async fn a_longer_start_delay_keeps_a_slow_step_in_one_request() {
    let runner =
        LocalRunner::new().batching(CheckpointBatching::new().start_delay(Duration::from_secs(30)));
    let execution = runner.start(&5u32).unwrap();
    let summary = execution.invoke(&fast_then_slow).await.unwrap();
    assert_eq!(execution.finish::<u32>().unwrap().result, Some(7));
    assert_eq!(summary.checkpoints, 5 + 1 + 1);
}

#[tokio::test]
async fn a_zero_start_delay_sends_each_start_once_its_body_waits() {
    let runner = LocalRunner::new().batching(CheckpointBatching::new().start_delay(Duration::ZERO));
    let execution = runner.start(&5u32).unwrap();
    let summary = execution.invoke(&fast_then_slow).await.unwrap();
    assert_eq!(execution.finish::<u32>().unwrap().result, Some(7));
    // Fast bodies end at their first poll: still one request each.
    assert_eq!(summary.checkpoints, 5 + 1 + 2);
}

/// Each step's START waits from its own body's start: two steps of 600 ms
/// in a row (under a 1 s delay) cost one request each; measured from the
/// first body's start, the second START would go out 400 ms into its body.
#[tokio::test]
async fn each_start_waits_from_its_own_body() {
    async fn two_short(mut wf: Workflow, _: ()) -> Result<u32, StepError> {
        let mut sum = 0;
        for i in 0..2u32 {
            sum += wf
                .step(format!("short-{i}"), move |_| async move {
                    tokio::time::sleep(Duration::from_millis(600)).await;
                    Ok(i)
                })
                .await?;
        }
        Ok(sum)
    }
    let runner =
        LocalRunner::new().batching(CheckpointBatching::new().start_delay(Duration::from_secs(1)));
    let execution = runner.start(&()).unwrap();
    let summary = execution.invoke(&two_short).await.unwrap();
    assert_eq!(execution.finish::<u32>().unwrap().result, Some(1));
    assert_eq!(summary.checkpoints, 2, "START and outcome together, twice");
}

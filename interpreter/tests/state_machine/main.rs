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

// ------------------------------------------------- one subject per file

mod lifecycle;
mod robustness;
mod steps;

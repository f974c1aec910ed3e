//! One invocation, start to end: the code path shared by the local runner
//! and the Lambda handler.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use durable_yield_interpreter::panic_message;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::model::{
    ErrorObject, InvocationInput, InvocationOutput, InvocationStatus, OperationAction,
    OperationType, OperationUpdate, Payload,
};
use crate::service::{DurableService, ServiceError};
use crate::{Action, BoxFuture, Interpreter, Outcome, StepOutcome, WorkflowFn};

/// The largest result returned in the invocation response; a larger one is
/// checkpointed with an EXECUTION SUCCEED (PROTOCOL.md §6).
pub const MAX_RESPONSE_RESULT: usize = 6 * 1024 * 1024 - 50;

/// An invocation that could not finish: the service should invoke again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the invocation failed and should be retried: {0}")]
pub struct InvocationError(pub ServiceError);

/// What one invocation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvocationSummary {
    /// The response for the service.
    pub output: InvocationOutput,
    /// Operations answered from history.
    pub replayed: u64,
    /// Step bodies that ran.
    pub executed: u64,
    /// Checkpoint requests sent.
    pub checkpoints: u64,
}

/// Runs one invocation of `workflow` for the envelope `input`, talking to
/// `service`, and returns the response for the service.
///
/// Errors that the service should answer by invoking again (a stale token,
/// a transient failure) are returned as [`InvocationError`]; everything else
/// ends in the returned output (`SUCCEEDED`, `FAILED` or `PENDING`).
pub async fn run_invocation<I, O, W, S>(
    workflow: &W,
    input: InvocationInput,
    service: &S,
) -> Result<InvocationSummary, InvocationError>
where
    I: DeserializeOwned,
    O: Serialize + 'static,
    W: WorkflowFn<I, O> + ?Sized,
    S: DurableService + ?Sized,
{
    let arn = input.durable_execution_arn;
    let mut token = input.checkpoint_token;
    let mut operations = input.initial_execution_state.operations;
    let mut marker = input.initial_execution_state.next_marker;
    while let Some(m) = marker.take().filter(|m| !m.is_empty()) {
        let page = service
            .get_state(&arn, &token, &m)
            .await
            .map_err(InvocationError)?;
        operations.extend(page.operations);
        marker = page.next_marker;
    }

    let mut interpreter = Interpreter::new(operations, workflow);
    let mut checkpoints = 0u64;
    let summary = |interpreter: &Interpreter, output, checkpoints| InvocationSummary {
        output,
        replayed: interpreter.replayed(),
        executed: interpreter.executed(),
        checkpoints,
    };
    loop {
        let Some(action) = interpreter.poll() else {
            let output = failed(ErrorObject::new(
                "InternalError",
                "the interpreter stopped without finishing",
            ));
            return Ok(summary(&interpreter, output, checkpoints));
        };
        match action {
            Action::RunStep(run) => {
                let outcome = CatchUnwind(run.future).await;
                interpreter.step_finished(outcome);
            }
            Action::Checkpoint(updates) => {
                checkpoints += 1;
                match checkpoint(service, &arn, &mut token, updates).await {
                    Ok(Some(delta)) => interpreter.checkpoint_finished(delta),
                    Ok(None) => return Ok(summary(&interpreter, pending(), checkpoints)),
                    Err(ServiceError::Rejected(message)) => {
                        let output = failed(ErrorObject::new("CheckpointRejected", message));
                        return Ok(summary(&interpreter, output, checkpoints));
                    }
                    Err(e) => return Err(InvocationError(e)),
                }
            }
            Action::Finish(outcome) => {
                let output = match outcome {
                    Outcome::Succeeded(payload) if payload.len() > MAX_RESPONSE_RESULT => {
                        let Some(id) = interpreter.history().execution().map(|op| op.id) else {
                            let output = failed(ErrorObject::new(
                                "InternalError",
                                "no EXECUTION operation to record the large result on",
                            ));
                            return Ok(summary(&interpreter, output, checkpoints));
                        };
                        let mut u = OperationUpdate::new(
                            id,
                            OperationType::Execution,
                            OperationAction::Succeed,
                        );
                        u.payload = Some(payload);
                        checkpoints += 1;
                        match checkpoint(service, &arn, &mut token, vec![u]).await {
                            Ok(_) => succeeded(Payload::from("")),
                            Err(ServiceError::Rejected(m)) => {
                                failed(ErrorObject::new("CheckpointRejected", m))
                            }
                            Err(e) => return Err(InvocationError(e)),
                        }
                    }
                    Outcome::Succeeded(payload) => succeeded(payload),
                    Outcome::Failed(error) => failed(error),
                    Outcome::Pending { .. } => pending(),
                };
                return Ok(summary(&interpreter, output, checkpoints));
            }
        }
    }
}

/// Sends one checkpoint and rotates the token. `Ok(None)`: the service
/// withheld the next token, so this invocation must stop checkpointing.
async fn checkpoint<S: DurableService + ?Sized>(
    service: &S,
    arn: &str,
    token: &mut String,
    updates: Vec<OperationUpdate>,
) -> Result<Option<Vec<crate::model::Operation>>, ServiceError> {
    let response = service.checkpoint(arn, token, updates).await?;
    let Some(next) = response.checkpoint_token else {
        return Ok(None);
    };
    *token = next;
    let mut operations = response.operations;
    let mut marker = response.next_marker;
    while let Some(m) = marker.take().filter(|m| !m.is_empty()) {
        let page = service.get_state(arn, token, &m).await?;
        operations.extend(page.operations);
        marker = page.next_marker;
    }
    Ok(Some(operations))
}

fn succeeded(result: Payload) -> InvocationOutput {
    InvocationOutput {
        status: InvocationStatus::Succeeded,
        result: Some(result),
        error: None,
    }
}

fn failed(error: ErrorObject) -> InvocationOutput {
    InvocationOutput {
        status: InvocationStatus::Failed,
        result: None,
        error: Some(error),
    }
}

fn pending() -> InvocationOutput {
    InvocationOutput {
        status: InvocationStatus::Pending,
        result: None,
        error: None,
    }
}

/// Turns a panic in a step body into a failed attempt.
struct CatchUnwind(BoxFuture<StepOutcome>);

impl Future for CatchUnwind {
    type Output = StepOutcome;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<StepOutcome> {
        let inner = self.0.as_mut();
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(poll) => poll,
            Err(panic) => Poll::Ready(Err(ErrorObject::new(
                "StepPanicked",
                format!("the step body panicked: {}", panic_message(panic.as_ref())),
            ))),
        }
    }
}

//! The invocation driver against a scripted service: envelope parsing,
//! paging, token rotation, error classification and large results.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use durable_yield::engine::{
    CheckpointResponse, DurableService, InvocationError, ServiceError, run_invocation,
};
use durable_yield::id::operation_id;
use durable_yield::model::{
    ExecutionState, InvocationInput, InvocationStatus, Operation, OperationAction, OperationStatus,
    OperationType, OperationUpdate, WaitDetails,
};
use durable_yield::{StepError, Workflow};

/// A service that answers checkpoints from a script (then with fresh
/// tokens and no operations) and records what it was sent.
#[derive(Default)]
struct Scripted {
    answers: Mutex<VecDeque<Result<CheckpointResponse, ServiceError>>>,
    pages: Mutex<VecDeque<ExecutionState>>,
    checkpoints: Mutex<Vec<(String, Vec<OperationUpdate>)>>,
    state_calls: Mutex<Vec<(String, String)>>,
}

impl Scripted {
    fn answering(answers: Vec<Result<CheckpointResponse, ServiceError>>) -> Self {
        Scripted {
            answers: Mutex::new(answers.into()),
            ..Default::default()
        }
    }
    fn requests(&self) -> Vec<(String, Vec<OperationUpdate>)> {
        self.checkpoints.lock().unwrap().clone()
    }
}

impl DurableService for Scripted {
    async fn checkpoint(
        &self,
        _arn: &str,
        token: &str,
        updates: Vec<OperationUpdate>,
    ) -> Result<CheckpointResponse, ServiceError> {
        let mut log = self.checkpoints.lock().unwrap();
        log.push((token.to_owned(), updates));
        let n = log.len();
        self.answers.lock().unwrap().pop_front().unwrap_or_else(|| {
            Ok(CheckpointResponse {
                checkpoint_token: Some(format!("token-{n}")),
                ..Default::default()
            })
        })
    }

    async fn get_state(
        &self,
        _arn: &str,
        token: &str,
        marker: &str,
    ) -> Result<ExecutionState, ServiceError> {
        self.state_calls
            .lock()
            .unwrap()
            .push((token.to_owned(), marker.to_owned()));
        self.pages
            .lock()
            .unwrap()
            .pop_front()
            .ok_or_else(|| ServiceError::Rejected("no such page".into()))
    }
}

/// The envelope of PROTOCOL.md §3, as the service sends it.
const ENVELOPE: &str = r#"{"DurableExecutionArn":"arn:aws:lambda:us-west-2:123456789012:function:f:$LATEST/durable-execution/run1/exec-1",
 "CheckpointToken":"token-0",
 "InitialExecutionState":{"Operations":[{"Id":"exec-1","Type":"EXECUTION","Status":"STARTED",
   "Name":"run1","StartTimestamp":1795755619735,"ExecutionDetails":{"InputPayload":"{\"hello\":\"world\"}"}}],
   "NextMarker":""},
 "UpdatedOperationIds":[]}"#;

fn envelope() -> InvocationInput {
    serde_json::from_str(ENVELOPE).unwrap()
}

#[derive(serde::Deserialize)]
struct Hello {
    hello: String,
}

/// Step "greet", wait "nap" (1 s), step "done".
async fn greet_nap_done(mut wf: Workflow, input: Hello) -> Result<String, StepError> {
    let hello = input.hello;
    let g: String = wf
        .step("greet", move |_| async move { Ok(format!("hi {hello}")) })
        .await?;
    wf.wait("nap", Duration::from_secs(1)).await;
    let d: String = wf
        .step("done", move |_| async move { Ok(format!("{g}!")) })
        .await?;
    Ok(d)
}

fn ok(token: &str, operations: Vec<Operation>) -> Result<CheckpointResponse, ServiceError> {
    Ok(CheckpointResponse {
        checkpoint_token: Some(token.to_owned()),
        operations,
        next_marker: None,
    })
}

fn wait_op(status: OperationStatus) -> Operation {
    let mut op = Operation::new(operation_id(None, 2), OperationType::Wait, status);
    op.name = Some("nap".into());
    op.sub_type = Some("Wait".into());
    op.wait_details = Some(Box::new(WaitDetails {
        scheduled_end_timestamp: Some(1_795_755_620_735),
    }));
    op
}

#[tokio::test]
async fn a_service_envelope_runs_and_tokens_rotate() {
    let service = Scripted::default();
    let summary = run_invocation(&greet_nap_done, envelope(), &service)
        .await
        .unwrap();
    assert_eq!(summary.output.status, InvocationStatus::Pending);
    let requests = service.requests();
    // One request for the step (START + SUCCEED), one for the wait's START,
    // each with the token the previous response returned.
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].0, "token-0");
    assert_eq!(requests[1].0, "token-1");
    let actions: Vec<_> = requests[0].1.iter().map(|u| u.action).collect();
    assert_eq!(
        actions,
        vec![OperationAction::Start, OperationAction::Succeed]
    );
    assert_eq!(
        requests[0].1[1].payload.as_ref().unwrap().as_str(),
        "\"hi world\""
    );
    assert_eq!(requests[1].1[0].op_type, OperationType::Wait);
}

#[tokio::test]
async fn a_wait_the_response_reports_done_does_not_suspend() {
    let service = Scripted::answering(vec![
        ok("token-1", vec![]),
        ok("token-2", vec![wait_op(OperationStatus::Succeeded)]),
    ]);
    let summary = run_invocation(&greet_nap_done, envelope(), &service)
        .await
        .unwrap();
    assert_eq!(summary.output.status, InvocationStatus::Succeeded);
    assert_eq!(summary.output.result.unwrap().as_str(), "\"hi world!\"");
    assert_eq!(service.requests().len(), 3);
}

#[tokio::test]
async fn a_checkpoint_response_with_a_marker_is_paged_in_with_the_new_token() {
    let service = Scripted::answering(vec![
        ok("token-1", vec![]),
        Ok(CheckpointResponse {
            checkpoint_token: Some("token-2".into()),
            operations: vec![],
            next_marker: Some("page-2".into()),
        }),
    ]);
    service.pages.lock().unwrap().push_back(ExecutionState {
        operations: vec![wait_op(OperationStatus::Succeeded)],
        next_marker: None,
    });
    let summary = run_invocation(&greet_nap_done, envelope(), &service)
        .await
        .unwrap();
    assert_eq!(summary.output.status, InvocationStatus::Succeeded);
    assert_eq!(
        *service.state_calls.lock().unwrap(),
        vec![("token-2".to_owned(), "page-2".to_owned())]
    );
}

#[tokio::test]
async fn the_rest_of_the_state_is_paged_in_before_replay() {
    let mut input = envelope();
    input.initial_execution_state.next_marker = Some("m1".into());
    let mut greet = Operation::new(
        operation_id(None, 1),
        OperationType::Step,
        OperationStatus::Succeeded,
    );
    greet.name = Some("greet".into());
    greet.sub_type = Some("Step".into());
    greet.step_details = Some(Box::new(durable_yield::model::StepDetails {
        result: Some("\"hi recorded\"".into()),
        attempt: Some(1),
        ..Default::default()
    }));
    let service = Scripted::default();
    service.pages.lock().unwrap().extend([
        ExecutionState {
            operations: vec![greet],
            next_marker: Some("m2".into()),
        },
        ExecutionState {
            operations: vec![wait_op(OperationStatus::Succeeded)],
            next_marker: None,
        },
    ]);
    let summary = run_invocation(&greet_nap_done, input, &service)
        .await
        .unwrap();
    assert_eq!(summary.output.result.unwrap().as_str(), "\"hi recorded!\"");
    assert_eq!(summary.replayed, 2);
    assert_eq!(summary.executed, 1);
    assert_eq!(
        *service.state_calls.lock().unwrap(),
        vec![
            ("token-0".to_owned(), "m1".to_owned()),
            ("token-0".to_owned(), "m2".to_owned())
        ]
    );
}

#[tokio::test]
async fn a_stale_token_fails_the_invocation() {
    let service = Scripted::answering(vec![Err(ServiceError::InvalidToken(
        "Invalid checkpoint token".into(),
    ))]);
    let error = run_invocation(&greet_nap_done, envelope(), &service)
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        InvocationError(ServiceError::InvalidToken(_))
    ));
}

#[tokio::test]
async fn a_persisting_transient_error_fails_the_invocation() {
    let service = Scripted::answering(vec![Err(ServiceError::Transient("503".into()))]);
    let error = run_invocation(&greet_nap_done, envelope(), &service)
        .await
        .unwrap_err();
    assert!(matches!(error, InvocationError(ServiceError::Transient(_))));
}

#[tokio::test]
async fn a_rejected_checkpoint_fails_the_execution_once() {
    let service = Scripted::answering(vec![Err(ServiceError::Rejected(
        "InvalidParameterValueException: payload too large".into(),
    ))]);
    let summary = run_invocation(&greet_nap_done, envelope(), &service)
        .await
        .unwrap();
    assert_eq!(summary.output.status, InvocationStatus::Failed);
    let error = summary.output.error.unwrap();
    assert_eq!(error.error_type.as_deref(), Some("CheckpointRejected"));
    assert!(error.error_message.unwrap().contains("payload too large"));
    assert_eq!(service.requests().len(), 1, "no retry loop");
}

#[tokio::test]
async fn a_withheld_token_stops_checkpointing_and_suspends() {
    let service = Scripted::answering(vec![Ok(CheckpointResponse::default())]);
    let summary = run_invocation(&greet_nap_done, envelope(), &service)
        .await
        .unwrap();
    assert_eq!(summary.output.status, InvocationStatus::Pending);
    assert_eq!(service.requests().len(), 1);
}

#[tokio::test]
async fn a_result_too_large_for_the_response_is_checkpointed() {
    let big = |mut wf: Workflow, len: usize| async move {
        wf.wait("w", Duration::from_secs(1)).await;
        Ok::<_, StepError>("x".repeat(len))
    };
    let mut input = envelope();
    input.initial_execution_state.operations[0]
        .execution_details
        .as_mut()
        .unwrap()
        .input_payload = Some((6 * 1024 * 1024 - 20).to_string().into());
    input
        .initial_execution_state
        .operations
        .push(wait_op(OperationStatus::Succeeded));
    input.initial_execution_state.operations[1].name = Some("w".into());
    input.initial_execution_state.operations[1].id = operation_id(None, 1);
    let service = Scripted::default();
    let summary = run_invocation(&big, input.clone(), &service).await.unwrap();
    assert_eq!(summary.output.status, InvocationStatus::Succeeded);
    assert_eq!(summary.output.result.unwrap().as_str(), "");
    let requests = service.requests();
    let last = &requests.last().unwrap().1[0];
    assert_eq!(
        (last.op_type, last.action),
        (OperationType::Execution, OperationAction::Succeed)
    );
    assert_eq!(last.id.as_str(), "exec-1");
    assert_eq!(last.payload.as_ref().unwrap().len(), 6 * 1024 * 1024 - 18);

    // Over the service's limit: the execution fails instead.
    input.initial_execution_state.operations[0]
        .execution_details
        .as_mut()
        .unwrap()
        .input_payload = Some((7 * 1024 * 1024).to_string().into());
    let summary = run_invocation(&big, input, &Scripted::default())
        .await
        .unwrap();
    assert_eq!(summary.output.status, InvocationStatus::Failed);
    assert_eq!(
        summary.output.error.unwrap().error_type.as_deref(),
        Some("ResultTooLarge")
    );
}

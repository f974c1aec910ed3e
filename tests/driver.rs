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
            Ok(CheckpointResponse::new(
                Some(format!("token-{n}")),
                Vec::new(),
            ))
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
    Ok(CheckpointResponse::new(Some(token.to_owned()), operations))
}

fn wait_op(status: OperationStatus) -> Operation {
    let mut op = Operation::new(operation_id(None, 2), OperationType::Wait, status);
    op.name = Some("nap".into());
    op.sub_type = Some("Wait".into());
    op.wait_details = Some(std::sync::Arc::new(WaitDetails::new(1_795_755_620_735)));
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
        Ok({
            let mut response = CheckpointResponse::new(Some("token-2".into()), vec![]);
            response.next_marker = Some("page-2".into());
            response
        }),
    ]);
    service.pages.lock().unwrap().push_back(ExecutionState::new(
        vec![wait_op(OperationStatus::Succeeded)],
        None,
    ));
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
    greet.step_details = Some(std::sync::Arc::new({
        let mut details = durable_yield::model::StepDetails::default();
        details.result = Some("\"hi recorded\"".into());
        details.attempt = Some(1);
        details
    }));
    let service = Scripted::default();
    service.pages.lock().unwrap().extend([
        ExecutionState::new(vec![greet], Some("m2".into())),
        ExecutionState::new(vec![wait_op(OperationStatus::Succeeded)], None),
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
    let message = error.error_message.unwrap();
    assert!(
        message.starts_with("CheckpointDurableExecution was rejected by the service")
            && message.contains("payload too large"),
        "{message}"
    );
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
        .map(std::sync::Arc::make_mut)
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
        .map(std::sync::Arc::make_mut)
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

/// Replays one recorded wait "w" (op 1), then returns `text`.
fn returns(
    text: String,
) -> impl Fn(Workflow, ()) -> durable_yield_tests::BoxFuture<Result<String, StepError>>
+ Send
+ Sync
+ 'static {
    move |mut wf: Workflow, _: ()| {
        let text = text.clone();
        Box::pin(async move {
            wf.wait("w", Duration::from_secs(1)).await;
            Ok::<_, StepError>(text)
        })
    }
}

fn after_wait() -> InvocationInput {
    let mut input = envelope();
    input.initial_execution_state.operations[0]
        .execution_details
        .as_mut()
        .map(std::sync::Arc::make_mut)
        .unwrap()
        .input_payload = Some("null".into());
    let mut wait = wait_op(OperationStatus::Succeeded);
    wait.name = Some("w".into());
    wait.id = operation_id(None, 1);
    input.initial_execution_state.operations.push(wait);
    input
}

#[tokio::test]
async fn the_response_size_counts_json_escaping() {
    const LIMIT: usize = 6 * 1024 * 1024;
    // Each text is well under the limit as a payload, but not once it is
    // re-encoded as a JSON string in the response (its payload is the
    // result's own JSON, so escaping applies twice).
    // (unit, repeats): payloads of 3.4, 3.4, 6.0 and 4.4 MB that take
    // 6.8, 6.8, 7.0 and 6.6 MB once escaped in the response.
    for (unit, n) in [
        ("\"", 1_700_000),
        ("\\", 1_700_000),
        ("\u{1}", 1_000_000),
        ("\n", 2_200_000),
    ] {
        let text = unit.repeat(n);
        let service = Scripted::default();
        let summary = run_invocation(&returns(text.clone()), after_wait(), &service)
            .await
            .unwrap();
        assert_eq!(
            summary.output.status,
            InvocationStatus::Succeeded,
            "{unit:?}"
        );
        let response = serde_json::to_vec(&summary.output).unwrap();
        assert!(
            response.len() <= LIMIT,
            "{unit:?}: {} bytes",
            response.len()
        );
        let result = summary.output.result.unwrap();
        assert!(
            result.is_empty(),
            "{unit:?}: {} bytes in the response",
            result.len()
        );
        let requests = service.requests();
        let last = &requests.last().unwrap().1[0];
        assert_eq!(
            (last.op_type, last.action),
            (OperationType::Execution, OperationAction::Succeed)
        );
        let recorded: String =
            serde_json::from_str(last.payload.as_ref().unwrap().as_str()).unwrap();
        assert!(
            recorded == text,
            "{unit:?}: the whole result is checkpointed"
        );
    }
    // Just under the limit once escaped: sent in the response as it is.
    let text = "\"".repeat(1_500_000);
    let service = Scripted::default();
    let summary = run_invocation(&returns(text.clone()), after_wait(), &service)
        .await
        .unwrap();
    let response = serde_json::to_vec(&summary.output).unwrap();
    assert!(
        response.len() <= LIMIT && response.len() > 5_900_000,
        "{}",
        response.len()
    );
    assert!(service.requests().is_empty());
    // Non-ASCII text is not escaped: 5 MiB of it goes in the response.
    let text = "é".repeat(5 * 512 * 1024);
    let service = Scripted::default();
    let summary = run_invocation(&returns(text.clone()), after_wait(), &service)
        .await
        .unwrap();
    let result = summary.output.result.clone().unwrap();
    assert_eq!(
        serde_json::from_str::<String>(result.as_str()).unwrap(),
        text
    );
    assert!(serde_json::to_vec(&summary.output).unwrap().len() <= LIMIT);
    assert!(service.requests().is_empty());
}

#[tokio::test]
async fn state_pages_that_loop_fail_the_invocation() {
    let mut input = envelope();
    input.initial_execution_state.next_marker = Some("m1".into());
    let service = Scripted::default();
    service.pages.lock().unwrap().extend([
        ExecutionState::new(vec![], Some("m2".into())),
        ExecutionState::new(vec![], Some("m1".into())),
    ]);
    let error = run_invocation(&greet_nap_done, input, &service)
        .await
        .unwrap_err();
    match error {
        InvocationError(ServiceError::InvalidResponse(m)) => {
            assert!(m.contains("loop") && m.contains("\"m1\""), "{m}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(service.state_calls.lock().unwrap().len(), 2);
}

/// Answers every state page with a new marker, forever.
struct EndlessPages;

impl DurableService for EndlessPages {
    async fn checkpoint(
        &self,
        _: &str,
        _: &str,
        _: Vec<OperationUpdate>,
    ) -> Result<CheckpointResponse, ServiceError> {
        Err(ServiceError::Rejected("unused".into()))
    }
    async fn get_state(
        &self,
        _: &str,
        _: &str,
        marker: &str,
    ) -> Result<ExecutionState, ServiceError> {
        let n: u64 = marker.trim_start_matches('m').parse().unwrap_or(0);
        Ok(ExecutionState::new(vec![], Some(format!("m{}", n + 1))))
    }
}

#[tokio::test]
async fn endless_state_pages_are_bounded() {
    let mut input = envelope();
    input.initial_execution_state.next_marker = Some("m0".into());
    let error = run_invocation(&greet_nap_done, input, &EndlessPages)
        .await
        .unwrap_err();
    match error {
        InvocationError(ServiceError::InvalidResponse(m)) => {
            assert!(m.contains("did not end after 5000 pages"), "{m}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_rejected_state_page_names_the_call() {
    let mut input = envelope();
    input.initial_execution_state.next_marker = Some("m1".into());
    // No page scripted: the service answers Rejected("no such page").
    let summary = run_invocation(&greet_nap_done, input, &Scripted::default())
        .await
        .unwrap();
    let error = summary.output.error.unwrap();
    assert_eq!(error.error_type.as_deref(), Some("ExecutionStateRejected"));
    assert_eq!(
        error.error_message.as_deref(),
        Some("GetDurableExecutionState was rejected by the service: no such page")
    );
}

#[tokio::test]
async fn unknown_operations_in_a_checkpoint_response_are_kept_not_rejected() {
    // The response to the first checkpoint carries an operation of a type
    // this SDK does not know, somewhere the workflow never goes.
    let future: Operation = serde_json::from_value(serde_json::json!({
        "Id": "elsewhere", "Type": "FUTURE_OP", "Status": "PAUSED"
    }))
    .unwrap();
    let service = Scripted::answering(vec![ok("token-1", vec![future])]);
    let summary = run_invocation(&greet_nap_done, envelope(), &service)
        .await
        .unwrap();
    assert_eq!(summary.output.status, InvocationStatus::Pending);
    assert_eq!(summary.executed, 1);

    // Where the workflow goes: a typed error that names it.
    let mut input = envelope();
    let mut reached: Operation = serde_json::from_value(serde_json::json!({
        "Id": operation_id(None, 1).as_str(), "Type": "STEP", "Status": "PAUSED",
        "Name": "greet", "SubType": "Step"
    }))
    .unwrap();
    reached.parent_id = None;
    input.initial_execution_state.operations.push(reached);
    let summary = run_invocation(&greet_nap_done, input, &Scripted::default())
        .await
        .unwrap();
    let error = summary.output.error.unwrap();
    assert_eq!(error.error_type.as_deref(), Some("UnknownOperation"));
    assert!(error.error_message.unwrap().contains("status PAUSED"));
}

#[tokio::test]
async fn an_envelope_with_unknown_types_and_statuses_parses() {
    let json = ENVELOPE.replace(
        r#""UpdatedOperationIds":[]"#,
        r#""UpdatedOperationIds":[], "Extra": {"New": true}"#,
    );
    let mut input: InvocationInput = serde_json::from_str(&json).unwrap();
    input.initial_execution_state.operations.push(
        serde_json::from_str(
            r#"{"Id":"x","Type":"FUTURE_OP","Status":"PAUSED","FutureDetails":{}}"#,
        )
        .unwrap(),
    );
    let summary = run_invocation(&greet_nap_done, input, &Scripted::default())
        .await
        .unwrap();
    assert_eq!(summary.output.status, InvocationStatus::Pending);
}

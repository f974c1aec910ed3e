//! The Lambda layer (`DurableFunction`) against a scripted service: the
//! invocation envelope in, the durable response out, through the same
//! `tower` service `lambda_runtime` calls, with the response size rules.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use durable_yield::engine::{CheckpointResponse, DurableService, ServiceError};
use durable_yield::lambda::DurableFunction;
use durable_yield::model::{
    ExecutionState, InvocationInput, InvocationOutput, OperationAction, OperationType,
    OperationUpdate,
};
use durable_yield::{CheckpointBatching, StepError, Workflow};
use lambda_runtime::{Context, Diagnostic, LambdaEvent, Service};

/// Accepts every checkpoint (or answers a stale token when told to) and
/// records the updates.
#[derive(Default, Clone)]
struct Recording {
    stale: bool,
    updates: Arc<Mutex<Vec<OperationUpdate>>>,
}

impl DurableService for Recording {
    async fn checkpoint(
        &self,
        _: &str,
        token: &str,
        updates: Vec<OperationUpdate>,
    ) -> Result<CheckpointResponse, ServiceError> {
        if self.stale {
            return Err(ServiceError::InvalidToken(
                "Invalid checkpoint token".into(),
            ));
        }
        self.updates.lock().unwrap().extend(updates);
        Ok(CheckpointResponse::new(
            Some(format!("{token}+")),
            Vec::new(),
        ))
    }
    async fn get_state(&self, _: &str, _: &str, _: &str) -> Result<ExecutionState, ServiceError> {
        Err(ServiceError::Rejected("no pages".into()))
    }
}

/// Greets (a step), or waits first when the input asks for it, or returns
/// `repeat` copies of a string, or fails.
async fn workflow(mut wf: Workflow, input: serde_json::Value) -> Result<String, StepError> {
    if input["wait"].as_bool() == Some(true) {
        wf.wait("nap", Duration::from_secs(60)).await;
    }
    if let Some(n) = input["repeat"].as_u64() {
        return Ok("\"".repeat(n as usize));
    }
    if input["fail"].as_bool() == Some(true) {
        return wf
            .step_with(
                durable_yield::StepConfig::named("charge").retry(durable_yield::retry::NoRetry),
                |_| async { Err(durable_yield::StepFailure::new("Declined", "no funds")) },
            )
            .await;
    }
    let name = input["name"].as_str().unwrap_or("nobody").to_owned();
    wf.step("greet", move |_| async move { Ok(format!("hello {name}")) })
        .await
}

/// The event the service sends, with `input` as the execution input.
fn event(input: &str) -> LambdaEvent<InvocationInput> {
    let envelope = serde_json::json!({
        "DurableExecutionArn": "arn:aws:lambda:us-west-2:123456789012:function:f:1/durable-execution/n/exec-1",
        "CheckpointToken": "token-0",
        "InitialExecutionState": {"Operations": [{
            "Id": "exec-1", "Type": "EXECUTION", "Status": "STARTED",
            "StartTimestamp": 1795755619735_i64,
            "ExecutionDetails": {"InputPayload": input}
        }]}
    });
    let payload: InvocationInput = serde_json::from_value(envelope).unwrap();
    LambdaEvent::new(payload, Context::default())
}

type Function = DurableFunction<
    fn(Workflow, serde_json::Value) -> durable_yield_tests::BoxFuture<Result<String, StepError>>,
    serde_json::Value,
    String,
    Recording,
>;

fn function(service: Recording) -> Function {
    fn boxed(
        wf: Workflow,
        input: serde_json::Value,
    ) -> durable_yield_tests::BoxFuture<Result<String, StepError>> {
        Box::pin(workflow(wf, input))
    }
    DurableFunction::new(boxed as _, service, CheckpointBatching::default())
}

async fn call(f: &mut Function, input: &str) -> InvocationOutput {
    f.call(event(input)).await.unwrap()
}

#[tokio::test]
async fn an_envelope_in_gives_the_durable_response_out() {
    let mut f = function(Recording::default());
    let out = call(&mut f, r#"{"name":"ada"}"#).await;
    assert_eq!(
        serde_json::to_value(&out).unwrap(),
        serde_json::json!({"Status": "SUCCEEDED", "Result": "\"hello ada\""})
    );
    let out = call(&mut f, r#"{"wait":true}"#).await;
    assert_eq!(
        serde_json::to_value(&out).unwrap(),
        serde_json::json!({"Status": "PENDING"})
    );
    let out = call(&mut f, r#"{"fail":true}"#).await;
    let value = serde_json::to_value(&out).unwrap();
    assert_eq!(value["Status"], "FAILED");
    assert_eq!(value["Error"]["ErrorType"], "Declined");
    assert!(value.get("Result").is_none());
}

#[tokio::test]
async fn a_response_too_large_once_escaped_is_checkpointed() {
    let mut f = function(Recording::default());
    // 1.7 M quotes: a 3.4 MB payload that takes 6.8 MB in the response.
    let out = call(&mut f, r#"{"repeat":1700000}"#).await;
    let response = serde_json::to_vec(&out).unwrap();
    assert!(response.len() < 100, "{} bytes", response.len());
    assert_eq!(out.result.as_ref().map(|r| r.as_str()), Some(""));
    // 1.4 M quotes: 5.6 MB in the response, sent as it is.
    let small = call(&mut f, r#"{"repeat":1400000}"#).await;
    let response = serde_json::to_vec(&small).unwrap();
    assert!(response.len() > 5_000_000 && response.len() <= 6 * 1024 * 1024);
}

#[tokio::test]
async fn the_large_result_goes_to_an_execution_succeed() {
    let service = Recording::default();
    let f = function(service.clone());
    let out = f
        .handle(event(r#"{"repeat":1700000}"#).payload)
        .await
        .unwrap();
    assert_eq!(out.result.as_ref().map(|r| r.as_str()), Some(""));
    let updates = service.updates.lock().unwrap();
    let last = updates.last().unwrap();
    assert_eq!(
        (last.op_type, last.action),
        (OperationType::Execution, OperationAction::Succeed)
    );
    let recorded: String = serde_json::from_str(last.payload.as_ref().unwrap().as_str()).unwrap();
    assert!(recorded.len() == 1_700_000 && recorded.bytes().all(|b| b == b'"'));
}

#[tokio::test]
async fn a_stale_token_fails_the_invocation_with_a_diagnostic() {
    let mut f = function(Recording {
        stale: true,
        ..Default::default()
    });
    let error = f.call(event(r#"{"name":"ada"}"#)).await.unwrap_err();
    let diagnostic: Diagnostic = error.into();
    assert_eq!(diagnostic.error_type, "DurableInvocationError");
    assert!(
        diagnostic
            .error_message
            .contains("Invalid checkpoint token"),
        "{}",
        diagnostic.error_message
    );
}

#[tokio::test]
async fn clones_serve_invocations_concurrently() {
    let f = function(Recording::default());
    let mut handles = Vec::new();
    for i in 0..8 {
        let mut f = f.clone();
        handles.push(tokio::spawn(async move {
            let out = f
                .call(event(&format!(r#"{{"name":"n{i}"}}"#)))
                .await
                .unwrap();
            out.result.unwrap().as_str().to_owned()
        }));
    }
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.await.unwrap(), format!("\"hello n{i}\""));
    }
}

/// Logs the invocation hooks with the request id and the step ends.
struct Hooks(Arc<Mutex<Vec<String>>>);

struct HooksOf(Arc<Mutex<Vec<String>>>);

impl durable_yield::plugin::Plugin for Hooks {
    fn invocation(
        &self,
        start: &durable_yield::plugin::InvocationStart<'_>,
    ) -> Result<Box<dyn durable_yield::plugin::InvocationHooks>, durable_yield::BoxError> {
        self.0.lock().unwrap().push(format!(
            "start {} {:?} first={}",
            start.execution_arn.rsplit('/').next().unwrap_or(""),
            start.request_id,
            start.first_invocation
        ));
        Ok(Box::new(HooksOf(self.0.clone())))
    }
}

impl durable_yield::plugin::InvocationHooks for HooksOf {
    fn on_operation_end(
        &mut self,
        e: &durable_yield::plugin::OperationEvent<'_>,
    ) -> durable_yield::plugin::HookResult {
        self.0
            .lock()
            .unwrap()
            .push(format!("end {} {}", e.name.unwrap_or("-"), e.status));
        Ok(())
    }
    fn on_invocation_end(
        &mut self,
        e: &durable_yield::plugin::InvocationEnd<'_>,
    ) -> durable_yield::plugin::HookResult {
        let error = e.error.and_then(|e| e.error_type.as_deref()).unwrap_or("-");
        self.0
            .lock()
            .unwrap()
            .push(format!("end invocation {} {error}", e.status));
        Ok(())
    }
}

#[tokio::test]
async fn plugins_registered_on_the_function_see_each_invocation() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut f = function(Recording::default()).plugin(Hooks(log.clone()));
    let mut event = event(r#"{"name":"ada"}"#);
    event.context.request_id = "req-1".into();
    f.call(event).await.unwrap();
    let mut stale = function(Recording {
        stale: true,
        ..Default::default()
    })
    .plugin(Hooks(log.clone()));
    stale
        .call(self::event(r#"{"name":"bob"}"#))
        .await
        .unwrap_err();
    assert_eq!(
        *log.lock().unwrap(),
        [
            "start exec-1 Some(\"req-1\") first=true",
            "end greet SUCCEEDED",
            "end invocation SUCCEEDED -",
            "start exec-1 Some(\"\") first=true",
            "end greet SUCCEEDED",
            "end invocation RETRY InvocationFailed",
        ]
    );
}

//! [`DurableService`] over `aws-sdk-lambda`: `CheckpointDurableExecution`
//! and `GetDurableExecutionState`, with conversions between the SDK's
//! types and the wire model, and error classification.

use std::future::Future;
use std::sync::Arc;

use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::types as sdk;
use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::retries::classifiers::{ClassifyRetry, RetryAction};
use aws_smithy_types::DateTime;
use aws_smithy_types::error::display::DisplayErrorContext;

use crate::model::{
    CallbackDetails, ChainedInvokeDetails, ContextDetails, ErrorObject, ExecutionDetails,
    ExecutionState, Millis, Operation, OperationId, OperationStatus, OperationType,
    OperationUpdate, SharedStr, StepDetails, WaitDetails,
};
use crate::service::{CheckpointResponse, DurableService, ServiceError};

/// The most operations asked for per `GetDurableExecutionState` page.
const PAGE_SIZE: i32 = 1000;

/// The durable execution service on AWS, through `aws-sdk-lambda`.
///
/// Throttling, 5xx and network errors are retried with exponential backoff
/// by the client's retry strategy (the SDK's standard mode: 3 attempts
/// unless the configuration says otherwise); what is left is classified
/// into a [`ServiceError`]. Throttling and 5xx are recognized by the HTTP
/// status as well as by the error code, since some endpoints (AWS's
/// emulator among them) answer 429 without an `X-Amzn-ErrorType` header,
/// which the client alone would not retry.
#[derive(Debug, Clone)]
pub struct AwsDurableService {
    client: aws_sdk_lambda::Client,
}

impl AwsDurableService {
    /// Uses `client` with its configuration, adding the retry of HTTP 429
    /// and 5xx answers that carry no error code.
    pub fn new(client: aws_sdk_lambda::Client) -> Self {
        AwsDurableService::with_status_retries(client.config().to_builder())
    }

    /// A client from `config`: region, credentials, endpoint (so
    /// `AWS_ENDPOINT_URL_LAMBDA` points it at a local emulator) and retry
    /// settings.
    pub fn from_conf(config: &aws_config::SdkConfig) -> Self {
        AwsDurableService::with_status_retries(aws_sdk_lambda::config::Builder::from(config))
    }

    fn with_status_retries(config: aws_sdk_lambda::config::Builder) -> Self {
        let config = config.retry_classifier(StatusCodeRetries).build();
        AwsDurableService {
            client: aws_sdk_lambda::Client::from_conf(config),
        }
    }

    /// The client.
    pub fn client(&self) -> &aws_sdk_lambda::Client {
        &self.client
    }
}

impl DurableService for AwsDurableService {
    fn checkpoint(
        &self,
        execution_arn: &str,
        checkpoint_token: &str,
        updates: Vec<OperationUpdate>,
    ) -> impl Future<Output = Result<CheckpointResponse, ServiceError>> + Send {
        let request = updates
            .iter()
            .map(to_sdk_update)
            .collect::<Result<Vec<_>, _>>()
            .map(|updates| {
                self.client
                    .checkpoint_durable_execution()
                    .durable_execution_arn(execution_arn)
                    .checkpoint_token(checkpoint_token)
                    .set_updates(Some(updates))
            });
        async move {
            let output = request?.send().await.map_err(classify)?;
            let state = output.new_execution_state();
            Ok(CheckpointResponse {
                checkpoint_token: output.checkpoint_token().map(str::to_owned),
                operations: state
                    .map(|s| s.operations().iter().map(from_sdk_operation).collect())
                    .transpose()?
                    .unwrap_or_default(),
                next_marker: state.and_then(|s| s.next_marker()).map(str::to_owned),
            })
        }
    }

    /// One page, converted by [`DurableService::get_state_into`] into a
    /// vector of its own.
    async fn get_state(
        &self,
        execution_arn: &str,
        checkpoint_token: &str,
        marker: &str,
    ) -> Result<ExecutionState, ServiceError> {
        let mut operations = Vec::new();
        let next_marker = self
            .get_state_into(execution_arn, checkpoint_token, marker, &mut operations)
            .await?;
        Ok(ExecutionState::new(operations, next_marker))
    }

    /// Converts the page's operations straight into `operations` (no
    /// vector of its own to copy from), grown as the trait's default
    /// grows it; on an operation that does not convert, `operations` is
    /// left as it was.
    fn get_state_into(
        &self,
        execution_arn: &str,
        checkpoint_token: &str,
        marker: &str,
        operations: &mut Vec<Operation>,
    ) -> impl Future<Output = Result<Option<String>, ServiceError>> + Send {
        let request = self
            .client
            .get_durable_execution_state()
            .durable_execution_arn(execution_arn)
            .checkpoint_token(checkpoint_token)
            .marker(marker)
            .max_items(PAGE_SIZE);
        async move {
            let output = request.send().await.map_err(classify)?;
            let page = output.operations();
            crate::service::reserve_page(operations, page.len());
            let before = operations.len();
            for op in page {
                match from_sdk_operation(op) {
                    Ok(op) => operations.push(op),
                    Err(error) => {
                        operations.truncate(before);
                        return Err(error);
                    }
                }
            }
            Ok(output.next_marker().map(str::to_owned))
        }
    }
}

/// Retries HTTP 429 (as throttling) and 500, 502, 503, 504 (as transient)
/// whatever the error code says: an answer without an `X-Amzn-ErrorType`
/// header has no code, and the client's own classifiers would give up on
/// a code-less 429.
#[derive(Debug)]
struct StatusCodeRetries;

impl ClassifyRetry for StatusCodeRetries {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        match ctx.response().map(|r| r.status().as_u16()) {
            Some(429) => RetryAction::throttling_error(),
            Some(500 | 502 | 503 | 504) => RetryAction::transient_error(),
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "durable-yield HTTP status"
    }
}

/// The error code and message of an error body, when the client found
/// none (the body carries `Type`/`__type`/`code` and `message`/`Message`
/// but no `X-Amzn-ErrorType` header).
fn from_body(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(serde_json::Value::Object(fields)) = serde_json::from_slice(body) else {
        return (None, None);
    };
    let text = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| fields.get(*k).and_then(|v| v.as_str()))
            .map(|s| s.rsplit('#').next().unwrap_or(s).to_owned())
    };
    (
        text(&["__type", "Type", "code", "Code"]),
        text(&["message", "Message", "errorMessage"]),
    )
}

/// Classifies a failed call by what the SDK does next (PROTOCOL.md §7),
/// with its status, code and message in plain words.
pub(crate) fn classify<E>(error: SdkError<E, HttpResponse>) -> ServiceError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &error {
        SdkError::ServiceError(context) => {
            let status = context.raw().status().as_u16();
            let err = context.err();
            let (body_code, body_message) = context
                .raw()
                .body()
                .bytes()
                .map(from_body)
                .unwrap_or_default();
            let code = err.code().map(str::to_owned).or(body_code);
            let message = err
                .message()
                .map(str::to_owned)
                .or(body_message)
                .unwrap_or_else(|| "no message".to_owned());
            classify_status(Some(status), code.as_deref(), &message)
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            ServiceError::Transient(DisplayErrorContext(&error).to_string())
        }
        _ => ServiceError::Rejected(DisplayErrorContext(&error).to_string()),
    }
}

/// The classification behind [`classify`]: a stale token fails the
/// invocation; throttling and 5xx are transient; other 4xx reject.
pub(crate) fn classify_status(
    status: Option<u16>,
    code: Option<&str>,
    message: &str,
) -> ServiceError {
    let described = match (status, code) {
        (Some(status), Some(code)) => format!("HTTP {status} {code}: {message}"),
        (Some(status), None) => format!("HTTP {status}: {message}"),
        (None, Some(code)) => format!("{code}: {message}"),
        (None, None) => message.to_owned(),
    };
    // The API has no error code of its own for a stale token: like AWS's
    // SDKs, recognize a 400 InvalidParameterValueException (or an answer
    // without a code, as AWS's emulator may send) whose message starts
    // with the service's wording, and nothing else.
    let stale_token = matches!(status, Some(400) | None)
        && matches!(code, Some("InvalidParameterValueException") | None)
        && message.starts_with("Invalid checkpoint token");
    if stale_token {
        return ServiceError::InvalidToken(described);
    }
    // The most common first deployment error: say which permissions.
    let denied = code == Some("AccessDeniedException")
        || (status == Some(403) && !code.is_some_and(|c| c.starts_with("KMS")));
    let described = if denied {
        format!(
            "{described} (the function's execution role needs lambda:CheckpointDurableExecution \
             and lambda:GetDurableExecutionState on the function; AWS's managed policy \
             AWSLambdaBasicDurableExecutionRolePolicy grants both)"
        )
    } else {
        described
    };
    let throttled = matches!(code, Some("TooManyRequestsException" | "ServiceException"));
    match status {
        _ if throttled => ServiceError::Transient(described),
        Some(429) => ServiceError::Transient(described),
        Some(s) if s >= 500 => ServiceError::Transient(described),
        Some(s) if (400..500).contains(&s) => ServiceError::Rejected(described),
        _ if code.is_some_and(|c| c.starts_with("KMS")) => ServiceError::Rejected(described),
        _ => ServiceError::Transient(described),
    }
}

fn to_sdk_error(e: &ErrorObject) -> sdk::ErrorObject {
    sdk::ErrorObject::builder()
        .set_error_message(e.error_message.clone())
        .set_error_type(e.error_type.clone())
        .set_error_data(e.error_data.clone())
        .set_stack_trace(e.stack_trace.clone())
        .build()
}

fn from_sdk_error(e: &sdk::ErrorObject) -> ErrorObject {
    fields!(ErrorObject {
        error_message: e.error_message().map(str::to_owned),
        error_type: e.error_type().map(str::to_owned),
        error_data: e.error_data().map(str::to_owned),
        stack_trace: (!e.stack_trace().is_empty()).then(|| e.stack_trace().to_vec()),
    })
}

fn seconds(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Converts an update into the SDK's type.
pub(crate) fn to_sdk_update(u: &OperationUpdate) -> Result<sdk::OperationUpdate, ServiceError> {
    let mut b = sdk::OperationUpdate::builder()
        .id(u.id.as_str())
        .set_parent_id(u.parent_id.map(|p| p.as_str().to_owned()))
        .set_name(u.name.as_deref().map(str::to_owned))
        .r#type(sdk::OperationType::from(u.op_type.to_string().as_str()))
        .set_sub_type(u.sub_type.as_deref().map(str::to_owned))
        .action(sdk::OperationAction::from(u.action.to_string().as_str()))
        .set_payload(u.payload.as_ref().map(|p| p.as_str().to_owned()))
        .set_error(u.error.as_deref().map(to_sdk_error));
    if let Some(o) = &u.step_options {
        b = b.step_options(
            sdk::StepOptions::builder()
                .set_next_attempt_delay_seconds(o.next_attempt_delay_seconds.map(seconds))
                .build(),
        );
    }
    if let Some(o) = &u.wait_options {
        b = b.wait_options(
            sdk::WaitOptions::builder()
                .wait_seconds(seconds(o.wait_seconds))
                .build(),
        );
    }
    if let Some(o) = &u.callback_options {
        b = b.callback_options(
            sdk::CallbackOptions::builder()
                .timeout_seconds(seconds(o.timeout_seconds))
                .heartbeat_timeout_seconds(seconds(o.heartbeat_timeout_seconds))
                .build(),
        );
    }
    if let Some(o) = &u.chained_invoke_options {
        let options = sdk::ChainedInvokeOptions::builder()
            .function_name(&o.function_name)
            .set_tenant_id(o.tenant_id.clone())
            .set_x_amzn_trace_id(o.x_amzn_trace_id.clone())
            .build()
            .map_err(|e| ServiceError::Rejected(e.to_string()))?;
        b = b.chained_invoke_options(options);
    }
    if let Some(o) = &u.context_options {
        b = b.context_options(
            sdk::ContextOptions::builder()
                .set_replay_children(o.replay_children)
                .build(),
        );
    }
    b.build().map_err(|e| ServiceError::Rejected(e.to_string()))
}

/// Epoch milliseconds, rounded to the nearest: API timestamps are
/// fractional seconds, so `1795755619.735` arrives as `…619.734999…`.
fn millis(t: &DateTime) -> Millis {
    let nanos = Millis::from(t.subsec_nanos());
    t.secs()
        .saturating_mul(1000)
        .saturating_add((nanos + 500_000) / 1_000_000)
}

/// A malformed operation in an answer: the answer is invalid (the
/// invocation fails and the service invokes again), not a rejection of
/// what the SDK sent (which would fail the execution for good).
fn invalid(what: impl std::fmt::Display) -> ServiceError {
    ServiceError::InvalidResponse(format!("the service sent an invalid operation: {what}"))
}

/// Converts an SDK operation into the wire model.
pub(crate) fn from_sdk_operation(op: &sdk::Operation) -> Result<Operation, ServiceError> {
    let id = OperationId::new(op.id()).map_err(invalid)?;
    // Types and statuses added to the service later are kept as unknown:
    // the interpreter fails the execution only if the workflow reaches one.
    let op_type = OperationType::from_wire(op.r#type().as_str());
    let status = OperationStatus::from_wire(op.status().as_str());
    let mut out = Operation::new(id, op_type, status);
    out.parent_id = op
        .parent_id()
        .map(OperationId::new)
        .transpose()
        .map_err(invalid)?;
    out.name = op.name().map(SharedStr::new);
    out.sub_type = op.sub_type().map(SharedStr::new);
    out.start_timestamp = Some(millis(op.start_timestamp()));
    out.end_timestamp = op.end_timestamp().map(millis);
    out.execution_details = op.execution_details().map(|d| {
        Arc::new(fields!(ExecutionDetails {
            input_payload: d.input_payload().map(Into::into),
        }))
    });
    out.context_details = op.context_details().map(|d| {
        Arc::new(fields!(ContextDetails {
            replay_children: d.replay_children(),
            result: d.result().map(Into::into),
            error: d.error().map(from_sdk_error),
        }))
    });
    out.step_details = op.step_details().map(|d| {
        Arc::new(fields!(StepDetails {
            attempt: u32::try_from(d.attempt()).ok(),
            next_attempt_timestamp: d.next_attempt_timestamp().map(millis),
            result: d.result().map(Into::into),
            error: d.error().map(from_sdk_error),
        }))
    });
    out.wait_details = op.wait_details().map(|d| {
        Arc::new(fields!(WaitDetails {
            scheduled_end_timestamp: d.scheduled_end_timestamp().map(millis),
        }))
    });
    out.callback_details = op.callback_details().map(|d| {
        Arc::new(fields!(CallbackDetails {
            callback_id: d.callback_id().map(str::to_owned),
            result: d.result().map(Into::into),
            error: d.error().map(from_sdk_error),
        }))
    });
    out.chained_invoke_details = op.chained_invoke_details().map(|d| {
        Arc::new(fields!(ChainedInvokeDetails {
            result: d.result().map(Into::into),
            error: d.error().map(from_sdk_error),
        }))
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{OperationAction, Payload, WaitOptions};

    #[test]
    fn errors_are_classified_like_the_other_sdks() {
        let c = |status, code, message| classify_status(status, code, message);
        assert!(matches!(
            c(Some(400), None, "Invalid checkpoint token"),
            ServiceError::InvalidToken(_)
        ));
        assert!(matches!(
            c(Some(429), None, "slow down"),
            ServiceError::Transient(_)
        ));
        assert!(matches!(
            c(Some(503), None, "oops"),
            ServiceError::Transient(_)
        ));
        assert!(matches!(
            c(None, Some("TooManyRequestsException"), "x"),
            ServiceError::Transient(_)
        ));
        match c(Some(400), Some("InvalidParameterValueException"), "too big") {
            ServiceError::Rejected(m) => {
                assert_eq!(m, "HTTP 400 InvalidParameterValueException: too big")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            c(Some(404), None, "gone"),
            ServiceError::Rejected(_)
        ));
        // A role without the durable permissions: the message says which.
        for (status, code) in [
            (Some(403), Some("AccessDeniedException")),
            (Some(403), None),
        ] {
            match c(
                status,
                code,
                "not authorized to perform: lambda:CheckpointDurableExecution",
            ) {
                ServiceError::Rejected(m) => {
                    assert!(m.contains("lambda:GetDurableExecutionState"), "{m}");
                    assert!(
                        m.contains("AWSLambdaBasicDurableExecutionRolePolicy"),
                        "{m}"
                    );
                }
                other => panic!("{other:?}"),
            }
        }
        match c(Some(400), Some("KMSAccessDeniedException"), "no") {
            ServiceError::Rejected(m) => assert!(!m.contains("managed policy"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            c(None, Some("KMSAccessDeniedException"), "no"),
            ServiceError::Rejected(_)
        ));
        // A stale token: the service's 400 and wording, and only that.
        for (status, code) in [
            (Some(400), Some("InvalidParameterValueException")),
            (Some(400), None),
            (None, None),
        ] {
            assert!(matches!(
                c(status, code, "Invalid checkpoint token"),
                ServiceError::InvalidToken(_)
            ));
        }
        assert!(matches!(
            c(
                Some(400),
                Some("ValidationException"),
                "Invalid checkpoint token"
            ),
            ServiceError::Rejected(_)
        ));
        assert!(matches!(
            c(Some(500), None, "Invalid checkpoint token"),
            ServiceError::Transient(_)
        ));
        assert!(matches!(
            c(
                Some(400),
                None,
                "the payload mentions Invalid checkpoint token"
            ),
            ServiceError::Rejected(_)
        ));
    }

    #[test]
    fn a_malformed_operation_in_an_answer_is_an_invalid_response() {
        let op = sdk::Operation::builder()
            .id("")
            .r#type(sdk::OperationType::Step)
            .status(sdk::OperationStatus::Succeeded)
            .start_timestamp(DateTime::from_secs(1))
            .build()
            .unwrap();
        match from_sdk_operation(&op) {
            Err(ServiceError::InvalidResponse(m)) => {
                assert!(m.contains("invalid operation"), "{m}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn updates_convert_to_the_sdk_types() {
        let mut u = OperationUpdate::new(
            OperationId::new("abc").unwrap(),
            OperationType::Wait,
            OperationAction::Start,
        );
        u.name = Some("nap".into());
        u.sub_type = Some("Wait".into());
        u.wait_options = Some(WaitOptions::new(60));
        u.payload = Some(Payload::from("p"));
        u.error = Some(Box::new(ErrorObject::new("T", "m")));
        let s = to_sdk_update(&u).unwrap();
        assert_eq!(s.id(), "abc");
        assert_eq!(s.r#type().as_str(), "WAIT");
        assert_eq!(s.action().as_str(), "START");
        assert_eq!(s.name(), Some("nap"));
        assert_eq!(s.sub_type(), Some("Wait"));
        assert_eq!(s.payload(), Some("p"));
        assert_eq!(s.error().and_then(|e| e.error_type()), Some("T"));
        assert_eq!(s.wait_options().and_then(|w| w.wait_seconds()), Some(60));
    }

    #[test]
    fn operations_convert_from_the_sdk_types() {
        let op = sdk::Operation::builder()
            .id("abc")
            .r#type(sdk::OperationType::Step)
            .status(sdk::OperationStatus::Succeeded)
            .name("charge")
            .sub_type("Step")
            .start_timestamp(DateTime::from_millis(1_795_755_619_735))
            .step_details(
                sdk::StepDetails::builder()
                    .attempt(1)
                    .result("{\"ok\":true}")
                    .build(),
            )
            .build()
            .unwrap();
        let ours = from_sdk_operation(&op).unwrap();
        assert_eq!(ours.id.as_str(), "abc");
        assert_eq!(ours.op_type, OperationType::Step);
        assert_eq!(ours.status, OperationStatus::Succeeded);
        assert_eq!(ours.start_timestamp, Some(1_795_755_619_735));
        let d = ours.step_details.unwrap();
        assert_eq!(d.attempt, Some(1));
        assert_eq!(d.result.as_ref().unwrap().as_str(), "{\"ok\":true}");

        let unknown = sdk::Operation::builder()
            .id("x")
            .r#type(sdk::OperationType::from("TELEPORT"))
            .status(sdk::OperationStatus::Started)
            .start_timestamp(DateTime::from_millis(0))
            .build()
            .unwrap();
        let unknown = from_sdk_operation(&unknown).unwrap();
        assert_eq!(unknown.op_type.to_string(), "TELEPORT");
        assert!(!unknown.op_type.is_known());
        assert_eq!(
            from_body(br#"{"Type":"InvalidParameterValueException","message":"bad"}"#),
            (
                Some("InvalidParameterValueException".into()),
                Some("bad".into())
            )
        );
        assert_eq!(
            from_body(br#"{"__type":"com.amazon#ThrottlingException","Message":"slow"}"#),
            (Some("ThrottlingException".into()), Some("slow".into()))
        );
        assert_eq!(from_body(b"not json"), (None, None));
    }
}

//! Ending the invocation: what is held back goes out, then the response
//! (`SUCCEEDED` with the result, or checkpointed when too large for the
//! response; `FAILED`; `PENDING`).

use super::*;

/// Ends the invocation: sends what is held back, then builds the response.
pub(super) async fn finish<S: DurableService + ?Sized>(
    checkpointer: &mut Checkpointer<'_, S>,
    execution: Option<OperationId>,
    outcome: Outcome,
) -> Result<InvocationOutput, InvocationError> {
    // Everything held back goes out before the invocation ends.
    match checkpointer.flush().await {
        Ok(Flushed::Sent(_)) => {}
        Ok(Flushed::Revoked) => return Ok(pending()),
        Err(e) => return fail_or_retry(e),
    }
    Ok(match outcome {
        Outcome::Succeeded(payload) if payload.as_str().chars().count() > MAX_EXECUTION_RESULT => {
            failed(ErrorObject::new(
                "ResultTooLarge",
                format!(
                    "the workflow result is {} bytes, over the service's limit of \
                     {MAX_EXECUTION_RESULT} characters",
                    payload.len()
                ),
            ))
        }
        // Measured as sent: a JSON string, escaping included.
        Outcome::Succeeded(payload) if json_string_len(payload.as_str()) > MAX_RESPONSE_RESULT => {
            match checkpointer.complete_execution(execution, payload).await {
                Ok(output) => output,
                Err(e) => return fail_or_retry(e),
            }
        }
        Outcome::Succeeded(payload) => succeeded(payload),
        Outcome::Failed(error) => failed(error),
        Outcome::Pending { .. } => pending(),
        // Nothing recorded as failed: the service invokes the function
        // again (a codec's storage was unreachable).
        Outcome::Retry(error) => {
            let message = error
                .error_message
                .as_deref()
                .unwrap_or("a transient failure");
            tracing::warn!(%message, "failing the invocation; the service will invoke it again");
            return Err(InvocationError(ServiceError::Transient(message.to_owned())));
        }
        _ => failed(ErrorObject::new(
            "UnknownOutcome",
            "the interpreter ended the run with an outcome this driver does not know: \
             use the durable-yield-interpreter version durable-yield was built with",
        )),
    })
}

pub(super) fn succeeded(result: Payload) -> InvocationOutput {
    InvocationOutput::succeeded(Some(result))
}

pub(super) fn failed(error: ErrorObject) -> InvocationOutput {
    InvocationOutput::failed(error.truncated())
}

pub(super) fn pending() -> InvocationOutput {
    InvocationOutput::pending()
}

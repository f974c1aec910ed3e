//! `GetDurableExecutionHistory`: an execution's history from AWS (or the
//! emulator), in the shape [`crate::history`] reads.

use aws_sdk_lambda::types as sdk;
use aws_smithy_types::DateTime;
use serde_json::{Map, Value, json};

use super::aws::classify;
use crate::engine::ServiceError;
use crate::history::{ExecutionHistory, HistoryEvent};

/// The most history pages read before giving up (a service that keeps
/// answering with a next marker).
const MAX_PAGES: usize = 10_000;

/// Reads the whole history of the execution `arn` (every page, with
/// execution data: results, errors and inputs) through `client`, as
/// `aws lambda get-durable-execution-history` does. The client is
/// configured as usual (`aws-config`: credentials, region, and
/// `AWS_ENDPOINT_URL_LAMBDA` for an emulator).
pub async fn fetch_history(
    client: &aws_sdk_lambda::Client,
    arn: &str,
) -> Result<ExecutionHistory, ServiceError> {
    let mut events = Vec::new();
    let mut marker: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let page = client
            .get_durable_execution_history()
            .durable_execution_arn(arn)
            .include_execution_data(true)
            .set_marker(marker.take())
            .send()
            .await
            .map_err(classify)?;
        events.extend(page.events().iter().map(from_sdk_event));
        match page.next_marker().filter(|m| !m.is_empty()) {
            Some(next) => marker = Some(next.to_owned()),
            None => {
                return Ok(ExecutionHistory {
                    durable_execution_arn: Some(arn.to_owned()),
                    events,
                });
            }
        }
    }
    Err(ServiceError::InvalidResponse(format!(
        "the history of {arn} did not end after {MAX_PAGES} pages"
    )))
}

fn seconds(t: &DateTime) -> f64 {
    t.secs() as f64 + f64::from(t.subsec_nanos()) / 1e9
}

fn result(r: Option<&sdk::EventResult>) -> Value {
    json!({"Result": {
        "Payload": r.and_then(|r| r.payload()),
        "Truncated": r.and_then(|r| r.truncated()).unwrap_or(false),
    }})
}

fn error(e: Option<&sdk::EventError>) -> Value {
    let payload = e.and_then(|e| e.payload()).map(|p| {
        json!({
            "ErrorType": p.error_type(),
            "ErrorMessage": p.error_message(),
            "ErrorData": p.error_data(),
        })
    });
    json!({"Error": {
        "Payload": payload,
        "Truncated": e.and_then(|e| e.truncated()).unwrap_or(false),
    }})
}

fn retry(details: &mut Value, r: Option<&sdk::RetryDetails>) {
    if let Some(r) = r {
        details["RetryDetails"] = json!({
            "CurrentAttempt": r.current_attempt(),
            "NextAttemptDelaySeconds": r.next_attempt_delay_seconds(),
        });
    }
}

/// The details the timeline tools read: results, errors, retries, wait
/// and invocation times.
fn details(e: &sdk::Event) -> Option<Value> {
    Some(if let Some(d) = e.execution_started_details() {
        json!({"Input": {"Payload": d.input().and_then(|i| i.payload())}})
    } else if let Some(d) = e.execution_succeeded_details() {
        result(d.result())
    } else if let Some(d) = e.execution_failed_details() {
        error(d.error())
    } else if let Some(d) = e.execution_timed_out_details() {
        error(d.error())
    } else if let Some(d) = e.execution_stopped_details() {
        error(d.error())
    } else if let Some(d) = e.context_succeeded_details() {
        result(d.result())
    } else if let Some(d) = e.context_failed_details() {
        error(d.error())
    } else if let Some(d) = e.step_succeeded_details() {
        let mut v = result(d.result());
        retry(&mut v, d.retry_details());
        v
    } else if let Some(d) = e.step_failed_details() {
        let mut v = error(d.error());
        retry(&mut v, d.retry_details());
        v
    } else if let Some(d) = e.wait_started_details() {
        json!({
            "Duration": d.duration(),
            "ScheduledEndTimestamp": seconds(d.scheduled_end_timestamp()),
        })
    } else if let Some(d) = e.wait_succeeded_details() {
        json!({"Duration": d.duration()})
    } else if let Some(d) = e.wait_cancelled_details() {
        error(d.error())
    } else if let Some(d) = e.callback_started_details() {
        json!({"CallbackId": d.callback_id()})
    } else if let Some(d) = e.callback_succeeded_details() {
        result(d.result())
    } else if let Some(d) = e.callback_failed_details() {
        error(d.error())
    } else if let Some(d) = e.callback_timed_out_details() {
        error(d.error())
    } else if let Some(d) = e.chained_invoke_started_details() {
        json!({"FunctionName": d.function_name()})
    } else if let Some(d) = e.chained_invoke_succeeded_details() {
        result(d.result())
    } else if let Some(d) = e.chained_invoke_failed_details() {
        error(d.error())
    } else if let Some(d) = e.chained_invoke_timed_out_details() {
        error(d.error())
    } else if let Some(d) = e.chained_invoke_stopped_details() {
        error(d.error())
    } else if let Some(d) = e.invocation_completed_details() {
        let mut v = json!({
            "StartTimestamp": seconds(d.start_timestamp()),
            "EndTimestamp": seconds(d.end_timestamp()),
            "RequestId": d.request_id(),
        });
        if d.error().is_some() {
            v["Error"] = error(d.error())["Error"].take();
        }
        v
    } else {
        return None;
    })
}

/// Converts an SDK event into the service's JSON shape.
pub(crate) fn from_sdk_event(e: &sdk::Event) -> HistoryEvent {
    let event_type = e
        .event_type()
        .map(|t| t.as_str().to_owned())
        .unwrap_or_default();
    let mut map = Map::new();
    if let Some(d) = details(e) {
        map.insert(format!("{event_type}Details"), d);
    }
    HistoryEvent {
        event_id: u64::try_from(e.event_id()).unwrap_or(0),
        event_timestamp: e.event_timestamp().map(seconds).unwrap_or(0.0),
        id: e.id().map(str::to_owned),
        name: e.name().map(str::to_owned),
        parent_id: e.parent_id().map(str::to_owned),
        sub_type: e.sub_type().map(str::to_owned),
        event_type,
        details: map,
    }
}

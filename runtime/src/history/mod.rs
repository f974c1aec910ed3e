//! Execution histories, as `GetDurableExecutionHistory` reports them, and
//! pictures of them: a table for the terminal and a self-contained HTML
//! page with a Gantt view of the operations across invocations.
//!
//! An [`ExecutionHistory`] comes from AWS or the emulator
//! ([`lambda::fetch_history`](crate::lambda::fetch_history)), from a JSON
//! file in the service's shape (`{"Events": [...]}`, which the AWS CLI's
//! `aws lambda get-durable-execution-history` prints), or from a local run
//! ([`LocalRun::history`](crate::LocalRun::history)). [`Gantt::new`] reads
//! it into operations (nested under their contexts), attempts and
//! invocations; [`Gantt::to_text`] and [`Gantt::to_html`] draw it. The
//! `durable-yield` binary does all of it from the command line:
//!
//! ```text
//! cargo run -p durable-yield --bin durable-yield -- timeline --file history.json --html timeline.html
//! cargo run -p durable-yield --bin durable-yield -- timeline --arn <execution ARN> --html timeline.html
//! ```

mod gantt;
mod html;
mod text;

pub use gantt::{Attempt, Gantt, Invocation, Row};
use text::clock;
pub use text::human_duration;
pub(crate) use text::shorten;

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One history event, in the service's JSON shape: `EventType`, `EventId`,
/// `EventTimestamp` (epoch seconds), the operation's `Id`, `Name`,
/// `ParentId`, `SubType`, and its `<EventType>Details` object as it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct HistoryEvent {
    /// `StepStarted`, `WaitSucceeded`, `InvocationCompleted`, ...
    pub event_type: String,
    /// Its position, from 1.
    #[serde(default)]
    pub event_id: u64,
    /// When it happened, in epoch seconds.
    #[serde(default)]
    pub event_timestamp: f64,
    /// The operation's id (none for invocation events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The operation's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The context the operation belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// The operation's subtype.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_type: Option<String>,
    /// The details objects (`StepFailedDetails`, ...), as they are.
    #[serde(flatten)]
    pub details: Map<String, Value>,
}

impl HistoryEvent {
    /// The details object of this event (`<EventType>Details`).
    pub fn detail(&self) -> Option<&Map<String, Value>> {
        self.details
            .get(&format!("{}Details", self.event_type))
            .and_then(Value::as_object)
    }

    /// The error message this event carries, if any (`Error.Payload`).
    pub fn error(&self) -> Option<String> {
        let error = self.detail()?.get("Error")?;
        let payload = error.get("Payload").unwrap_or(error);
        let kind = payload.get("ErrorType").and_then(Value::as_str);
        let message = payload.get("ErrorMessage").and_then(Value::as_str);
        match (kind, message) {
            (Some(k), Some(m)) => Some(format!("{k}: {m}")),
            (Some(s), None) | (None, Some(s)) => Some(s.to_owned()),
            (None, None) => None,
        }
    }

    /// The result payload this event carries, if any (`Result.Payload`).
    pub fn result(&self) -> Option<&str> {
        self.detail()?.get("Result")?.get("Payload")?.as_str()
    }

    fn detail_f64(&self, key: &str) -> Option<f64> {
        self.detail()?.get(key)?.as_f64()
    }

    /// `RetryDetails`: the attempt count and the delay before the next.
    fn retry(&self) -> Option<(u64, Option<f64>)> {
        let retry = self.detail()?.get("RetryDetails")?;
        let attempt = retry.get("CurrentAttempt")?.as_u64()?;
        let delay = retry.get("NextAttemptDelaySeconds").and_then(Value::as_f64);
        Some((attempt, delay))
    }
}

/// An execution's history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct ExecutionHistory {
    /// The execution's ARN, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub durable_execution_arn: Option<String>,
    /// The events, in order.
    pub events: Vec<HistoryEvent>,
}

/// A history that could not be read.
#[derive(Debug, thiserror::Error)]
#[error(
    "not an execution history (expected {{\"Events\": [...]}} or [...] in the shape GetDurableExecutionHistory returns): {0}"
)]
pub struct HistoryError(String);

impl ExecutionHistory {
    /// Reads `{"Events": [...]}` (GetDurableExecutionHistory's response,
    /// or what [`ExecutionHistory::to_json`] writes) or a bare array of
    /// events.
    pub fn from_json(text: &str) -> Result<Self, HistoryError> {
        let value: Value = serde_json::from_str(text).map_err(|e| HistoryError(e.to_string()))?;
        let history = if value.is_array() {
            ExecutionHistory {
                durable_execution_arn: None,
                events: serde_json::from_value(value).map_err(|e| HistoryError(e.to_string()))?,
            }
        } else {
            serde_json::from_value(value).map_err(|e| HistoryError(e.to_string()))?
        };
        Ok(history)
    }

    /// The history as pretty JSON, in the service's shape.
    pub fn to_json(&self) -> String {
        // Plain data: serializing it cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// The kinds of an event's type: `StepFailed` is `("Step", "Failed")`.
fn split_event_type(event_type: &str) -> (&str, &str) {
    const ENDINGS: [&str; 8] = [
        "Started",
        "Succeeded",
        "Failed",
        "TimedOut",
        "Stopped",
        "Cancelled",
        "Completed",
        "Scheduled",
    ];
    for ending in ENDINGS {
        if let Some(kind) = event_type.strip_suffix(ending) {
            return (kind, ending);
        }
    }
    (event_type, "")
}

/// The status an event's ending leaves an operation in.
fn status_of(ending: &str) -> &'static str {
    match ending {
        "Started" => "STARTED",
        "Succeeded" => "SUCCEEDED",
        "Failed" => "FAILED",
        "TimedOut" => "TIMED_OUT",
        "Stopped" => "STOPPED",
        "Cancelled" => "CANCELLED",
        _ => "UNKNOWN",
    }
}

/// The operation type for an event's kind.
fn op_type_of(kind: &str) -> &'static str {
    match kind {
        "Step" => "STEP",
        "Wait" => "WAIT",
        "Context" => "CONTEXT",
        "Callback" => "CALLBACK",
        "ChainedInvoke" => "CHAINED_INVOKE",
        "Execution" => "EXECUTION",
        _ => "UNKNOWN",
    }
}

//! The wire model of durable executions: operations, updates, errors and
//! the invocation envelope, with serde names matching the service's JSON.
//!
//! Timestamps here are epoch **milliseconds**, as in the invocation
//! envelope (PROTOCOL.md §3). The HTTP API uses epoch seconds; converting
//! from an API client's types is the runtime's job.

pub use crate::text::SharedStr;
use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// Epoch milliseconds.
pub type Millis = i64;

mod error_object;
mod operation_id;
mod payload;
mod wire;

pub use error_object::ErrorObject;
pub use operation_id::{IdHasher, IdMap, InvalidOperationId, OperationId};
pub use payload::Payload;
pub use wire::{OperationAction, OperationStatus, OperationType, UnknownWireName, WireName};

/// Details of the EXECUTION operation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct ExecutionDetails {
    /// The execution's input, JSON text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_payload: Option<Payload>,
}

impl ExecutionDetails {
    /// The details of an execution started with `input_payload`.
    pub fn new(input_payload: Option<Payload>) -> Self {
        ExecutionDetails { input_payload }
    }
}

/// Details of a CONTEXT operation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct ContextDetails {
    /// Whether the children are replayed (and so sent to the SDK).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_children: Option<bool>,
    /// The context's result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Payload>,
    /// The context's error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorObject>,
}

/// Details of a STEP operation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct StepDetails {
    /// Attempts made so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// When the next attempt is due (epoch ms), while PENDING.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "millis_opt"
    )]
    pub next_attempt_timestamp: Option<Millis>,
    /// The step's result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Payload>,
    /// The step's (last) error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorObject>,
}

/// Details of a WAIT operation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct WaitDetails {
    /// When the wait ends (epoch ms).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "millis_opt"
    )]
    pub scheduled_end_timestamp: Option<Millis>,
}

impl WaitDetails {
    /// The details of a wait that ends at `scheduled_end_timestamp` (epoch ms).
    pub fn new(scheduled_end_timestamp: Millis) -> Self {
        WaitDetails {
            scheduled_end_timestamp: Some(scheduled_end_timestamp),
        }
    }
}

/// Details of a CALLBACK operation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct CallbackDetails {
    /// The id external systems complete the callback with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_id: Option<String>,
    /// The callback's result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Payload>,
    /// The callback's error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorObject>,
}

/// Details of a CHAINED_INVOKE operation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct ChainedInvokeDetails {
    /// The invoked function's result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Payload>,
    /// The invoked function's error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorObject>,
}

/// One checkpointed operation, as the service stores it.
///
/// Cheap to clone: histories, pages and responses copy operations often,
/// so the name and subtype are [`SharedStr`]s and the details are shared
/// (`Arc`); a clone allocates nothing. To change a clone's details, use
/// [`Arc::make_mut`], which copies them first if they are shared.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct Operation {
    /// The operation's id.
    pub id: OperationId,
    /// The id of the CONTEXT this operation belongs to; none at the root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<OperationId>,
    /// The user-given name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<SharedStr>,
    /// The operation's type.
    #[serde(rename = "Type")]
    pub op_type: OperationType,
    /// The SDK-specific subtype, e.g. `Step` or `Wait`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_type: Option<SharedStr>,
    /// When the operation started (epoch ms).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "millis_opt"
    )]
    pub start_timestamp: Option<Millis>,
    /// When the operation ended (epoch ms).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "millis_opt"
    )]
    pub end_timestamp: Option<Millis>,
    /// The operation's status.
    pub status: OperationStatus,
    /// Set on EXECUTION operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_details: Option<Arc<ExecutionDetails>>,
    /// Set on CONTEXT operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_details: Option<Arc<ContextDetails>>,
    /// Set on STEP operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_details: Option<Arc<StepDetails>>,
    /// Set on WAIT operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_details: Option<Arc<WaitDetails>>,
    /// Set on CALLBACK operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_details: Option<Arc<CallbackDetails>>,
    /// Set on CHAINED_INVOKE operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chained_invoke_details: Option<Arc<ChainedInvokeDetails>>,
}

/// Cloned field by field and always inlined: histories and pages copy
/// operations in loops, where a call per operation (and the copy of its
/// return value) costs more than the clone itself.
impl Clone for Operation {
    #[inline(always)]
    fn clone(&self) -> Self {
        Operation {
            id: self.id,
            parent_id: self.parent_id,
            name: self.name.clone(),
            op_type: self.op_type,
            sub_type: self.sub_type.clone(),
            start_timestamp: self.start_timestamp,
            end_timestamp: self.end_timestamp,
            status: self.status,
            execution_details: self.execution_details.clone(),
            context_details: self.context_details.clone(),
            step_details: self.step_details.clone(),
            wait_details: self.wait_details.clone(),
            callback_details: self.callback_details.clone(),
            chained_invoke_details: self.chained_invoke_details.clone(),
        }
    }
}

impl Operation {
    /// A new operation with no details.
    pub fn new(id: OperationId, op_type: OperationType, status: OperationStatus) -> Self {
        Operation {
            id,
            parent_id: None,
            name: None,
            op_type,
            sub_type: None,
            start_timestamp: None,
            end_timestamp: None,
            status,
            execution_details: None,
            context_details: None,
            step_details: None,
            wait_details: None,
            callback_details: None,
            chained_invoke_details: None,
        }
    }
}

/// Options of a STEP update.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct StepOptions {
    /// Delay before the next attempt, with RETRY.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_delay_seconds: Option<u32>,
}

impl StepOptions {
    /// Try again after `seconds` (with RETRY).
    pub fn retry_after(seconds: u32) -> Self {
        StepOptions {
            next_attempt_delay_seconds: Some(seconds),
        }
    }
}

/// Options of a WAIT START.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct WaitOptions {
    /// How long to wait, 1 to 31,622,400 seconds.
    pub wait_seconds: u32,
}

impl WaitOptions {
    /// Wait `wait_seconds` seconds.
    pub fn new(wait_seconds: u32) -> Self {
        WaitOptions { wait_seconds }
    }
}

/// Options of a CALLBACK START.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct CallbackOptions {
    /// Timeout in seconds (0 = none).
    #[serde(default)]
    pub timeout_seconds: u32,
    /// Heartbeat timeout in seconds (0 = none).
    #[serde(default)]
    pub heartbeat_timeout_seconds: u32,
}

impl CallbackOptions {
    /// A callback that times out after `timeout_seconds` and without a
    /// heartbeat after `heartbeat_timeout_seconds` (0: never).
    pub fn new(timeout_seconds: u32, heartbeat_timeout_seconds: u32) -> Self {
        CallbackOptions {
            timeout_seconds,
            heartbeat_timeout_seconds,
        }
    }
}

/// Options of a CHAINED_INVOKE START.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct ChainedInvokeOptions {
    /// The function to invoke.
    pub function_name: String,
    /// The tenant to invoke it for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// The caller's X-Ray trace header, so that the target execution
    /// joins the caller's trace (set by a plugin, e.g. OpenTelemetry's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x_amzn_trace_id: Option<String>,
}

impl ChainedInvokeOptions {
    /// Invoke `function_name`.
    pub fn new(function_name: impl Into<String>) -> Self {
        ChainedInvokeOptions {
            function_name: function_name.into(),
            ..Default::default()
        }
    }
}

/// Options of a CONTEXT SUCCEED/FAIL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct ContextOptions {
    /// Whether the service must send the children on replay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_children: Option<bool>,
}

impl ContextOptions {
    /// Whether the service must send the children on replay.
    pub fn replay_children(replay_children: bool) -> Self {
        ContextOptions {
            replay_children: Some(replay_children),
        }
    }
}

/// One change to an operation, sent with `CheckpointDurableExecution`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct OperationUpdate {
    /// The operation's id.
    pub id: OperationId,
    /// The owning CONTEXT's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<OperationId>,
    /// The user-given name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<SharedStr>,
    /// The operation's type.
    #[serde(rename = "Type")]
    pub op_type: OperationType,
    /// The SDK-specific subtype.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_type: Option<SharedStr>,
    /// What to do.
    pub action: OperationAction,
    /// The result, with SUCCEED (and RETRY of a condition poll).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Payload>,
    /// The error, with FAIL or RETRY (boxed: most updates carry none, and
    /// updates are moved often).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Box<ErrorObject>>,
    /// Step options (RETRY).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_options: Option<StepOptions>,
    /// Wait options (START).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_options: Option<WaitOptions>,
    /// Callback options (START).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_options: Option<CallbackOptions>,
    /// Chained invoke options (START; boxed like the error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chained_invoke_options: Option<Box<ChainedInvokeOptions>>,
    /// Context options (SUCCEED/FAIL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_options: Option<ContextOptions>,
}

impl OperationUpdate {
    /// An update with only the required fields set.
    pub fn new(id: OperationId, op_type: OperationType, action: OperationAction) -> Self {
        OperationUpdate {
            id,
            parent_id: None,
            name: None,
            op_type,
            sub_type: None,
            action,
            payload: None,
            error: None,
            step_options: None,
            wait_options: None,
            callback_options: None,
            chained_invoke_options: None,
            context_options: None,
        }
    }

    /// An upper bound of the size of the update's JSON, for the request
    /// size limit: every string counted with its JSON escaping, plus room
    /// for the field names and the fixed-size fields.
    pub fn approx_size(&self) -> usize {
        // Short strings (names, subtypes) are bounded without scanning
        // them: at most six bytes a character once escaped.
        let text = |s: &str| {
            if s.len() <= 32 {
                6 * s.len() + 18
            } else {
                json_string_len(s) + 16
            }
        };
        // Ids are `[A-Za-z0-9_-]`: nothing to escape.
        let id = |id: &OperationId| id.len() + 18;
        let err = self.error.as_ref().map_or(0, |e| {
            64 + e.error_message.as_deref().map_or(0, text)
                + e.error_type.as_deref().map_or(0, text)
                + e.error_data.as_deref().map_or(0, text)
                + e.stack_trace
                    .as_ref()
                    .map_or(0, |s| s.iter().map(|l| text(l)).sum())
        });
        256 + id(&self.id)
            + self.parent_id.as_ref().map_or(0, id)
            + self.name.as_deref().map_or(0, text)
            + self.sub_type.as_deref().map_or(0, text)
            + self.payload.as_ref().map_or(0, |p| text(p.as_str()))
            + self.chained_invoke_options.as_ref().map_or(0, |o| {
                text(&o.function_name) + o.tenant_id.as_deref().map_or(0, text)
            })
            + err
    }
}

/// The length of `s` as a JSON string, quotes included: `"` and `\` take
/// two bytes, other control characters up to six (`\u00XX`).
pub fn json_string_len(s: &str) -> usize {
    // Branch-free per byte, summed in chunks small enough for a `u16`
    // count, so that the compiler vectorizes it: payloads (a map's result)
    // run to hundreds of kilobytes and are measured with every update.
    let extra = |b: u8| u16::from(b == b'"' || b == b'\\') + 5 * u16::from(b < 0x20);
    let mut total = 0usize;
    for chunk in s.as_bytes().chunks(4096) {
        total += chunk
            .iter()
            .map(|&b| extra(b))
            .fold(0u16, u16::wrapping_add) as usize;
    }
    2 + s.len() + total
}

/// The operations part of an invocation or a state page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct ExecutionState {
    /// The operations.
    #[serde(default)]
    pub operations: Vec<Operation>,
    /// Set (non-empty) when more operations must be fetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

impl ExecutionState {
    /// A page of `operations`; `next_marker` is set when more follow.
    pub fn new(operations: Vec<Operation>, next_marker: Option<String>) -> Self {
        ExecutionState {
            operations,
            next_marker,
        }
    }
}

/// The event a durable function is invoked with (PROTOCOL.md §3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct InvocationInput {
    /// The execution's ARN.
    pub durable_execution_arn: String,
    /// The token for the first checkpoint of this invocation.
    pub checkpoint_token: String,
    /// The operations (first page).
    #[serde(default)]
    pub initial_execution_state: ExecutionState,
    /// Operations changed since the last invocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_operation_ids: Option<Vec<String>>,
}

impl InvocationInput {
    /// The event of an invocation of the execution `durable_execution_arn`,
    /// with its first checkpoint token and first page of operations.
    pub fn new(
        durable_execution_arn: impl Into<String>,
        checkpoint_token: impl Into<String>,
        initial_execution_state: ExecutionState,
    ) -> Self {
        InvocationInput {
            durable_execution_arn: durable_execution_arn.into(),
            checkpoint_token: checkpoint_token.into(),
            initial_execution_state,
            updated_operation_ids: None,
        }
    }
}

/// How an invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum InvocationStatus {
    /// The execution finished successfully.
    Succeeded,
    /// The execution failed.
    Failed,
    /// The execution is waiting for something; invoke again later.
    Pending,
}

impl fmt::Display for InvocationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InvocationStatus::Succeeded => "SUCCEEDED",
            InvocationStatus::Failed => "FAILED",
            InvocationStatus::Pending => "PENDING",
        })
    }
}

/// What a durable function returns to the service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct InvocationOutput {
    /// The status.
    pub status: InvocationStatus,
    /// The result, with SUCCEEDED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Payload>,
    /// The error, with FAILED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorObject>,
}

impl InvocationOutput {
    /// The execution succeeded with `result` (`None`: the result was
    /// checkpointed instead, or there is none).
    pub fn succeeded(result: Option<Payload>) -> Self {
        InvocationOutput {
            status: InvocationStatus::Succeeded,
            result,
            error: None,
        }
    }
    /// The execution failed with `error`.
    pub fn failed(error: ErrorObject) -> Self {
        InvocationOutput {
            status: InvocationStatus::Failed,
            result: None,
            error: Some(error),
        }
    }
    /// The execution waits: invoke the function again later.
    pub fn pending() -> Self {
        InvocationOutput {
            status: InvocationStatus::Pending,
            result: None,
            error: None,
        }
    }
}

/// Accepts integer or fractional epoch milliseconds (or null).
fn millis_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Millis>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Millis>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("epoch milliseconds")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_any(V)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            i64::try_from(v)
                .map(Some)
                .map_err(|_| E::custom("timestamp out of range"))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            if v.is_finite() && v.abs() < 9.0e15 {
                Ok(Some(v as i64))
            } else {
                Err(E::custom("timestamp out of range"))
            }
        }
    }
    d.deserialize_option(V)
}

#[cfg(test)]
mod tests;

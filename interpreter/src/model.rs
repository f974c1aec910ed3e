//! The wire model of durable executions: operations, updates, errors and
//! the invocation envelope, with serde names matching the service's JSON.
//!
//! Timestamps here are epoch **milliseconds**, as in the invocation
//! envelope (PROTOCOL.md §3). The HTTP API uses epoch seconds; converting
//! from an API client's types is the runtime's job.

use crate::limits::{MAX_ERROR_JSON, MAX_ERROR_TYPE, MAX_ID_LEN};
pub use crate::text::SharedStr;
use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Epoch milliseconds.
pub type Millis = i64;

/// An operation id: 1 to 64 bytes, stored inline so that computing and
/// looking up ids never allocates.
#[derive(Clone, Copy)]
pub struct OperationId {
    len: u8,
    bytes: [u8; MAX_ID_LEN],
}

/// An operation id that is empty or longer than [`MAX_ID_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid operation id {0:?}: it must be 1 to 64 bytes long")]
pub struct InvalidOperationId(pub String);

impl OperationId {
    /// Makes an id from a string of 1 to 64 bytes.
    pub fn new(id: &str) -> Result<Self, InvalidOperationId> {
        if id.is_empty() || id.len() > MAX_ID_LEN {
            return Err(InvalidOperationId(id.to_owned()));
        }
        let mut bytes = [0u8; MAX_ID_LEN];
        bytes[..id.len()].copy_from_slice(id.as_bytes());
        Ok(OperationId {
            len: id.len() as u8,
            bytes,
        })
    }

    /// Makes an id from exactly 64 ASCII bytes (a hash in hex).
    pub(crate) fn from_hex(bytes: [u8; MAX_ID_LEN]) -> Self {
        OperationId {
            len: MAX_ID_LEN as u8,
            bytes,
        }
    }

    /// The id's length in bytes (1 to 64).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// The id's bytes (ASCII for every id this SDK makes or the service
    /// sends), without the UTF-8 check of [`OperationId::as_str`].
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        // The bytes were copied from a `&str` (or are ASCII hex), so they
        // are valid UTF-8; the fallback is unreachable.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }
}

impl OperationId {
    fn word(&self, at: usize) -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&self.bytes[at..at + 8]);
        u64::from_le_bytes(w)
    }

    /// A cheap 64-bit fingerprint for hash tables. Ids are mostly BLAKE2b
    /// hashes in hex, so a few of their bytes are as good as all of them;
    /// unused bytes are zero, so equal ids have equal fingerprints.
    pub fn fingerprint(&self) -> u64 {
        let last = (self.len as usize).saturating_sub(8);
        let mixed = self.word(0) ^ self.word(last).rotate_left(29) ^ u64::from(self.len);
        mixed.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
}

impl PartialEq for OperationId {
    fn eq(&self, other: &Self) -> bool {
        // Word by word: inlined, instead of a call to memcmp.
        self.len == other.len && (0..MAX_ID_LEN / 8).all(|i| self.word(i * 8) == other.word(i * 8))
    }
}

impl Eq for OperationId {}

impl std::hash::Hash for OperationId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.fingerprint());
    }
}

/// A hasher for maps keyed by [`OperationId`]: an id's `Hash` writes one
/// 64-bit fingerprint, which this finishes with a cheap mix instead of
/// SipHash (ids come from BLAKE2b or from the service, not from an
/// attacker who could choose colliding ones).
#[derive(Debug, Clone, Copy, Default)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        let mut x = self.0;
        x ^= x >> 32;
        x = x.wrapping_mul(0xd6e8_feb8_6659_fd93);
        x ^ (x >> 29)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
}

/// A `HashMap` keyed by operation id, with [`IdHasher`].
pub type IdMap<V> =
    std::collections::HashMap<OperationId, V, std::hash::BuildHasherDefault<IdHasher>>;

impl fmt::Debug for OperationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for OperationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for OperationId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for OperationId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = OperationId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an operation id of 1 to 64 bytes")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OperationId, E> {
                OperationId::new(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// A checkpointed payload: an opaque string to the service, cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Payload(Arc<str>);

impl Payload {
    /// A payload holding `text`.
    pub fn new(text: impl Into<Arc<str>>) -> Self {
        Payload(text.into())
    }
    /// The payload text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The payload's length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Whether the payload is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for Payload {
    fn from(s: String) -> Self {
        Payload(s.into())
    }
}

impl From<&str> for Payload {
    fn from(s: &str) -> Self {
        Payload(s.into())
    }
}

/// A wire name this SDK does not know (an operation type or status added
/// to the service after this version), kept so that errors can name it.
///
/// Two bytes, `Copy`: the names are interned process-wide (each kept once,
/// cut to [`WireName::MAX_LEN`] bytes), so that the operation types and
/// statuses that hold one stay as small as plain enums. After
/// [`WireName::MAX_NAMES`] distinct names, further ones share one entry
/// that says so.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct WireName(u16);

/// The interned names.
static WIRE_NAMES: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());

impl WireName {
    /// The most bytes kept of a name.
    pub const MAX_LEN: usize = 64;
    /// The most distinct names kept per process.
    pub const MAX_NAMES: usize = 1024;

    /// Interns `name` (shortened on a character boundary if it is too
    /// long).
    pub fn new(name: &str) -> Self {
        let mut end = name.len().min(WireName::MAX_LEN);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        let name = &name[..end];
        // The list is only ever pushed to, so a poisoned lock is usable.
        let mut names = WIRE_NAMES.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(at) = names.iter().position(|n| *n == name) {
            return WireName(at as u16);
        }
        if names.len() >= WireName::MAX_NAMES {
            return WireName(u16::MAX);
        }
        // Leaked once per distinct name, at most MAX_NAMES * MAX_LEN bytes.
        names.push(Box::leak(name.to_owned().into_boxed_str()));
        WireName((names.len() - 1) as u16)
    }

    /// The name.
    pub fn as_str(&self) -> &'static str {
        let names = WIRE_NAMES.lock().unwrap_or_else(|p| p.into_inner());
        names
            .get(usize::from(self.0))
            .copied()
            .unwrap_or("(one of too many unknown names)")
    }
}

impl fmt::Debug for WireName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for WireName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Serde for wire enums: written as their wire name, read from any
/// string (an unknown name becomes the `Unknown` variant).
macro_rules! wire_enum_serde {
    ($t:ty, $what:literal) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.wire_name())
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $t;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$t, E> {
                        Ok(<$t>::from_wire(v))
                    }
                }
                d.deserialize_str(V)
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.wire_name())
            }
        }

        impl std::str::FromStr for $t {
            type Err = UnknownWireName;
            /// Parses a known wire name; an unknown one is an error (use
            /// `from_wire` to keep it as the `Unknown` variant).
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match <$t>::from_wire(s) {
                    v if v.is_known() => Ok(v),
                    _ => Err(UnknownWireName(s.to_owned())),
                }
            }
        }
    };
}

/// The kind of an operation.
///
/// Operation types the service adds later parse as
/// [`OperationType::Unknown`]: an execution whose workflow never reaches
/// such an operation replays normally; one that does fails with
/// `UnknownOperation`, naming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OperationType {
    /// The execution itself; carries the input.
    Execution,
    /// A child context (also used for parallel/map).
    Context,
    /// A step: a piece of user code whose result is checkpointed.
    Step,
    /// A durable timer.
    Wait,
    /// A callback completed by an external system.
    Callback,
    /// An invocation of another function.
    ChainedInvoke,
    /// A type this version of the SDK does not know.
    Unknown(WireName),
}

impl OperationType {
    /// Parses a wire name; unknown names become [`OperationType::Unknown`].
    pub fn from_wire(s: &str) -> Self {
        match s {
            "EXECUTION" => OperationType::Execution,
            "CONTEXT" => OperationType::Context,
            "STEP" => OperationType::Step,
            "WAIT" => OperationType::Wait,
            "CALLBACK" => OperationType::Callback,
            "CHAINED_INVOKE" => OperationType::ChainedInvoke,
            other => OperationType::Unknown(WireName::new(other)),
        }
    }

    /// The wire name, e.g. `STEP`.
    pub fn wire_name(&self) -> &'static str {
        match self {
            OperationType::Execution => "EXECUTION",
            OperationType::Context => "CONTEXT",
            OperationType::Step => "STEP",
            OperationType::Wait => "WAIT",
            OperationType::Callback => "CALLBACK",
            OperationType::ChainedInvoke => "CHAINED_INVOKE",
            OperationType::Unknown(name) => name.as_str(),
        }
    }

    /// Whether this SDK knows the type.
    pub fn is_known(&self) -> bool {
        !matches!(self, OperationType::Unknown(_))
    }
}

wire_enum_serde!(OperationType, "an operation type");

/// A wire enum value this SDK does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value {0:?}")]
pub struct UnknownWireName(pub String);

/// The status of an operation.
///
/// Statuses the service adds later parse as [`OperationStatus::Unknown`]
/// (see [`OperationType`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OperationStatus {
    /// Started, not finished.
    Started,
    /// A step waiting for its next attempt.
    Pending,
    /// A step whose next attempt is due.
    Ready,
    /// Finished successfully (terminal).
    Succeeded,
    /// Finished with an error (terminal).
    Failed,
    /// Cancelled (terminal).
    Cancelled,
    /// Timed out (terminal).
    TimedOut,
    /// Stopped (terminal).
    Stopped,
    /// A status this version of the SDK does not know (never terminal).
    Unknown(WireName),
}

impl OperationStatus {
    /// Whether the status is final.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            OperationStatus::Succeeded
                | OperationStatus::Failed
                | OperationStatus::Cancelled
                | OperationStatus::TimedOut
                | OperationStatus::Stopped
        )
    }

    /// Parses a wire name; unknown names become [`OperationStatus::Unknown`].
    pub fn from_wire(s: &str) -> Self {
        match s {
            "STARTED" => OperationStatus::Started,
            "PENDING" => OperationStatus::Pending,
            "READY" => OperationStatus::Ready,
            "SUCCEEDED" => OperationStatus::Succeeded,
            "FAILED" => OperationStatus::Failed,
            "CANCELLED" => OperationStatus::Cancelled,
            "TIMED_OUT" => OperationStatus::TimedOut,
            "STOPPED" => OperationStatus::Stopped,
            other => OperationStatus::Unknown(WireName::new(other)),
        }
    }

    /// The wire name, e.g. `SUCCEEDED`.
    pub fn wire_name(&self) -> &'static str {
        match self {
            OperationStatus::Started => "STARTED",
            OperationStatus::Pending => "PENDING",
            OperationStatus::Ready => "READY",
            OperationStatus::Succeeded => "SUCCEEDED",
            OperationStatus::Failed => "FAILED",
            OperationStatus::Cancelled => "CANCELLED",
            OperationStatus::TimedOut => "TIMED_OUT",
            OperationStatus::Stopped => "STOPPED",
            OperationStatus::Unknown(name) => name.as_str(),
        }
    }

    /// Whether this SDK knows the status.
    pub fn is_known(&self) -> bool {
        !matches!(self, OperationStatus::Unknown(_))
    }
}

wire_enum_serde!(OperationStatus, "an operation status");

/// What an update does to an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum OperationAction {
    /// Start the operation.
    Start,
    /// Finish it successfully.
    Succeed,
    /// Finish it with an error.
    Fail,
    /// Schedule another attempt of a step.
    Retry,
    /// Cancel it.
    Cancel,
}

impl fmt::Display for OperationAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OperationAction::Start => "START",
            OperationAction::Succeed => "SUCCEED",
            OperationAction::Fail => "FAIL",
            OperationAction::Retry => "RETRY",
            OperationAction::Cancel => "CANCEL",
        })
    }
}

/// An error as the service stores it. All fields are optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct ErrorObject {
    /// A human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// The error's type, e.g. `NonDeterministicExecution`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// Extra data, usually encoded with a codec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_data: Option<String>,
    /// A stack trace, one frame per entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_trace: Option<Vec<String>>,
}

impl ErrorObject {
    /// An error with a type and a message.
    pub fn new(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorObject {
            error_message: Some(message.into()),
            error_type: Some(error_type.into()),
            error_data: None,
            stack_trace: None,
        }
    }
}

impl ErrorObject {
    /// The length of the error's JSON (an upper bound: control characters
    /// are counted at their longest escape).
    pub fn json_len(&self) -> usize {
        let field = |s: &Option<String>| s.as_deref().map_or(0, |s| 16 + json_string_len(s));
        2 + field(&self.error_message)
            + field(&self.error_type)
            + field(&self.error_data)
            + self.stack_trace.as_ref().map_or(0, |t| {
                16 + t.iter().map(|l| json_string_len(l) + 1).sum::<usize>()
            })
    }

    /// The error cut to fit the service's limits: `ErrorType` to
    /// [`MAX_ERROR_TYPE`] bytes, the whole object to [`MAX_ERROR_JSON`]
    /// bytes of JSON. Stack frames go first, then the message (down to
    /// 4 KiB), then the data, then the rest of the message. Every cut field
    /// ends in a visible marker, `…[truncated N bytes]`; an error that fits
    /// is returned unchanged.
    pub fn truncated(mut self) -> Self {
        // Nested, not a let chain: the crates' `rust-version` is 1.85.
        if let Some(t) = &mut self.error_type {
            if t.len() > MAX_ERROR_TYPE {
                cut_to(t, MAX_ERROR_TYPE);
            }
        }
        let excess = |e: &ErrorObject| e.json_len().saturating_sub(MAX_ERROR_JSON);
        let over = excess(&self);
        if over == 0 {
            return self;
        }
        if let Some(frames) = &mut self.stack_trace {
            let mut over = over;
            let mut dropped = 0;
            while over > 0 && !frames.is_empty() {
                let frame = frames.pop().unwrap_or_default();
                over = over.saturating_sub(json_string_len(&frame) + 1);
                dropped += 1;
            }
            if dropped > 0 {
                frames.push(format!("…[{dropped} frames truncated]"));
            }
        }
        // The message down to 4 KiB, then the data, then the rest of the
        // message.
        for (message, floor) in [(true, 4096), (false, 0), (true, 0)] {
            let over = excess(&self);
            if over == 0 {
                return self;
            }
            let target = if message {
                &mut self.error_message
            } else {
                &mut self.error_data
            };
            if let Some(text) = target {
                let len = json_string_len(text);
                let want = len.saturating_sub(over).max(floor);
                if want < len {
                    cut_to(text, want);
                }
            }
        }
        if excess(&self) > 0 {
            // Only a pathological stack of tiny frames can get here.
            self.stack_trace = None;
        }
        self
    }
}

/// Cuts `text` so that its JSON string, marker included, takes at most
/// `max` bytes (on a character boundary).
fn cut_to(text: &mut String, max: usize) {
    let total = text.len();
    let marker_room = 32;
    let budget = max.saturating_sub(marker_room + 2);
    let mut used = 0;
    let mut end = 0;
    for (i, c) in text.char_indices() {
        let cost = match c {
            '"' | '\\' => 2,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf8(),
        };
        if used + cost > budget {
            break;
        }
        used += cost;
        end = i + c.len_utf8();
    }
    text.truncate(end);
    text.push_str(&format!("…[truncated {} bytes]", total - end));
}

impl fmt::Display for ErrorObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.error_type, &self.error_message) {
            (Some(t), Some(m)) => write!(f, "{t}: {m}"),
            (Some(t), None) => f.write_str(t),
            (None, Some(m)) => f.write_str(m),
            (None, None) => f.write_str("unknown error"),
        }
    }
}

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
mod tests {
    use super::*;

    #[test]
    fn parses_the_envelope_from_the_protocol() {
        let json = r#"{"DurableExecutionArn":"arn:x","CheckpointToken":"tok",
         "InitialExecutionState":{"Operations":[{"Id":"exec-1","Type":"EXECUTION","Status":"STARTED",
           "Name":"run1","StartTimestamp":1795755619735,"ExecutionDetails":{"InputPayload":"{\"hello\":\"world\"}"},
           "StepDetails":{}, "Unknown": 1}],
           "NextMarker":""},
         "UpdatedOperationIds":[], "SomethingNew": true}"#;
        let input: InvocationInput = serde_json::from_str(json).unwrap();
        let op = &input.initial_execution_state.operations[0];
        assert_eq!(op.id.as_str(), "exec-1");
        assert_eq!(op.op_type, OperationType::Execution);
        assert_eq!(op.start_timestamp, Some(1_795_755_619_735));
        assert_eq!(
            op.execution_details
                .as_ref()
                .and_then(|d| d.input_payload.as_ref())
                .map(Payload::as_str),
            Some("{\"hello\":\"world\"}")
        );
    }

    #[test]
    fn tolerates_nulls_and_fractional_timestamps() {
        let json = r#"{"Id":"a","Type":"STEP","Status":"SUCCEEDED","StartTimestamp":1.5e3,
            "EndTimestamp":null,"StepDetails":{"Result":null,"Attempt":1}}"#;
        let op: Operation = serde_json::from_str(json).unwrap();
        assert_eq!(op.start_timestamp, Some(1500));
        assert_eq!(op.end_timestamp, None);
        assert_eq!(op.step_details.unwrap().result, None);
    }

    #[test]
    fn rejects_bad_ids_and_keeps_unknown_enums() {
        assert!(OperationId::new("").is_err());
        assert!(OperationId::new(&"a".repeat(65)).is_err());
        let op: Operation =
            serde_json::from_str(r#"{"Id":"a","Type":"FUTURE_OP","Status":"PAUSED"}"#).unwrap();
        assert_eq!(
            op.op_type,
            OperationType::Unknown(WireName::new("FUTURE_OP"))
        );
        assert_eq!(op.op_type.to_string(), "FUTURE_OP");
        assert_eq!(op.status.to_string(), "PAUSED");
        assert!(!op.status.is_terminal() && !op.status.is_known());
        // Unknown values are written back as they came.
        let back = serde_json::to_value(&op).unwrap();
        assert_eq!(back["Type"], "FUTURE_OP");
        assert_eq!(back["Status"], "PAUSED");
        let long = "X".repeat(100);
        let name = WireName::new(&long);
        assert_eq!(name.as_str(), &long[..WireName::MAX_LEN]);
        assert_eq!(WireName::new("PAUSED"), WireName::new("PAUSED"));
        assert_ne!(WireName::new("PAUSED"), WireName::new("RESUMED"));
        // As small as a plain enum.
        assert!(std::mem::size_of::<OperationType>() <= 4);
        assert!(std::mem::size_of::<OperationStatus>() <= 4);
        assert!(
            serde_json::from_str::<Operation>(r#"{"Id":"a","Type":7,"Status":"STARTED"}"#).is_err()
        );
        let long = format!(
            r#"{{"Id":"{}","Type":"STEP","Status":"STARTED"}}"#,
            "x".repeat(65)
        );
        assert!(serde_json::from_str::<Operation>(&long).is_err());
    }

    #[test]
    fn enums_parse_their_display_names() {
        use std::str::FromStr;
        for t in [
            OperationType::Execution,
            OperationType::Context,
            OperationType::Step,
            OperationType::Wait,
            OperationType::Callback,
            OperationType::ChainedInvoke,
        ] {
            assert_eq!(OperationType::from_str(&t.to_string()), Ok(t));
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{t}\""));
        }
        for s in [
            OperationStatus::Started,
            OperationStatus::Pending,
            OperationStatus::Ready,
            OperationStatus::Succeeded,
            OperationStatus::Failed,
            OperationStatus::Cancelled,
            OperationStatus::TimedOut,
            OperationStatus::Stopped,
        ] {
            assert_eq!(OperationStatus::from_str(&s.to_string()), Ok(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        assert!(OperationStatus::from_str("PAUSED").is_err());
        assert_eq!(
            OperationStatus::from_wire("PAUSED"),
            OperationStatus::Unknown(WireName::new("PAUSED"))
        );
    }

    #[test]
    fn update_serializes_with_wire_names() {
        let mut u = OperationUpdate::new(
            OperationId::new("abc").unwrap(),
            OperationType::Wait,
            OperationAction::Start,
        );
        u.name = Some("cool-off".into());
        u.sub_type = Some("Wait".into());
        u.wait_options = Some(WaitOptions { wait_seconds: 60 });
        let v = serde_json::to_value(&u).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"Id":"abc","Name":"cool-off","Type":"WAIT","SubType":"Wait",
                "Action":"START","WaitOptions":{"WaitSeconds":60}})
        );
    }

    #[test]
    fn the_size_estimate_bounds_the_json() {
        let mut u = OperationUpdate::new(
            OperationId::new("abc").unwrap(),
            OperationType::Step,
            OperationAction::Fail,
        );
        for payload in [
            "plain",
            "\"quoted\" \\ back",
            "\n\t\u{1}\u{1f}",
            &"\"".repeat(1000),
        ] {
            u.name = Some(payload.to_owned().into());
            u.sub_type = Some("Step".into());
            u.payload = Some(payload.into());
            u.error = Some(Box::new(ErrorObject {
                error_message: Some(payload.into()),
                error_type: Some("T".into()),
                error_data: Some(payload.into()),
                stack_trace: Some(vec![payload.into(), "x".into()]),
            }));
            u.step_options = Some(StepOptions {
                next_attempt_delay_seconds: Some(u32::MAX),
            });
            let actual = serde_json::to_vec(&u).unwrap().len();
            assert!(
                u.approx_size() >= actual,
                "{} < {actual} for {payload:?}",
                u.approx_size()
            );
            // Short strings are bounded at six bytes a character without
            // being scanned: up to 5 x 32 bytes too many for each of them.
            assert!(
                u.approx_size() <= actual + 400 + 7 * 5 * 32,
                "{} far above {actual}",
                u.approx_size()
            );
        }
    }

    #[test]
    fn long_errors_are_cut_to_the_limits_with_a_marker() {
        let small = ErrorObject::new("T", "short");
        assert_eq!(small.clone().truncated(), small);
        for text in [
            "x".repeat(100_000),
            "\"".repeat(40_000),
            "\u{1}".repeat(40_000),
            "é€😀".repeat(20_000),
        ] {
            let e = ErrorObject {
                error_message: Some(text.clone()),
                error_type: Some("T".repeat(1000)),
                error_data: Some(text.clone()),
                stack_trace: Some(vec![text.clone(), "frame".into()]),
            };
            let cut = e.truncated();
            let json = serde_json::to_vec(&cut).unwrap().len();
            assert!(json <= MAX_ERROR_JSON, "{json} bytes");
            assert!(cut.error_type.as_ref().unwrap().len() <= MAX_ERROR_TYPE + 40);
            let message = cut.error_message.unwrap();
            assert!(
                message.contains("…[truncated "),
                "{}",
                &message[message.len() - 40..]
            );
            assert!(json_string_len(&message) >= 1000);
        }
    }

    #[test]
    fn json_string_len_is_serde_json_s_length() {
        // serde_json escapes control characters as `\n`-style pairs where
        // it can, so its length is at most ours; `"`, `\\` and the rest of
        // the text count exactly.
        let long_quotes = "\"a\\".repeat(5000);
        let long_controls = "\u{1}x".repeat(9000);
        for s in [
            "",
            "plain",
            "é ✓ 😀",
            "\"\\",
            "\u{1f}\u{0}",
            long_quotes.as_str(),
            long_controls.as_str(),
        ] {
            let json = serde_json::to_string(s).unwrap().len();
            let ours = json_string_len(s);
            assert!(
                ours >= json,
                "{ours} < {json} for {:?}",
                &s[..s.len().min(20)]
            );
            let controls = s.bytes().filter(|b| *b < 0x20).count();
            let escaped = s.bytes().filter(|b| matches!(b, b'"' | b'\\')).count();
            assert_eq!(ours, 2 + s.len() + escaped + 5 * controls);
        }
    }

    #[test]
    fn output_serializes_like_the_service_expects() {
        let out = InvocationOutput {
            status: InvocationStatus::Pending,
            result: None,
            error: None,
        };
        assert_eq!(
            serde_json::to_string(&out).unwrap(),
            r#"{"Status":"PENDING"}"#
        );
    }
}

//! The wire enums (operation types, statuses, actions) and the names of
//! values this SDK does not know.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

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

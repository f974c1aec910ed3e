//! Errors that end an execution.

use std::fmt;
use std::time::Duration;

use durable_yield_codecs::CodecError;

use crate::model::{ErrorObject, OperationId, OperationStatus, OperationType, SharedStr};

/// One durable operation as the workflow requested (or history recorded)
/// it, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpRef {
    /// The 1-based position of the call in its context (for a map or
    /// parallel branch, its 0-based index); 0 also when it is not known
    /// (an operation named by its id alone), and then not displayed.
    pub seq: u64,
    /// The operation id.
    pub id: OperationId,
    /// The operation type.
    pub op_type: OperationType,
    /// The subtype.
    pub sub_type: Option<SharedStr>,
    /// The name.
    pub name: Option<SharedStr>,
    /// The id of the CONTEXT operation it belongs to (none at the root).
    pub parent: Option<OperationId>,
}

impl OpRef {
    /// Type, subtype and name, e.g. `STEP/Step "charge"`.
    pub(crate) fn describe(&self) -> String {
        let mut s = self.op_type.to_string();
        if let Some(sub) = &self.sub_type {
            s.push('/');
            s.push_str(sub);
        }
        match &self.name {
            Some(n) => s.push_str(&format!(" {n:?}")),
            None => s.push_str(" (unnamed)"),
        }
        s
    }
}

impl fmt::Display for OpRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.seq {
            // Its place is not known (an operation named by its id alone).
            0 => write!(f, "{} (id {})", self.describe(), self.id),
            seq => write!(f, "{} (operation #{seq}, id {})", self.describe(), self.id),
        }
    }
}

/// Why the interpreter ended an execution. Each becomes the execution's
/// [`ErrorObject`], with [`ExecutionError::error_type`] as its `ErrorType`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExecutionError {
    /// The history holds another operation at this id than the code asks
    /// for: the workflow code changed in a way that breaks replay.
    #[error(
        "non-deterministic execution: history recorded {recorded} at operation #{seq} (id {id}), \
         but the workflow now requests {requested}; an execution must request the operations it \
         recorded, in order, on every replay: publish code that changes them as a new function \
         version (executions invoked through a version or an alias stay on the code they started \
         with) or keep the old sequence for executions in flight"
    )]
    NonDeterministic {
        /// The call's position.
        seq: u64,
        /// The id.
        id: OperationId,
        /// What history holds, e.g. `STEP/Step "charge"`.
        recorded: String,
        /// What the code asked for.
        requested: String,
    },
    /// Workflow code awaited a future that is not a durable operation.
    ///
    /// Detected exactly when such a future is not ready the first time it
    /// is polled (a sleep, an I/O call, a lock or channel that has to
    /// wait): the workflow's poll then returns without a durable request.
    /// A foreign future that is ready at its first poll (an `async` block
    /// that awaits nothing, a channel that already holds a value) is not
    /// detected; it is harmless on replay only if its value is the same
    /// every time.
    #[error(
        "workflow code awaited a future that is not a durable operation {}; \
         do I/O and sleeps inside a step body, and use `wait` for delays",
        match .last_op { Some(op) => format!("after {op}"), None => "before its first operation".to_owned() }
    )]
    ForeignAwait {
        /// The last operation the workflow requested.
        last_op: Option<OpRef>,
    },
    /// A wait was asked for with a duration the service cannot record.
    #[error(
        "invalid wait duration {duration:?} for {op}: it must be more than zero and at most \
         31622400 s (366 days); fractions of a second are rounded up"
    )]
    InvalidWaitDuration {
        /// The wait.
        op: OpRef,
        /// The requested duration.
        duration: Duration,
    },
    /// A recorded value could not be decoded by the workflow; or, when
    /// the codec's failure is transient ([`ExecutionError::is_transient`]),
    /// a value could not be encoded or decoded for now.
    #[error("{}: {error}", codec_subject(.op.as_ref(), .error))]
    Codec {
        /// The operation whose value failed.
        op: Option<OpRef>,
        /// The codec's error.
        error: CodecError,
    },
    /// The execution's input could not be decoded into the workflow's input type.
    #[error("the execution input could not be decoded as {type_name}: {message}")]
    InvalidInput {
        /// The expected Rust type.
        type_name: &'static str,
        /// The decoder's message.
        message: String,
    },
    /// The workflow's output could not be encoded.
    #[error("the workflow result could not be encoded: {0}")]
    InvalidOutput(String),
    /// Workflow code panicked.
    #[error("workflow code panicked {}: {message}", match .last_op { Some(op) => format!("after {op}"), None => "before its first operation".to_owned() })]
    WorkflowPanicked {
        /// The panic message.
        message: String,
        /// The last operation the workflow requested.
        last_op: Option<OpRef>,
    },
    /// An operation name the service would reject.
    #[error("invalid name for {op}: {reason}; names are 1 to 256 printable ASCII characters")]
    InvalidName {
        /// The operation (its name as given).
        op: OpRef,
        /// What is wrong with it.
        reason: String,
    },
    /// The workflow reached an operation that history records with a type
    /// or status this version of the SDK does not know (the service added
    /// it later, or another SDK wrote it).
    #[error(
        "{op} is recorded with {what} {name}, which this version of durable-yield does not \
         know; upgrade durable-yield to replay this execution"
    )]
    UnknownOperation {
        /// The operation the workflow requested.
        op: OpRef,
        /// `type` or `status`.
        what: &'static str,
        /// The recorded wire name.
        name: String,
    },
    /// A recorded operation is in a state this operation cannot be in.
    #[error("{op} is recorded with status {status}, which it cannot have")]
    UnexpectedStatus {
        /// The operation.
        op: OpRef,
        /// Its recorded status.
        status: OperationStatus,
    },
    /// An operation was configured with values it cannot run with: a map
    /// or parallel's concurrency or completion policy, a step's or child
    /// context's subtype (nothing was checkpointed for it).
    #[error("invalid configuration of {op}: {reason}")]
    InvalidConfig {
        /// The operation.
        op: OpRef,
        /// What is wrong.
        reason: String,
    },
    /// The interpreter was driven out of protocol (a bug in a runtime).
    #[error(
        "internal error: {0} (a bug in durable-yield, or in a runtime that drives its \
         interpreter: please report it with the execution's history)"
    )]
    Internal(String),
    /// The history lacks something every execution has.
    #[error("invalid execution state: {0}")]
    InvalidHistory(String),
}

impl ExecutionError {
    /// Whether the error may pass: a codec could not reach its storage
    /// ([`CodecError::is_transient`]). The invocation then ends with
    /// [`Outcome::Retry`](crate::interpreter::Outcome::Retry): the service
    /// invokes the function again, and nothing is recorded as failed.
    pub fn is_transient(&self) -> bool {
        matches!(self, ExecutionError::Codec { error, .. } if error.is_transient())
    }

    /// The `ErrorType` this error is recorded with.
    pub fn error_type(&self) -> &'static str {
        match self {
            ExecutionError::NonDeterministic { .. } => "NonDeterministicExecution",
            ExecutionError::ForeignAwait { .. } => "ForeignAwait",
            ExecutionError::InvalidWaitDuration { .. } => "InvalidWaitDuration",
            ExecutionError::Codec { .. } => "CodecError",
            ExecutionError::InvalidInput { .. } => "InvalidInput",
            ExecutionError::InvalidOutput(_) => "InvalidOutput",
            ExecutionError::WorkflowPanicked { .. } => "WorkflowPanicked",
            ExecutionError::UnexpectedStatus { .. } => "UnexpectedOperationStatus",
            ExecutionError::InvalidName { .. } => "InvalidName",
            ExecutionError::InvalidConfig { .. } => "InvalidConfig",
            ExecutionError::UnknownOperation { .. } => "UnknownOperation",
            ExecutionError::InvalidHistory(_) => "InvalidExecutionState",
            ExecutionError::Internal(_) => "InternalError",
        }
    }

    /// The error as the service records it.
    pub fn to_error_object(&self) -> ErrorObject {
        ErrorObject::new(self.error_type(), self.to_string()).truncated()
    }
}

/// What [`ExecutionError::Codec`]'s message says failed.
fn codec_subject(op: Option<&OpRef>, error: &CodecError) -> String {
    match (op, error.is_transient()) {
        (Some(op), true) => format!("a value of {op} could not be encoded or decoded for now"),
        (None, true) => "a value could not be encoded or decoded for now".to_owned(),
        (Some(op), false)
            if matches!(
                error,
                CodecError::Decode { .. } | CodecError::Mismatch { .. }
            ) =>
        {
            format!(
                "cannot decode the result of {op} (if its type or codec changed since it was \
                 recorded, executions in flight still need to read the old one)"
            )
        }
        (Some(op), false) => format!("cannot decode the result of {op}"),
        (None, false) => "cannot decode a value".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_that_need_a_fix_say_what_to_do() {
        let internal = ExecutionError::Internal("a step has no operation reference".into());
        assert!(
            internal.to_string().contains("please report it"),
            "{internal}"
        );
        let changed = ExecutionError::NonDeterministic {
            seq: 3,
            id: OperationId::new("abc").unwrap(),
            recorded: "STEP/Step \"a\"".into(),
            requested: "WAIT/Wait \"b\"".into(),
        };
        let text = changed.to_string();
        assert!(text.contains("operation #3 (id abc)"), "{text}");
        assert!(text.contains("new function version"), "{text}");
        assert_eq!(changed.error_type(), "NonDeterministicExecution");
    }
}

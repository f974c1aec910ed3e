//! The messages exchanged between workflow code and the interpreter.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use durable_yield_codecs::CodecError;

use crate::coroutine::BoxFuture;
use crate::model::{ErrorObject, Payload};
use crate::retry::RetryStrategy;
use crate::workflow::{StepContext, StepFailure, StepSemantics};

/// How a workflow ended: its encoded result or its error.
pub(crate) type WorkflowResult = Result<Payload, ErrorObject>;

/// What a step body produced: the encoded value, or the failure of the
/// attempt (the error to record, the error value, whether retrying can
/// help).
pub type StepOutcome = Result<Payload, StepFailure>;

/// A step's outcome as recorded: what workflow code is resumed with.
pub(crate) type RecordedOutcome = Result<Payload, ErrorObject>;

/// What workflow code asks of the interpreter.
pub(crate) enum Request {
    /// A step: replay it or ask for its body.
    Step {
        name: Option<Cow<'static, str>>,
        retry: Option<Arc<dyn RetryStrategy>>,
        semantics: StepSemantics,
    },
    /// The body of the step just announced, to run live.
    Run(BoxFuture<StepOutcome>),
    /// A durable timer.
    Wait {
        name: Option<Cow<'static, str>>,
        duration: Duration,
    },
    /// Workflow code cannot go on.
    Fatal(Fatal),
}

/// What the interpreter answers.
pub(crate) enum Response {
    /// The first resume.
    Start,
    /// The step's outcome, recorded or fresh (always as checkpointed).
    Step(RecordedOutcome),
    /// The step must run live: send its body.
    Execute(StepContext),
    /// The wait is over.
    Continue,
}

/// Why workflow code cannot go on.
#[derive(Clone)]
pub(crate) enum Fatal {
    /// A recorded value does not decode with the step's codec.
    Decode(CodecError),
    /// The interpreter answered out of protocol.
    Protocol(&'static str),
}

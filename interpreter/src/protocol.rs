//! The messages exchanged between workflow code and the interpreter.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use durable_yield_codecs::CodecError;

use crate::batch_result::{Nesting, RawBatch};
use crate::completion::CompletionPolicy;
use crate::coroutine::{self, BoxFuture};
use crate::failure::StepFailure;
use crate::model::{ErrorObject, OperationId, OperationStatus, Payload};
use crate::retry::RetryStrategy;
use crate::step_context::{StepContext, StepSemantics};
use crate::text::SharedStr;

/// The handle workflow code uses to run durable operations.
pub struct Workflow {
    pub(crate) yielder: Yielder,
    pub(crate) execution_arn: Arc<str>,
    /// Its CONTEXT operation (none at the root).
    pub(crate) context_op: Option<OperationId>,
}

impl Workflow {
    pub(crate) fn new(
        yielder: Yielder,
        execution_arn: Arc<str>,
        context_op: Option<OperationId>,
    ) -> Self {
        Workflow {
            yielder,
            execution_arn,
            context_op,
        }
    }
}

/// The workflow side of the channel.
pub(crate) type Yielder = coroutine::Yielder<Request, Response>;

/// A running workflow or child context.
pub(crate) type Coroutine = coroutine::Coroutine<Request, Response, WorkflowResult>;

/// What a resumed workflow or child context did.
pub(crate) type Resumed = coroutine::Resumed<Request, WorkflowResult>;

/// How a workflow (or a child context) ended: its encoded result or its
/// error.
pub(crate) type WorkflowResult = Result<Payload, Ended>;

/// Why a workflow or child context ended without a result.
#[derive(Debug)]
pub(crate) enum Ended {
    /// It failed with this error (recorded as the context's failure).
    Failed(Box<ErrorObject>),
    /// Its result could not be encoded because its codec's storage is
    /// unreachable for a while: the invocation ends, nothing recorded.
    Unavailable(Box<CodecError>),
}

impl From<Box<ErrorObject>> for Ended {
    fn from(error: Box<ErrorObject>) -> Self {
        Ended::Failed(error)
    }
}

impl From<ErrorObject> for Ended {
    fn from(error: ErrorObject) -> Self {
        Ended::Failed(Box::new(error))
    }
}

/// The body of a child context or of a branch: runs on its own
/// [`Workflow`] handle and ends with its encoded result.
pub(crate) type ContextBody = Box<dyn FnOnce(Workflow) -> BoxFuture<WorkflowResult> + Send>;

/// What a step body produced: the encoded value, or the failure of the
/// attempt (the error to record, the error value, whether retrying can
/// help).
pub type StepOutcome = Result<Payload, StepFailure>;

/// A step's outcome as recorded: what workflow code is resumed with.
/// The error is boxed: responses travel through the generator by value,
/// and the common case (a value) should not pay for moving a rare one.
pub(crate) type RecordedOutcome = Result<Payload, Box<ErrorObject>>;

/// Map or parallel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BatchKind {
    Map,
    Parallel,
}

impl BatchKind {
    /// The subtype of the batch's own CONTEXT.
    pub(crate) fn sub_type(self) -> &'static str {
        match self {
            BatchKind::Map => crate::subtype::MAP,
            BatchKind::Parallel => crate::subtype::PARALLEL,
        }
    }
    /// The subtype of each branch's CONTEXT.
    pub(crate) fn branch_sub_type(self) -> &'static str {
        match self {
            BatchKind::Map => crate::subtype::MAP_ITERATION,
            BatchKind::Parallel => crate::subtype::PARALLEL_BRANCH,
        }
    }
    /// The name of branch `index` when the code gave it none:
    /// `map-item-<index>` or `parallel-branch-<index>`, written straight
    /// into its shared string (one allocation, no formatting machinery:
    /// once per item of a map run live; a replayed branch shares the
    /// recorded name, see [`BatchKind::is_default_branch_name`]).
    pub(crate) fn default_branch_name(self, index: usize) -> SharedStr {
        let mut buf = [0u8; 40];
        let len = self.write_default_branch_name(&mut buf, index);
        // ASCII: the prefix and decimal digits.
        let text = std::str::from_utf8(&buf[..len]).unwrap_or("branch");
        SharedStr::from(Arc::<str>::from(text))
    }

    /// Whether `name` is branch `index`'s default name (compared on the
    /// stack: nothing is allocated).
    pub(crate) fn is_default_branch_name(self, name: &[u8], index: usize) -> bool {
        let mut buf = [0u8; 40];
        let len = self.write_default_branch_name(&mut buf, index);
        name == &buf[..len]
    }

    /// Writes branch `index`'s default name at the start of `buf`; its
    /// length.
    fn write_default_branch_name(self, buf: &mut [u8; 40], index: usize) -> usize {
        let prefix: &[u8] = match self {
            BatchKind::Map => b"map-item-",
            BatchKind::Parallel => b"parallel-branch-",
        };
        buf[..prefix.len()].copy_from_slice(prefix);
        prefix.len() + crate::id::write_decimal(&mut buf[prefix.len()..], index as u64)
    }
    /// The `type` of the summary written when the result is too large.
    pub(crate) fn summary_type(self) -> &'static str {
        match self {
            BatchKind::Map => "MapResult",
            BatchKind::Parallel => "ParallelResult",
        }
    }
}

/// The bodies of a batch's branches, each taken when its branch starts.
pub(crate) enum Bodies {
    /// Built by the code (a parallel's branches).
    Built(Vec<Option<ContextBody>>),
    /// Built from a map's items as each starts: the body of an item whose
    /// outcome is recorded (or of a map whose result is) is never built.
    Items(Box<dyn FnMut(usize) -> Option<ContextBody> + Send>),
}

impl Bodies {
    /// The body of branch `index` (none if it was taken before).
    pub(crate) fn take(&mut self, index: usize) -> Option<ContextBody> {
        match self {
            Bodies::Built(bodies) => bodies.get_mut(index).and_then(Option::take),
            Bodies::Items(build) => build(index),
        }
    }
}

/// A map or parallel operation.
pub(crate) struct BatchRequest {
    pub(crate) kind: BatchKind,
    pub(crate) name: Option<Cow<'static, str>>,
    /// Each branch's name (none: the kind's default name, built when the
    /// branch starts, see [`BatchKind::default_branch_name`]).
    pub(crate) names: Vec<Option<Cow<'static, str>>>,
    pub(crate) bodies: Bodies,
    pub(crate) max_concurrency: Option<usize>,
    /// The window without `max_concurrency` (see [`crate::batch::ADMISSION_WINDOW`]).
    pub(crate) window: usize,
    pub(crate) completion: CompletionPolicy,
    pub(crate) nesting: Nesting,
}

/// A chained invoke of another function.
pub(crate) struct InvokeRequest {
    pub(crate) name: Option<Cow<'static, str>>,
    pub(crate) function_name: String,
    pub(crate) tenant_id: Option<String>,
    /// The input, or why it could not be encoded.
    pub(crate) payload: Result<Payload, CodecError>,
}

/// One live check of a wait-for-condition: its step context, the recorded
/// state (`None`: the initial one) and the flag its body sets when the
/// condition is met.
pub(crate) struct CheckRequest {
    pub(crate) context: StepContext,
    pub(crate) state: Option<Payload>,
    pub(crate) done: Arc<AtomicBool>,
}

/// What workflow code asks of the interpreter.
///
/// Requests and [`Response`]s are moved through the generator several
/// times a resume: rare, large variants are boxed so that both stay a few
/// words (a size test below keeps them so).
pub(crate) enum Request {
    /// A step: replay it or ask for its body.
    Step {
        name: Option<Cow<'static, str>>,
        retry: Option<Arc<dyn RetryStrategy>>,
        semantics: StepSemantics,
        /// A custom subtype (`StepConfig::sub_type`); none: `Step`. (A
        /// thin `Arc`, so that requests stay 64 bytes: every replayed
        /// step moves one through the generator.)
        sub_type: Option<Arc<str>>,
    },
    /// The body of the step just announced, to run live.
    Run(BoxFuture<StepOutcome>),
    /// A durable timer.
    Wait {
        name: Option<Cow<'static, str>>,
        duration: Duration,
    },
    /// A child context running `body`.
    Child {
        name: Option<Cow<'static, str>>,
        /// A custom subtype (`ChildConfig::sub_type`); none: the SDK's.
        sub_type: Option<Arc<str>>,
        /// The SDK's subtype is `WaitForCallback`, not `RunInChildContext`.
        wait_for_callback: bool,
        body: ContextBody,
        /// Records no CONTEXT operation (see `ChildConfig::virtual_context`).
        is_virtual: bool,
    },
    /// A map or parallel operation.
    Batch(Box<BatchRequest>),
    /// A callback: replay its id, or start it.
    Callback {
        name: Option<Cow<'static, str>>,
        timeout_seconds: u32,
        heartbeat_timeout_seconds: u32,
    },
    /// The outcome of the callback created as operation `op`: suspends
    /// until it has one.
    CallbackResult { op: Box<OperationId> },
    /// A chained invoke of another function.
    Invoke(Box<InvokeRequest>),
    /// A wait-for-condition: replay it, or ask for one check.
    Condition {
        name: Option<Cow<'static, str>>,
        strategy: Arc<dyn RetryStrategy>,
    },
    /// The encoded result of the batch just answered with
    /// [`BatchReply::Live`], to checkpoint.
    CloseBatch(Result<Payload, Box<ErrorObject>>, Option<String>),
    /// Workflow code cannot go on.
    Fatal(Box<Fatal>),
}

/// Answers reach workflow code through this per-thread slot (see the
/// `coroutine` module). A workflow's first resume, [`Response::Start`],
/// reaches no code: nothing awaits it yet.
impl coroutine::Answer for Response {
    fn slot() -> &'static std::thread::LocalKey<std::cell::Cell<Option<Response>>> {
        thread_local! {
            static SLOT: std::cell::Cell<Option<Response>> = const { std::cell::Cell::new(None) };
        }
        &SLOT
    }
}

/// What the interpreter answers.
pub(crate) enum Response {
    /// The first resume.
    Start,
    /// The step's or child context's outcome, recorded or fresh (always as
    /// checkpointed).
    Step(RecordedOutcome),
    /// The step must run live: send its body.
    Execute(Box<StepContext>),
    /// A condition check must run live: send its body, which checks the
    /// recorded state (`None`: the initial one) and sets `done` when the
    /// condition is met.
    Check(Box<CheckRequest>),
    /// The wait is over; or the batch result just sent is too large to
    /// checkpoint and is rebuilt from its branches on replay: keep it.
    Continue,
    /// A map or parallel operation ended.
    Batch(BatchReply),
    /// A chained invoke ended: the target's result, or how it ended.
    Invoked(Result<Payload, Box<(OperationStatus, ErrorObject)>>),
    /// The callback was created (or replayed): its operation and the id
    /// the service issued.
    Callback(Box<(OperationId, String)>),
}

/// How a map or parallel operation ended.
pub(crate) enum BatchReply {
    /// Recorded earlier: decode the result with the batch codec.
    Recorded(Payload),
    /// Just completed: encode it and send it back with
    /// [`Request::CloseBatch`].
    Live(RawBatch),
    /// Rebuilt from the branches' records (the result was too large to
    /// checkpoint): use it as it is.
    Rebuilt(RawBatch),
    /// The batch operation itself failed (its result could not be encoded).
    Failed(Box<ErrorObject>),
}

/// Why workflow code cannot go on.
#[derive(Clone)]
pub(crate) enum Fatal {
    /// A recorded value does not decode with the operation's codec, or
    /// a value cannot be encoded for now ([`CodecError::is_transient`]).
    Codec(CodecError),
    /// A value of the recorded operation `op` (not necessarily the
    /// context's last one: a callback awaited late) cannot be decoded for
    /// now ([`CodecError::is_transient`]). Boxed: `Fatal` is held by
    /// every operation's future.
    CodecOf(Box<(OperationId, CodecError)>),
    /// The interpreter answered out of protocol.
    Protocol(&'static str),
}

/// The summary a child context's code made of a result too large to
/// checkpoint (`ChildConfig::summary`), handed to the interpreter as the
/// context's code returns: set by the last poll of its code, taken by the
/// interpreter as that poll returns, on the same thread (the code cannot
/// yield once its value is made: its handle went to the code).
pub(crate) mod pending_summary {
    use std::cell::RefCell;

    thread_local! {
        static SUMMARY: RefCell<Option<String>> = const { RefCell::new(None) };
    }

    /// Sets the summary of the context whose code is returning.
    pub(crate) fn set(summary: String) {
        SUMMARY.with(|s| *s.borrow_mut() = Some(summary));
    }

    /// Takes it (none when the code made none).
    pub(crate) fn take() -> Option<String> {
        SUMMARY.with(|s| s.borrow_mut().take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The messages a replayed operation moves through the generator (and
    /// the interpreter's ready queue) stay small enough to be copied inline.
    #[test]
    fn messages_stay_small() {
        let request = std::mem::size_of::<Request>();
        assert!(
            request <= 64,
            "a request is {request} bytes: box the new large variant"
        );
        let response = std::mem::size_of::<Response>();
        assert!(
            response <= 40,
            "a response is {response} bytes: box the new large variant"
        );
    }
}

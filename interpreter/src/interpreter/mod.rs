//! The replay state machine: events in, actions out.
//!
//! The [`Interpreter`] owns the history and every context of the workflow:
//! the root workflow and each child context, map item and parallel branch,
//! each a coroutine with its own operation counter. It never does I/O,
//! reads a clock or awaits anything: its driver (the local runner, or the
//! Lambda handler) calls [`Interpreter::poll`] until it returns `None`,
//! carries out the [`Action`]s it got (several step bodies may be out at
//! once, from different contexts), and reports each back, in any order for
//! step bodies and in the order given for checkpoints:
//!
//! ```text
//! loop {
//!     while let Some(action) = interpreter.poll() {
//!         match action {
//!             Action::RunStep(run) => running.push(run),            // start the body
//!             Action::Checkpoint { handle, updates, .. } => queue.push((handle, updates)),
//!             Action::Finish(outcome) => return outcome,
//!         }
//!     }
//!     // Wait for a body to finish or a checkpoint to be answered:
//!     //   interpreter.step_finished(run.handle, outcome)
//!     //   interpreter.checkpoint_finished(handle, response_operations)
//! }
//! ```
//!
//! Ids come from the structure of the code only (each context numbers its
//! own calls), so the order in which bodies finish changes nothing that is
//! recorded about them. The invocation ends `PENDING` when no context can
//! go on: every one that has not finished waits for a timer (a wait, a
//! retry delay) or for another context.

mod callback;
mod checkpoints;
mod condition;
mod context;
mod determinism;
mod ending;
mod invoke;
mod map_parallel;
mod observing;
mod resume;
mod step;
mod wait;

pub use observing::ContextScope;

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use durable_yield_codecs::{Json, PayloadContext};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::batch_result::{
    BatchItemStatus, BatchSummary, CompletionReason, Nesting, RawBatch, RawItem,
};
use crate::completion::{CompletionItem, CompletionPolicy};
use crate::coroutine::BoxFuture;
use crate::error::{ExecutionError, OpRef};
use crate::failure::{BoxError, StepFailure};
use crate::history::History;
use crate::id::IdGenerator;
use crate::limits::{
    MAX_CALLBACK_TIMEOUT_SECONDS, MAX_NAME_LEN, MAX_OPERATION_PAYLOAD, MAX_WAIT_SECONDS,
};
use crate::model::{
    CallbackOptions, ChainedInvokeOptions, ContextOptions, ErrorObject, Millis, Operation,
    OperationAction, OperationId, OperationStatus, OperationType, OperationUpdate, Payload,
    SharedStr, StepOptions, WaitOptions, WireName,
};
use crate::observe::{FunctionOutcome, Observation, Observer};
use crate::protocol::Workflow;
use crate::protocol::{
    BatchKind, BatchReply, BatchRequest, Bodies, CheckRequest, ContextBody, Ended, Fatal,
    InvokeRequest, RecordedOutcome, Request, Response, StepOutcome, WorkflowResult,
};
use crate::protocol::{Coroutine, Resumed};
use crate::retry::{ExponentialBackoff, FailedAttempt, RetryStrategy, unit_random, whole_seconds};
use crate::running;
use crate::step_context::{StepContext, StepSemantics};
use crate::workflow::WorkflowFn;

/// How an invocation of the workflow ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The workflow returned this (JSON) result.
    Succeeded(Payload),
    /// The execution failed with this error.
    Failed(ErrorObject),
    /// The workflow waits for something; invoke again later.
    Pending {
        /// When the earliest thing it waits for is due, if known (epoch ms).
        resume_at: Option<Millis>,
    },
    /// The invocation failed for a reason that may pass (a codec could not
    /// reach its storage: [`ExecutionError::is_transient`]), before
    /// anything of it was recorded as failed: end it as a failed invocation,
    /// so that the service invokes the function again (AWS's SDKs'
    /// `RetryableSerDesError`). Checkpoints handed out just before it
    /// (what ended before the failure) were not answered: a driver sends
    /// them before ending the invocation.
    Retry(ErrorObject),
}

/// Identifies a step body handed out with [`Action::RunStep`]; report its
/// outcome with [`Interpreter::step_finished`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StepHandle {
    ctx: u32,
    /// The step's position in its context (`OpRef::seq`), which the
    /// service's limits keep far below `u32::MAX`: 4 bytes, so that a
    /// [`StepRun`] stays within 256 bytes (copied once per step).
    seq: u32,
}

/// Identifies the updates of one [`Action::Checkpoint`]; report the answer
/// with [`Interpreter::checkpoint_finished`]. Checkpoints must be answered
/// in the order they were handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckpointHandle(u64);

/// A step body for the driver to run.
pub struct StepRun {
    /// Which step this is, for [`Interpreter::step_finished`].
    pub handle: StepHandle,
    /// The step's context (id, name, attempt).
    pub context: StepContext,
    /// The id of the child context the step runs in (none at the root).
    pub parent_id: Option<OperationId>,
    /// The step's subtype (`Step`, `WaitForCondition` for a check, or the
    /// step's own: `StepConfig::sub_type`).
    pub sub_type: SharedStr,
    future: BoxFuture<StepOutcome>,
}

impl StepRun {
    /// The body, to run: resolves to the encoded result or the error to
    /// record (a panic in it is the driver's to catch).
    pub fn into_body(self) -> impl Future<Output = StepOutcome> + Send + Unpin + 'static {
        self.future
    }
}

impl std::fmt::Debug for StepRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepRun")
            .field("handle", &self.handle)
            .field("context", &self.context)
            .field("parent_id", &self.parent_id)
            .field("sub_type", &self.sub_type)
            .finish_non_exhaustive()
    }
}

/// What the driver must do next.
#[derive(Debug)]
#[non_exhaustive]
pub enum Action {
    /// Run this step body and report with [`Interpreter::step_finished`].
    /// Other actions may be handed out while it runs.
    RunStep(StepRun),
    /// Send these updates, in order, after those of earlier checkpoints,
    /// and report the response's operations with
    /// [`Interpreter::checkpoint_finished`].
    Checkpoint {
        /// Which checkpoint this is.
        handle: CheckpointHandle,
        /// The updates.
        updates: Vec<OperationUpdate>,
        /// Whether the workflow needs the service's answer to go on (a
        /// wait's START: the response may say the wait is over). When
        /// `false` (an outcome), a driver may acknowledge at once with no
        /// operations and send the updates later, together with others,
        /// accepting that a crash loses them.
        wait_for_response: bool,
    },
    /// The invocation is over.
    Finish(Outcome),
    /// Only for a driver that observes ([`Interpreter::observe`]): the
    /// code of a context that just started is about to run. Take the
    /// observations ([`Interpreter::take_observations`]) and report them
    /// now, so that whoever listens hears of the context (and can set up
    /// what its code runs in) before its code runs; then poll again.
    Observations,
}

type CtxId = u32;

/// A live step attempt (or condition check): about to be handed out, or
/// with its body running.
///
/// Its operation is the context's last one (`Ctx::last_op`): a context
/// awaits one operation at a time, so that reference stays the step's
/// while the attempt lives, and is not copied here (192 bytes in every
/// context's record).
struct LiveStep {
    /// The step's position in its context (`OpRef::seq`).
    seq: u64,
    attempt: u32,
    send_start: bool,
    retry: Option<Arc<dyn RetryStrategy>>,
    /// A wait-for-condition check: its wait strategy, and whether the
    /// check found the condition met.
    condition: Option<(Arc<dyn RetryStrategy>, Arc<AtomicBool>)>,
}

/// A context's step attempt, from its START to its outcome.
enum StepSlot {
    Idle,
    /// Its body is about to be sent (`Request::Run`).
    Live(LiveStep),
    /// Its body runs.
    Running(LiveStep),
}

impl StepSlot {
    /// The attempt whose body is about to be sent, taken.
    fn take_live(&mut self) -> Option<LiveStep> {
        match std::mem::replace(self, StepSlot::Idle) {
            StepSlot::Live(live) => Some(live),
            other => {
                *self = other;
                None
            }
        }
    }

    /// The attempt whose body runs, taken if it is the one numbered `seq`.
    fn take_running(&mut self, seq: u32) -> Option<LiveStep> {
        let seq = u64::from(seq);
        match self {
            StepSlot::Running(live) if live.seq == seq => {
                match std::mem::replace(self, StepSlot::Idle) {
                    StepSlot::Running(live) => Some(live),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// An attempt about to be sent. A context awaits one operation at a
    /// time, so no body of it can be running.
    fn set_live(&mut self, live: LiveStep) {
        debug_assert!(!matches!(self, StepSlot::Running(_)));
        *self = StepSlot::Live(live);
    }
}

/// What to do once a checkpoint is answered.
enum After {
    /// Nothing (updates that only had to be sent).
    Nothing,
    /// Resume the context with this.
    Resume(CtxId, Response),
    /// A wait started: go on if it is already over, else suspend.
    WaitStarted(CtxId, OperationId),
    /// An at-most-once attempt's START was acknowledged: run the body.
    Started(CtxId, Box<LiveStep>),
    /// A retry was scheduled: suspend until it is due.
    Retried(CtxId, OperationId),
    /// A callback's START was acknowledged: hand out its id.
    CallbackStarted(CtxId, Box<OpRef>),
    /// A chained invoke's START was acknowledged: it may have failed at
    /// once (an unknown function), else wait for the target.
    InvokeStarted(CtxId, Box<OpRef>),
    /// A branch's end was recorded: tell its batch.
    BranchClosed {
        batch: usize,
        index: usize,
        outcome: RecordedOutcome,
    },
}

/// What a context's request leads to.
enum Next {
    Resume(Response),
    Suspend(Option<Millis>),
    Checkpoint(Vec<OperationUpdate>, After),
    /// Boxed: an error is rare, and every request's `Next` is moved.
    Fail(Box<ExecutionError>),
}

impl Next {
    fn fail(error: ExecutionError) -> Next {
        Next::Fail(Box::new(error))
    }
}

/// Who is waiting for a context to end.
#[derive(Clone, Copy)]
enum Owner {
    /// The root workflow: its end is the execution's.
    Root,
    /// A child context of this context.
    Child(CtxId),
    /// A branch of this batch.
    Branch { batch: usize, index: usize },
}

/// One coroutine: the root workflow, a child context or a branch.
struct Ctx {
    coroutine: Option<Coroutine>,
    ids: IdGenerator,
    owner: Owner,
    /// Its CONTEXT operation (none at the root).
    op: Option<OpRef>,
    /// Its step attempt: about to send its body, or with the body running
    /// (one slot: its code awaits one operation at a time).
    step: StepSlot,
    last_op: Option<OpRef>,
    /// Re-run over recorded operations to rebuild a result too large to
    /// have been checkpointed: everything must replay, nothing is sent.
    replay_only: bool,
    /// Its batch ended without it: nothing more of it is recorded.
    abandoned: bool,
    /// Suspended on a timer, due then (if known).
    suspended: Option<Option<Millis>>,
    /// The batch whose result it is encoding.
    closing: Option<usize>,
    /// Contexts it started (children and branches).
    children: Vec<CtxId>,
    /// Recorded operations of this context it has not reached yet: while
    /// any are left, its code is replaying what an earlier invocation ran.
    /// (A virtual context's operations are recorded under another context:
    /// for it, whether its next operation is recorded.)
    recorded_ahead: u32,
    /// It records no CONTEXT operation (a virtual child, a flat branch).
    is_virtual: bool,
    /// A virtual context whose next operation may be recorded: the history
    /// the invocation started from holds operations under its parent.
    /// (Operations merged later are ones already reached.)
    peeks: bool,
    /// Its code started in this invocation and has not stopped (only
    /// tracked for observers).
    function_open: bool,
}

enum Branch {
    NotStarted,
    Active(CtxId),
    Done(RecordedOutcome),
    /// Started, then abandoned (or recorded so in a rebuilt result).
    Started,
}

/// Rebuilding a batch result that was too large to checkpoint.
struct Rebuild {
    reason: CompletionReason,
    total: usize,
    /// Sorted.
    started: Vec<usize>,
}

/// A running map or parallel operation.
struct Batch {
    owner: CtxId,
    op: OpRef,
    kind: BatchKind,
    /// Names given by the code (none: the kind's default name).
    names: Vec<Option<SharedStr>>,
    bodies: Bodies,
    branches: Vec<Branch>,
    next: usize,
    active: usize,
    succeeded: usize,
    failed: usize,
    /// How many branches may be active at once: the code's
    /// `max_concurrency`, or without one the window (see
    /// [`ADMISSION_WINDOW`](crate::batch::ADMISSION_WINDOW)).
    max_concurrency: usize,
    policy: CompletionPolicy,
    /// Every branch's status, kept as branches start and finish, for a
    /// custom completion predicate (empty without one).
    statuses: Vec<CompletionItem>,
    rebuild: Option<Rebuild>,
    done: bool,
    /// No `max_concurrency` was set: `max_concurrency` is a window that
    /// widens by this much when every active branch waits (see
    /// [`ADMISSION_WINDOW`](crate::batch::ADMISSION_WINDOW)); 0 otherwise.
    window: usize,
    summary: Option<BatchSummary>,
    nesting: Nesting,
}

enum Ending {
    Outcome(Outcome),
    Fatal(Box<ExecutionError>),
    Finished,
}

/// The replay interpreter of one invocation.
pub struct Interpreter {
    history: History,
    execution_arn: Arc<str>,
    /// Jitter and random values differ per execution: derived once from
    /// the ARN and the EXECUTION operation's id.
    execution_seed: u64,
    now: Millis,
    /// High and low halves (a `u128` field would align the interpreter
    /// to 16 bytes).
    entropy: [u64; 2],
    contexts: Vec<Ctx>,
    /// Slots of `contexts` whose context ended and that nothing refers to
    /// any more: the next context started takes one, so that a large map
    /// reuses the records of its finished items.
    free: Vec<CtxId>,
    batches: Vec<Batch>,
    /// Contexts to resume, in order.
    ready: VecDeque<(CtxId, Response)>,
    /// Actions to hand out, in order.
    outbox: VecDeque<Action>,
    /// Updates that need no answer (CONTEXT STARTs, at-least-once STEP
    /// STARTs): sent with the next checkpoint, or on their own when the
    /// driver asks ([`Interpreter::send_deferred`]).
    deferred: Vec<OperationUpdate>,
    /// Counts the times `deferred` started filling.
    deferred_epoch: u64,
    /// What to do when a checkpoint is answered, for the checkpoints with
    /// something to do (not `After::Nothing`: most of them, in a map).
    awaiting: VecDeque<(CheckpointHandle, After)>,
    /// The next checkpoint's handle.
    next_checkpoint: u64,
    /// The handle of the next checkpoint to be answered: those from here
    /// to `next_checkpoint` are outstanding.
    next_answer: u64,
    /// Step bodies handed out and not yet reported (abandoned ones aside).
    in_flight: usize,
    ending: Option<Ending>,
    error: Option<ExecutionError>,
    replayed: u64,
    executed: u64,
    /// Lifecycle observations, when a driver asked for them.
    observer: Option<Box<Observer>>,
    /// A context started (observed) since the driver last took the
    /// observations: [`Action::Observations`] is due before more code runs.
    announce: bool,
    /// Entered around each resumption of a context's code
    /// ([`Interpreter::scope_contexts`]).
    context_scope: Option<ContextScope>,
}

impl Interpreter {
    /// Prepares an invocation of `workflow` in the execution
    /// `execution_arn` over its checkpointed `operations`. The input is read
    /// from the EXECUTION operation (JSON); a missing or undecodable input
    /// fails the execution on the first poll.
    pub fn new<I, O, W>(execution_arn: &str, operations: Vec<Operation>, workflow: &W) -> Self
    where
        I: DeserializeOwned,
        O: Serialize + 'static,
        W: WorkflowFn<I, O> + ?Sized,
    {
        Self::with_history(execution_arn, History::new(operations), workflow)
    }

    /// [`Interpreter::new`] over a history already built, e.g. page by
    /// page with [`History::append`] as the pages of the state came in.
    pub fn with_history<I, O, W>(execution_arn: &str, history: History, workflow: &W) -> Self
    where
        I: DeserializeOwned,
        O: Serialize + 'static,
        W: WorkflowFn<I, O> + ?Sized,
    {
        let execution_seed =
            history.execution().map_or(0, |e| e.id.fingerprint()) ^ fnv1a(execution_arn.as_bytes());
        let execution_arn: Arc<str> = Arc::from(execution_arn);
        let mut interpreter = Interpreter {
            history,
            execution_arn: execution_arn.clone(),
            execution_seed,
            now: 0,
            entropy: [0, 0],
            contexts: Vec::new(),
            free: Vec::new(),
            batches: Vec::new(),
            ready: VecDeque::new(),
            outbox: VecDeque::new(),
            deferred: Vec::new(),
            deferred_epoch: 0,
            awaiting: VecDeque::new(),
            next_checkpoint: 0,
            next_answer: 0,
            in_flight: 0,
            ending: None,
            error: None,
            replayed: 0,
            executed: 0,
            observer: None,
            announce: false,
            context_scope: None,
        };
        match interpreter.decode_input::<I>() {
            Ok(input) => {
                let coroutine = Coroutine::new(|yielder| {
                    let run = workflow.start(Workflow::new(yielder, execution_arn, None), input);
                    Box::pin(async move {
                        let output = run.await?;
                        // The output leaves the execution (to its caller).
                        let cx = PayloadContext::DETACHED;
                        Payload::encode(&Json, &output, &cx).map_err(|e| {
                            ExecutionError::InvalidOutput(e.to_string())
                                .to_error_object()
                                .into()
                        })
                    })
                });
                let mut root = Ctx::new(coroutine, IdGenerator::root(), Owner::Root);
                root.recorded_ahead = interpreter.recorded(None);
                interpreter.contexts.push(root);
                interpreter.ready.push_back((0, Response::Start));
            }
            Err(e) => interpreter.fatal(e),
        }
        interpreter
    }

    // Errors end the execution; their size does not matter.
    #[allow(clippy::result_large_err)]
    fn decode_input<I: DeserializeOwned>(&self) -> Result<I, ExecutionError> {
        let execution = self.history.execution().ok_or_else(|| {
            ExecutionError::InvalidHistory("no EXECUTION operation among the operations".into())
        })?;
        let text = execution
            .execution_details
            .as_ref()
            .and_then(|d| d.input_payload.as_ref())
            .map(Payload::as_str)
            .unwrap_or("");
        let invalid = |e: serde_json::Error| ExecutionError::InvalidInput {
            type_name: std::any::type_name::<I>(),
            message: e.to_string(),
        };
        if text.trim().is_empty() {
            serde_json::from_str("null")
                .or_else(|_| serde_json::from_str("{}"))
                .map_err(invalid)
        } else {
            serde_json::from_str(text).map_err(invalid)
        }
    }

    /// Runs the workflow's contexts until each waits for the driver, and
    /// hands out the next action. Returns `None` when every action handed
    /// out so far must be answered before anything else can happen (a step
    /// body or a checkpoint outstanding), and after [`Action::Finish`].
    pub fn poll(&mut self) -> Option<Action> {
        loop {
            if let Some(action) = self.outbox.pop_front() {
                if let Action::RunStep(run) = &action {
                    // Its context was abandoned since: never run it.
                    if self.dead(run.handle.ctx) {
                        continue;
                    }
                }
                return Some(action);
            }
            match self.ending.take() {
                Some(Ending::Finished) => {
                    self.ending = Some(Ending::Finished);
                    return None;
                }
                Some(Ending::Fatal(error)) => {
                    // A transient failure ends only this invocation: what
                    // was decided before it (updates held back to share a
                    // request) is still handed out, so that the next
                    // invocation replays it instead of running it again.
                    if error.is_transient() && !self.deferred.is_empty() {
                        self.emit(Vec::new(), After::Nothing, false);
                        self.ending = Some(Ending::Fatal(error));
                        continue;
                    }
                    let object = error.to_error_object();
                    let outcome = if error.is_transient() {
                        Outcome::Retry(object)
                    } else {
                        Outcome::Failed(object)
                    };
                    self.error = Some(*error);
                    return Some(self.finish(outcome));
                }
                Some(Ending::Outcome(outcome)) => {
                    // Updates queued before the end are sent first.
                    if !self.deferred.is_empty() {
                        self.emit(Vec::new(), After::Nothing, false);
                    }
                    if !self.outbox.is_empty() || self.checkpoints_outstanding() {
                        self.ending = Some(Ending::Outcome(outcome));
                        if self.outbox.is_empty() {
                            return None;
                        }
                        continue;
                    }
                    return Some(self.finish(outcome));
                }
                None => {}
            }
            if self.announce && !self.ready.is_empty() {
                self.announce = false;
                return Some(Action::Observations);
            }
            if let Some((ctx, response)) = self.ready.pop_front() {
                self.resume(ctx, response);
                continue;
            }
            if self.in_flight > 0 || self.checkpoints_outstanding() {
                return None;
            }
            // Branches held back by a window go first, so that their
            // STARTs share a request with those already deferred.
            if self.widen_windows() {
                continue;
            }
            if !self.deferred.is_empty() {
                self.emit(Vec::new(), After::Nothing, false);
                continue;
            }
            // No context can go on: suspend until the earliest timer.
            let resume_at = (0..self.contexts.len() as CtxId)
                .filter(|&c| !self.dead(c))
                .filter_map(|c| self.contexts[c as usize].suspended.flatten())
                .min();
            return Some(self.finish(Outcome::Pending { resume_at }));
        }
    }

    /// Sets the runtime's clock (epoch ms): the time step contexts report
    /// ([`StepContext::now`]) and `Workflow::now` records. The interpreter
    /// reads no clock itself; a driver sets it before polling.
    pub fn set_now(&mut self, now: Millis) {
        self.now = now;
    }

    /// Sets the runtime's randomness for this invocation (128 bits of the
    /// operating system's randomness), which `Workflow::random` and
    /// `Workflow::uuid` draw from (mixed with the execution, the step and
    /// the attempt). The interpreter reads no randomness itself; a driver
    /// sets it once, before the first poll.
    pub fn set_entropy(&mut self, entropy: u128) {
        self.entropy = [(entropy >> 64) as u64, entropy as u64];
    }

    /// How many recorded operations the context `parent` holds.
    fn recorded(&self, parent: Option<OperationId>) -> u32 {
        self.history.recorded_in(parent.as_ref())
    }

    /// The operation of context `ctx`'s live step attempt: its last
    /// operation (see [`LiveStep`]).
    fn live_op(&self, ctx: CtxId) -> Option<&OpRef> {
        self.contexts.get(ctx as usize)?.last_op.as_ref()
    }

    /// Whether the context was abandoned, itself or through an ancestor
    /// (`abandon` marks every context below, and contexts started later
    /// inherit the mark), or is gone (the invocation is over).
    fn dead(&self, ctx: CtxId) -> bool {
        self.contexts.get(ctx as usize).is_none_or(|c| c.abandoned)
    }

    fn apply(&mut self, ctx: CtxId, next: Next) {
        match next {
            Next::Resume(response) => self.ready.push_back((ctx, response)),
            Next::Suspend(at) => self.contexts[ctx as usize].suspended = Some(at),
            Next::Checkpoint(updates, after) => {
                let wait = matches!(
                    after,
                    After::WaitStarted(..)
                        | After::Started(..)
                        | After::CallbackStarted(..)
                        | After::InvokeStarted(..)
                );
                self.emit(updates, after, wait);
            }
            Next::Fail(error) => self.fatal_boxed(error),
        }
    }

    /// The error that failed the execution, if the interpreter failed it.
    pub fn error(&self) -> Option<&ExecutionError> {
        self.error.as_ref()
    }

    /// The interpreter's view of the operations.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// How many operations were answered from history in this invocation.
    pub fn replayed(&self) -> u64 {
        self.replayed
    }

    /// How many step bodies ran in this invocation.
    pub fn executed(&self) -> u64 {
        self.executed
    }
}

impl Ctx {
    fn new(coroutine: Coroutine, ids: IdGenerator, owner: Owner) -> Self {
        Ctx {
            coroutine: Some(coroutine),
            ids,
            owner,
            op: None,
            step: StepSlot::Idle,
            last_op: None,
            replay_only: false,
            abandoned: false,
            suspended: None,
            closing: None,
            children: Vec::new(),
            recorded_ahead: 0,
            is_virtual: false,
            peeks: false,
            function_open: false,
        }
    }
}

/// The recorded error of an operation that ended with `status`, or one
/// saying so when none was recorded.
fn recorded_error(
    error: Option<&ErrorObject>,
    status: OperationStatus,
    error_type: &str,
    what: &str,
) -> ErrorObject {
    error.cloned().unwrap_or_else(|| {
        ErrorObject::new(error_type, format!("the {what} ended with status {status}"))
    })
}

/// A recorded status this version of the SDK does not know.
fn unknown_status(op: &OpRef, name: WireName) -> ExecutionError {
    ExecutionError::UnknownOperation {
        op: op.clone(),
        what: "status",
        name: name.to_string(),
    }
}

/// FNV-1a: a hash that is the same in every process and Rust version.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn update(op: &OpRef, action: OperationAction) -> OperationUpdate {
    let mut u = OperationUpdate::new(op.id, op.op_type, action);
    u.parent_id = op.parent;
    u.name = op.name.clone();
    u.sub_type = op.sub_type.clone();
    u
}

#[cfg(test)]
mod size_tests {
    /// A step body handed to the driver is moved a few times per step:
    /// past 256 bytes each copy takes glibc's slower `memcpy` path (+200
    /// instructions per live step, measured when a field grew it to 264).
    #[test]
    fn a_step_run_stays_within_256_bytes() {
        let run = std::mem::size_of::<super::StepRun>();
        assert!(run <= 256, "a step run is {run} bytes");
    }
}

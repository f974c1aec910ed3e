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

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use durable_yield_codecs::{Json, PayloadContext, to_payload};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::batch::{
    BatchItemStatus, BatchSummary, CompletionPolicy, CompletionReason, MAX_CONTEXT_RESULT, Nesting,
    RawBatch, RawItem,
};
use crate::coroutine::{BoxFuture, Coroutine, Resumed};
use crate::error::{ExecutionError, OpRef};
use crate::history::History;
use crate::id::IdGenerator;
use crate::model::{
    CallbackOptions, ChainedInvokeOptions, ContextOptions, ErrorObject, IdMap, Millis, Operation,
    OperationAction, OperationId, OperationStatus, OperationType, OperationUpdate, Payload,
    StepOptions, WaitOptions, WireName,
};
use crate::observe::{FunctionOutcome, Observation, Observer};
use crate::protocol::{
    BatchKind, BatchReply, BatchRequest, ContextBody, Fatal, RecordedOutcome, Request, Response,
    StepOutcome, WorkflowResult,
};
use crate::retry::{ExponentialBackoff, FailedAttempt, RetryStrategy, unit_random, whole_seconds};
use crate::workflow::{BoxError, StepContext, StepFailure, StepSemantics, Workflow, WorkflowFn};

/// The subtype written on steps.
pub const STEP_SUBTYPE: &str = "Step";
/// The subtype written on waits.
pub const WAIT_SUBTYPE: &str = "Wait";
/// The subtype written on callbacks.
pub const CALLBACK_SUBTYPE: &str = "Callback";
/// The longest callback timeout the service accepts, in seconds.
pub const MAX_CALLBACK_TIMEOUT_SECONDS: u32 = 99_999_999;
/// The subtype written on chained invokes.
pub const INVOKE_SUBTYPE: &str = "ChainedInvoke";
/// The subtype written on wait-for-condition steps.
pub const CONDITION_SUBTYPE: &str = "WaitForCondition";
/// The subtype written on child contexts.
pub const CHILD_SUBTYPE: &str = "RunInChildContext";
/// The longest wait the service accepts, in seconds (366 days).
pub const MAX_WAIT_SECONDS: u64 = 31_622_400;
/// The longest operation name the service accepts, in bytes.
pub const MAX_NAME_LEN: usize = 256;

/// The largest payload one operation may checkpoint (1 MiB; the service
/// documents 1 MB for every operation but the execution's own result). A
/// step result over it fails the step with `PayloadTooLarge` before
/// anything is sent.
pub const MAX_OPERATION_PAYLOAD: usize = 1024 * 1024;

/// How an invocation of the workflow ended.
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

/// Identifies a step body handed out with [`Action::RunStep`]; report its
/// outcome with [`Interpreter::step_finished`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StepHandle {
    ctx: u32,
    seq: u64,
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
    /// The step's subtype (`Step`, or `WaitForCondition` for a check).
    pub sub_type: &'static str,
    /// The body; resolves to the encoded result or the error to record.
    pub future: BoxFuture<StepOutcome>,
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
}

type CtxId = u32;

struct LiveStep {
    op: OpRef,
    attempt: u32,
    send_start: bool,
    retry: Option<Arc<dyn RetryStrategy>>,
    /// A wait-for-condition check: its wait strategy, and whether the
    /// check found the condition met.
    condition: Option<(Arc<dyn RetryStrategy>, Arc<AtomicBool>)>,
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
    Started(CtxId, LiveStep),
    /// A retry was scheduled: suspend until it is due.
    Retried(CtxId, OperationId),
    /// A callback's START was acknowledged: hand out its id.
    CallbackStarted(CtxId, OpRef),
    /// A chained invoke's START was acknowledged: it may have failed at
    /// once (an unknown function), else wait for the target.
    InvokeStarted(CtxId, OpRef),
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
    Fail(ExecutionError),
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
    /// The step whose body it is about to send.
    live: Option<LiveStep>,
    /// The step whose body runs.
    running: Option<LiveStep>,
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
    names: Vec<Cow<'static, str>>,
    bodies: Vec<Option<ContextBody>>,
    branches: Vec<Branch>,
    next: usize,
    active: usize,
    succeeded: usize,
    failed: usize,
    max_concurrency: usize,
    policy: CompletionPolicy,
    rebuild: Option<Rebuild>,
    done: bool,
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
    entropy: u64,
    contexts: Vec<Ctx>,
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
    /// Checkpoints handed out and not yet answered, in order.
    awaiting: VecDeque<(CheckpointHandle, After)>,
    next_checkpoint: u64,
    /// Step bodies handed out and not yet reported (abandoned ones aside).
    in_flight: usize,
    ending: Option<Ending>,
    error: Option<ExecutionError>,
    replayed: u64,
    executed: u64,
    /// How many recorded operations the root holds, and each child context
    /// (by the id of its CONTEXT operation), counted once.
    recorded_in_root: u32,
    recorded_per_context: IdMap<u32>,
    /// Lifecycle observations, when a driver asked for them.
    observer: Option<Box<Observer>>,
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
        let history = History::new(operations);
        let execution_seed =
            history.execution().map_or(0, |e| e.id.fingerprint()) ^ fnv1a(execution_arn.as_bytes());
        let execution_arn: Arc<str> = Arc::from(execution_arn);
        let mut interpreter = Interpreter {
            history,
            execution_arn: execution_arn.clone(),
            execution_seed,
            now: 0,
            entropy: 0,
            contexts: Vec::new(),
            batches: Vec::new(),
            ready: VecDeque::new(),
            outbox: VecDeque::new(),
            deferred: Vec::new(),
            deferred_epoch: 0,
            awaiting: VecDeque::new(),
            next_checkpoint: 0,
            in_flight: 0,
            ending: None,
            error: None,
            replayed: 0,
            executed: 0,
            recorded_in_root: 0,
            recorded_per_context: IdMap::default(),
            observer: None,
        };
        for op in interpreter.history.operations() {
            match op.parent_id {
                Some(parent) => *interpreter.recorded_per_context.entry(parent).or_insert(0) += 1,
                None if op.op_type != OperationType::Execution => interpreter.recorded_in_root += 1,
                None => {}
            }
        }
        match interpreter.decode_input::<I>() {
            Ok(input) => {
                let coroutine = Coroutine::new(|yielder| {
                    let run = workflow.start(Workflow::new(yielder, execution_arn, None), input);
                    Box::pin(async move {
                        let output = run.await?;
                        // The output leaves the execution (to its caller).
                        let cx = PayloadContext::DETACHED;
                        to_payload(&Json, &output, &cx)
                            .map(Payload::from)
                            .map_err(|e| {
                                ExecutionError::InvalidOutput(e.to_string()).to_error_object()
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
                    let object = error.to_error_object();
                    self.error = Some(*error);
                    return Some(self.finish(Outcome::Failed(object)));
                }
                Some(Ending::Outcome(outcome)) => {
                    // Updates queued before the end are sent first.
                    if !self.deferred.is_empty() {
                        self.emit(Vec::new(), After::Nothing, false);
                    }
                    if !self.outbox.is_empty() || !self.awaiting.is_empty() {
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
            if let Some((ctx, response)) = self.ready.pop_front() {
                self.resume(ctx, response);
                continue;
            }
            if self.in_flight > 0 || !self.awaiting.is_empty() {
                return None;
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

    /// Holds back an update that no context waits for.
    fn defer(&mut self, update: OperationUpdate) {
        if self.deferred.is_empty() {
            self.deferred_epoch += 1;
        }
        self.deferred.push(update);
    }

    /// Whether updates that no context waits for are held back.
    fn has_deferred(&self) -> bool {
        !self.deferred.is_empty() && self.ending.is_none()
    }

    /// Whether updates that no context waits for are held back (the
    /// STARTs of child contexts and of step attempts whose bodies are
    /// running: they travel with the next checkpoint, so that a fast
    /// step's START and outcome share one request), and if so a number
    /// that changes each time the held updates start anew (after the
    /// earlier ones were sent): a driver that lets them wait a while
    /// measures the wait from when the number changed.
    pub fn deferred_epoch(&self) -> Option<u64> {
        self.has_deferred().then_some(self.deferred_epoch)
    }

    /// Hands the held-back updates out now, as a checkpoint of their own
    /// (returned by the next [`Interpreter::poll`], answered like any
    /// other), without waiting for a body to finish. A driver calls it when
    /// a body has been running for a while, so that the service records
    /// that the operation started even if the process dies before the body
    /// ends. Does nothing when nothing is held back.
    pub fn send_deferred(&mut self) {
        if self.has_deferred() {
            self.emit(Vec::new(), After::Nothing, false);
        }
    }

    fn finish(&mut self, outcome: Outcome) -> Action {
        if let Some(observer) = self.observer.as_deref_mut() {
            // Contexts whose code waits: it stops here, unfinished.
            for c in &mut self.contexts {
                if std::mem::take(&mut c.function_open) {
                    if let Some(op) = &c.op {
                        observer.function_ended(op, FunctionOutcome::Incomplete, None);
                    }
                }
            }
        }
        self.ending = Some(Ending::Finished);
        self.ready.clear();
        self.outbox.clear();
        // Dropping the coroutines ends every context.
        self.contexts.clear();
        self.batches.clear();
        Action::Finish(outcome)
    }

    /// Sets the runtime's clock (epoch ms): the time step contexts report
    /// ([`StepContext::now`]) and `Workflow::now` records. The interpreter
    /// reads no clock itself; a driver sets it before polling.
    pub fn set_now(&mut self, now: Millis) {
        self.now = now;
    }

    /// Sets the runtime's randomness for this invocation, which
    /// `Workflow::random` and `Workflow::uuid` draw from (mixed with the
    /// execution, the step and the attempt). The interpreter reads no
    /// randomness itself; a driver sets it once, before the first poll.
    pub fn set_entropy(&mut self, entropy: u64) {
        self.entropy = entropy;
    }

    /// A seed unique to this execution, step and attempt.
    fn step_seed(&self, op: &OpRef, attempt: u32) -> u64 {
        self.execution_seed ^ op.id.fingerprint().rotate_left(17) ^ u64::from(attempt)
    }

    /// How many recorded operations the context `parent` holds.
    fn recorded(&self, parent: Option<OperationId>) -> u32 {
        match parent {
            None => self.recorded_in_root,
            Some(p) => self.recorded_per_context.get(&p).copied().unwrap_or(0),
        }
    }

    /// Whether the context was abandoned, itself or through an ancestor
    /// (`abandon` marks every context below, and contexts started later
    /// inherit the mark), or is gone (the invocation is over).
    fn dead(&self, ctx: CtxId) -> bool {
        self.contexts.get(ctx as usize).is_none_or(|c| c.abandoned)
    }

    fn fatal(&mut self, error: ExecutionError) {
        if !matches!(self.ending, Some(Ending::Finished | Ending::Fatal(_))) {
            self.ending = Some(Ending::Fatal(Box::new(error)));
            // Nothing else is handed out: the execution fails at once.
            self.outbox.clear();
            self.ready.clear();
        }
    }

    /// Hands out a checkpoint with the deferred updates first.
    fn emit(&mut self, updates: Vec<OperationUpdate>, after: After, wait_for_response: bool) {
        let updates = if self.deferred.is_empty() {
            updates
        } else {
            let mut all = std::mem::take(&mut self.deferred);
            all.extend(updates);
            all
        };
        if let Some(observer) = self.observer.as_deref_mut() {
            observer.sending(&updates);
        }
        let handle = CheckpointHandle(self.next_checkpoint);
        self.next_checkpoint += 1;
        self.awaiting.push_back((handle, after));
        self.outbox.push_back(Action::Checkpoint {
            handle,
            updates,
            wait_for_response,
        });
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
            Next::Fail(error) => self.fatal(error),
        }
    }

    /// Reports the outcome of the step body handed out with `handle`. A
    /// later poll checkpoints it: a success, a retry (if the step's
    /// strategy says so) or a failure. The outcome of a body whose context
    /// was abandoned (its batch ended without it) is dropped.
    pub fn step_finished(&mut self, handle: StepHandle, outcome: StepOutcome) {
        let ctx = handle.ctx;
        let live = match self.contexts.get_mut(ctx as usize) {
            Some(c) if c.running.as_ref().is_some_and(|l| l.op.seq == handle.seq) => {
                c.running.take()
            }
            _ => None,
        };
        let Some(live) = live else {
            if !self.dead(ctx) {
                self.misuse("step_finished for a step that is not running");
            }
            return;
        };
        self.in_flight -= 1;
        if self.dead(ctx) {
            return;
        }
        let outcome = match outcome {
            Ok(payload) if payload.len() > MAX_OPERATION_PAYLOAD => {
                Err(StepFailure::permanent(ErrorObject::new(
                    "PayloadTooLarge",
                    format!(
                        "the result of {} is {} bytes, over the limit of {MAX_OPERATION_PAYLOAD} \
                         bytes per operation; return a smaller value (e.g. a reference to where \
                         the data is stored)",
                        live.op,
                        payload.len()
                    ),
                )))
            }
            other => other,
        };
        self.executed += 1;
        // The attempt's START was deferred when its body was handed out
        // (`Request::Run`): unless it was sent meanwhile, it leads the
        // outcome's request. Taking the deferred updates here is what
        // `emit` would do, without a second vector.
        let mut updates = std::mem::take(&mut self.deferred);
        if let Some((strategy, done)) = &live.condition {
            let next = self.checked(ctx, &live, strategy, done, outcome, updates);
            return self.apply(ctx, next);
        }
        let next = match outcome {
            Ok(payload) => {
                let mut u = update(&live.op, OperationAction::Succeed);
                u.payload = Some(payload.clone());
                updates.push(u);
                Next::Checkpoint(updates, After::Resume(ctx, Response::Step(Ok(payload))))
            }
            Err(failure) => {
                let (error, source, retryable) = failure.into_parts();
                // What is recorded is what the workflow sees, now and on
                // every replay: cut to the service's limits first.
                let error = error.truncated();
                if retryable {
                    let retry = live.retry.as_ref();
                    self.failed_attempt(ctx, &live.op, live.attempt, retry, error, source, updates)
                } else {
                    // The SDK's own failures of a result (too large, not
                    // encodable) would fail every attempt the same way.
                    let mut u = update(&live.op, OperationAction::Fail);
                    u.error = Some(Box::new(error.clone()));
                    updates.push(u);
                    Next::Checkpoint(updates, After::Resume(ctx, Response::Step(Err(error))))
                }
            }
        };
        self.apply(ctx, next);
    }

    /// A condition check ended: its new state is checkpointed with a
    /// SUCCEED when the condition is met, else with a RETRY (the wait
    /// strategy's delay, the state as the payload, no error) or, when the
    /// strategy gives up, a FAIL. A check that failed fails the operation
    /// (no retry: the wait strategy is for unmet conditions).
    fn checked(
        &self,
        ctx: CtxId,
        live: &LiveStep,
        strategy: &Arc<dyn RetryStrategy>,
        done: &AtomicBool,
        outcome: StepOutcome,
        mut updates: Vec<OperationUpdate>,
    ) -> Next {
        let op = &live.op;
        let fail = |error: ErrorObject, mut updates: Vec<OperationUpdate>| {
            let error = error.truncated();
            let mut u = update(op, OperationAction::Fail);
            u.error = Some(Box::new(error.clone()));
            updates.push(u);
            Next::Checkpoint(updates, After::Resume(ctx, Response::Step(Err(error))))
        };
        let state = match outcome {
            Ok(state) => state,
            Err(failure) => return fail(failure.into_parts().0, updates),
        };
        if done.load(Ordering::Acquire) {
            let mut u = update(op, OperationAction::Succeed);
            u.payload = Some(state.clone());
            updates.push(u);
            return Next::Checkpoint(updates, After::Resume(ctx, Response::Step(Ok(state))));
        }
        let not_met = ErrorObject::new(
            "ConditionNotMet",
            format!("check {} of {op} found the condition not met", live.attempt),
        );
        let random = unit_random(self.step_seed(op, live.attempt));
        match strategy.next_delay(&FailedAttempt::new(&not_met, live.attempt, random)) {
            Some(delay) => {
                let mut u = update(op, OperationAction::Retry);
                u.step_options = Some(StepOptions {
                    next_attempt_delay_seconds: Some(whole_seconds(delay)),
                });
                u.payload = Some(state);
                updates.push(u);
                Next::Checkpoint(updates, After::Retried(ctx, op.id))
            }
            None => fail(
                ErrorObject::new(
                    "WaitForConditionExhausted",
                    format!(
                        "{op} checked the condition {} times without it being met, as many as \
                         its wait strategy allows",
                        live.attempt
                    ),
                ),
                updates,
            ),
        }
    }

    /// A failed attempt: asks the step's retry strategy, and checkpoints a
    /// RETRY (then suspends) or a FAIL (then resumes with the error).
    #[allow(clippy::too_many_arguments)]
    fn failed_attempt(
        &self,
        ctx: CtxId,
        op: &OpRef,
        attempt: u32,
        retry: Option<&Arc<dyn RetryStrategy>>,
        error: ErrorObject,
        source: Option<BoxError>,
        mut updates: Vec<OperationUpdate>,
    ) -> Next {
        // Jitter differs per execution, step and attempt, and is the same
        // for the same ones (it does not use the invocation's entropy).
        let mut failed =
            FailedAttempt::new(&error, attempt, unit_random(self.step_seed(op, attempt)));
        if let Some(source) = source.as_deref() {
            failed = failed.with_source(source);
        }
        let delay = match retry {
            Some(strategy) => strategy.next_delay(&failed),
            None => ExponentialBackoff::default().next_delay(&failed),
        };
        match delay {
            Some(delay) => {
                let mut u = update(op, OperationAction::Retry);
                u.step_options = Some(StepOptions {
                    next_attempt_delay_seconds: Some(whole_seconds(delay)),
                });
                u.error = Some(Box::new(error));
                updates.push(u);
                Next::Checkpoint(updates, After::Retried(ctx, op.id))
            }
            None => {
                let mut u = update(op, OperationAction::Fail);
                u.error = Some(Box::new(error.clone()));
                updates.push(u);
                Next::Checkpoint(updates, After::Resume(ctx, Response::Step(Err(error))))
            }
        }
    }

    /// Reports that the updates of the [`Action::Checkpoint`] `handle` were
    /// accepted, with the operations the response carried (new and changed
    /// ones, including completions that happened meanwhile). Checkpoints
    /// are answered in the order they were handed out.
    pub fn checkpoint_finished(&mut self, handle: CheckpointHandle, delta: Vec<Operation>) {
        let after = match self.awaiting.front() {
            Some((h, _)) if *h == handle => match self.awaiting.pop_front() {
                Some((_, after)) => after,
                None => return,
            },
            _ => {
                self.misuse("checkpoint_finished out of order or without a checkpoint");
                return;
            }
        };
        if let Some(observer) = self.observer.as_deref_mut() {
            observer.merging(&delta);
        }
        self.history.merge(delta);
        match after {
            After::Nothing => {}
            After::Resume(ctx, response) => {
                if !self.dead(ctx) {
                    self.ready.push_back((ctx, response));
                }
            }
            After::Started(ctx, live) => {
                if !self.dead(ctx) {
                    let context = self.step_context(&live.op, live.attempt);
                    self.contexts[ctx as usize].live = Some(live);
                    self.ready.push_back((ctx, Response::Execute(context)));
                }
            }
            After::Retried(ctx, id) => {
                let due = self
                    .history
                    .get(&id)
                    .and_then(|o| o.step_details.as_ref())
                    .and_then(|d| d.next_attempt_timestamp);
                self.apply(ctx, Next::Suspend(due));
            }
            After::WaitStarted(ctx, id) => {
                let next = match self.history.get(&id) {
                    Some(o)
                        if matches!(
                            o.status,
                            OperationStatus::Succeeded | OperationStatus::Cancelled
                        ) =>
                    {
                        Next::Resume(Response::Continue)
                    }
                    recorded => Next::Suspend(
                        recorded
                            .and_then(|o| o.wait_details.as_ref())
                            .and_then(|d| d.scheduled_end_timestamp),
                    ),
                };
                if !self.dead(ctx) {
                    self.apply(ctx, next);
                }
            }
            After::BranchClosed {
                batch,
                index,
                outcome,
            } => self.branch_done(batch, index, outcome),
            After::InvokeStarted(ctx, op) => {
                if !self.dead(ctx) {
                    let next = self.invoke_outcome(&op);
                    self.apply(ctx, next);
                }
            }
            After::CallbackStarted(ctx, op) => {
                if !self.dead(ctx) {
                    let next = self.callback_id(&op);
                    self.apply(ctx, next);
                }
            }
        }
    }

    /// Merges operations the service reported outside an answer to
    /// [`Action::Checkpoint`] (e.g. when a driver sends held-back updates
    /// later).
    pub fn merge_operations(&mut self, operations: Vec<Operation>) {
        if let Some(observer) = self.observer.as_deref_mut() {
            observer.merging(&operations);
        }
        self.history.merge(operations);
    }

    fn misuse(&mut self, what: &str) {
        if self.ending.is_none() {
            self.fatal(ExecutionError::Internal(what.to_owned()));
        }
    }

    /// Turns on lifecycle observations (see [`Observation`]) for this
    /// invocation; `updated` are the operations the service changed since
    /// the last invocation (the envelope's `UpdatedOperationIds`). Call it
    /// before the first poll, and collect what was seen with
    /// [`Interpreter::take_observations`]. Without it the interpreter keeps
    /// no such bookkeeping.
    pub fn observe(&mut self, updated: impl IntoIterator<Item = OperationId>) {
        self.observer = Some(Box::new(Observer::new(updated)));
    }

    /// What was observed since the last call, in order (empty unless
    /// [`Interpreter::observe`] was called). A driver takes them after each
    /// [`Interpreter::poll`], before carrying out the action it returned, so
    /// that an operation's start comes before its attempts and its end
    /// before its checkpoint is sent.
    pub fn take_observations(&mut self) -> Vec<Observation> {
        match self.observer.as_deref_mut() {
            Some(observer) => observer.take(),
            None => Vec::new(),
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

    fn resume(&mut self, ctx: CtxId, response: Response) {
        if self.dead(ctx) {
            return;
        }
        let c = &mut self.contexts[ctx as usize];
        let replaying = c.recorded_ahead > 0;
        let Some(coroutine) = c.coroutine.as_mut() else {
            return;
        };
        let answered = c.last_op.as_ref().map(|op| op.id);
        REPLAYING.with(|r| r.set(replaying));
        ANSWERED.with(|a| a.set(answered));
        let resumed = coroutine.resume(response);
        REPLAYING.with(|r| r.set(false));
        ANSWERED.with(|a| a.set(None));
        let last_op = || self.contexts[ctx as usize].last_op.clone();
        match resumed {
            Resumed::Yielded(Request::Step {
                name,
                retry,
                semantics,
            }) => self.on_step(ctx, name, retry, semantics),
            Resumed::Yielded(Request::Run(future)) => {
                let c = &mut self.contexts[ctx as usize];
                match c.live.take() {
                    Some(mut live) => {
                        let context = self.step_context(&live.op, live.attempt);
                        let handle = StepHandle {
                            ctx,
                            seq: live.op.seq,
                        };
                        let parent_id = live.op.parent;
                        let sub_type = if live.condition.is_some() {
                            CONDITION_SUBTYPE
                        } else {
                            STEP_SUBTYPE
                        };
                        if live.send_start {
                            // The attempt's START needs no answer: it rides
                            // with the next checkpoint (usually the
                            // attempt's own outcome), or goes out on its
                            // own while the body runs if the driver asks
                            // (`send_deferred`).
                            live.send_start = false;
                            self.defer(update(&live.op, OperationAction::Start));
                        }
                        self.contexts[ctx as usize].running = Some(live);
                        self.in_flight += 1;
                        self.outbox.push_back(Action::RunStep(StepRun {
                            handle,
                            context,
                            parent_id,
                            sub_type,
                            future,
                        }));
                    }
                    None => self.fatal(ExecutionError::Internal(
                        "a step body was sent for no step".into(),
                    )),
                }
            }
            Resumed::Yielded(Request::Wait { name, duration }) => self.on_wait(ctx, name, duration),
            Resumed::Yielded(Request::Child {
                name,
                sub_type,
                body,
                is_virtual,
            }) => self.on_child(ctx, name, sub_type, body, is_virtual),
            Resumed::Yielded(Request::Batch(request)) => self.on_batch(ctx, request),
            Resumed::Yielded(Request::Callback {
                name,
                timeout_seconds,
                heartbeat_timeout_seconds,
            }) => self.on_callback(ctx, name, timeout_seconds, heartbeat_timeout_seconds),
            Resumed::Yielded(Request::CallbackResult { op }) => self.on_callback_result(ctx, op),
            Resumed::Yielded(Request::Invoke {
                name,
                function_name,
                tenant_id,
                payload,
            }) => self.on_invoke(ctx, name, function_name, tenant_id, payload),
            Resumed::Yielded(Request::Condition { name, strategy }) => {
                self.on_condition(ctx, name, strategy)
            }
            Resumed::Yielded(Request::CloseBatch(encoded)) => self.on_close_batch(ctx, encoded),
            Resumed::Yielded(Request::Fatal(Fatal::Decode(error))) => {
                let op = last_op();
                self.fatal(ExecutionError::Codec { op, error })
            }
            Resumed::Yielded(Request::Fatal(Fatal::Protocol(what))) => {
                self.fatal(ExecutionError::Internal(what.to_owned()))
            }
            Resumed::Returned(result) => self.on_returned(ctx, result),
            Resumed::ForeignAwait => {
                let last_op = last_op();
                self.fatal(ExecutionError::ForeignAwait { last_op })
            }
            Resumed::Panicked(message) => {
                let last_op = last_op();
                self.fatal(ExecutionError::WorkflowPanicked { message, last_op })
            }
        }
    }

    fn step_context(&self, op: &OpRef, attempt: u32) -> StepContext {
        StepContext {
            id: op.id,
            name: op.name.clone(),
            attempt,
            execution_arn: self.execution_arn.clone(),
            now: self.now,
            seed: self.entropy ^ self.step_seed(op, attempt),
        }
    }

    /// Checks what the service would reject or this SDK cannot replay
    /// before an operation is used: its name, and a recorded type this
    /// version does not know (before comparing it with the request). A
    /// recorded status it does not know is handled where statuses are.
    #[allow(clippy::result_large_err)]
    fn check(&self, op: &OpRef, recorded: Option<&Operation>) -> Result<(), ExecutionError> {
        if let Some(name) = op.name.as_deref() {
            let reason = if name.is_empty() {
                Some("the name is empty".to_owned())
            } else if name.len() > MAX_NAME_LEN {
                Some(format!("the name is {} bytes long", name.len()))
            } else {
                name.chars()
                    .find(|c| !(' '..='~').contains(c))
                    .map(|c| format!("the name contains {c:?}"))
            };
            if let Some(reason) = reason {
                return Err(ExecutionError::InvalidName {
                    op: op.clone(),
                    reason,
                });
            }
        }
        if let Some(recorded) = recorded {
            if let OperationType::Unknown(name) = recorded.op_type {
                return Err(ExecutionError::UnknownOperation {
                    op: op.clone(),
                    what: "type",
                    name: name.to_string(),
                });
            }
            self.matches(recorded, op)?;
        }
        Ok(())
    }

    /// The next operation of context `ctx`, and where history records it.
    fn next_op(
        &mut self,
        ctx: CtxId,
        op_type: OperationType,
        sub_type: &'static str,
        name: Option<Cow<'static, str>>,
    ) -> (OpRef, Option<usize>) {
        let c = &mut self.contexts[ctx as usize];
        let (id, seq) = c.ids.next_id();
        // Looked up once, here: the position of its record, if any.
        let recorded = self.history.position(&id);
        if c.is_virtual {
            c.recorded_ahead = u32::from(self.history.position(&c.ids.peek_id()).is_some());
        } else if recorded.is_some() {
            c.recorded_ahead = c.recorded_ahead.saturating_sub(1);
        }
        let op = OpRef {
            seq,
            id,
            op_type,
            sub_type: Some(Cow::Borrowed(sub_type)),
            name,
            parent: c.ids.parent().copied(),
        };
        if let Some(observer) = self.observer.as_deref_mut() {
            observer.reached(&op, recorded.map(|at| self.history.at(at)));
        }
        (op, recorded)
    }

    /// Remembers `op` as the context's last operation, for error messages.
    fn set_last(&mut self, ctx: CtxId, op: OpRef) {
        if let Some(c) = self.contexts.get_mut(ctx as usize) {
            c.last_op = Some(op);
        }
    }

    /// Checks that the recorded operation is the one requested.
    #[allow(clippy::result_large_err)]
    fn matches(&self, recorded: &Operation, op: &OpRef) -> Result<(), ExecutionError> {
        if recorded.op_type == op.op_type
            && recorded.sub_type.as_deref() == op.sub_type.as_deref()
            && recorded.name.as_deref() == op.name.as_deref()
            && recorded.parent_id == op.parent
        {
            return Ok(());
        }
        let recorded_ref = Self::recorded_ref(op.seq, recorded);
        let parent = |p: Option<&OperationId>| match p {
            Some(p) => format!(" in context {p}"),
            None => String::new(),
        };
        Err(ExecutionError::NonDeterministic {
            seq: op.seq,
            id: op.id,
            recorded: format!(
                "{}{}",
                recorded_ref.describe(),
                parent(recorded.parent_id.as_ref())
            ),
            requested: format!("{}{}", op.describe(), parent(op.parent.as_ref())),
        })
    }

    /// The recorded operation as an [`OpRef`] at position `seq`, for
    /// error messages.
    fn recorded_ref(seq: u64, recorded: &Operation) -> OpRef {
        OpRef {
            seq,
            id: recorded.id,
            op_type: recorded.op_type,
            sub_type: recorded.sub_type.clone().map(Cow::Owned),
            name: recorded.name.clone().map(Cow::Owned),
            parent: recorded.parent_id,
        }
    }

    /// A virtual context (or flat branch) whose id holds a record: the
    /// history was written by code that recorded a context there.
    fn not_virtual(op: &OpRef, recorded: &Operation) -> ExecutionError {
        ExecutionError::NonDeterministic {
            seq: op.seq,
            id: op.id,
            recorded: Self::recorded_ref(op.seq, recorded).describe(),
            requested: format!("{} that records nothing (virtual)", op.describe()),
        }
    }

    /// New work in a context that may only replay (see `Ctx::replay_only`).
    fn not_recorded(op: &OpRef, recorded: Option<&Operation>) -> ExecutionError {
        ExecutionError::NonDeterministic {
            seq: op.seq,
            id: op.id,
            recorded: match recorded {
                Some(r) => format!("it unfinished (status {})", r.status),
                None => "nothing".to_owned(),
            },
            requested: format!(
                "{} while rebuilding a result too large to have been checkpointed from its \
                 recorded operations (the code must make the same calls as when it ran)",
                op.describe()
            ),
        }
    }

    fn on_step(
        &mut self,
        ctx: CtxId,
        name: Option<Cow<'static, str>>,
        retry: Option<Arc<dyn RetryStrategy>>,
        semantics: StepSemantics,
    ) {
        let (op, at) = self.next_op(ctx, OperationType::Step, STEP_SUBTYPE, name);
        let at_most_once = semantics == StepSemantics::AtMostOncePerRetry;
        let recorded = at.map(|at| self.history.at(at));
        let replay_only = self.contexts[ctx as usize].replay_only;
        let next = if let Err(e) = self.check(&op, recorded) {
            Next::Fail(e)
        } else {
            match recorded {
                Some(r) if replay_only && !r.status.is_terminal() => {
                    Next::Fail(Self::not_recorded(&op, Some(r)))
                }
                None if replay_only => Next::Fail(Self::not_recorded(&op, None)),
                None => self.execute(ctx, &op, 1, retry, at_most_once, true),
                Some(recorded) => {
                    let details = recorded.step_details.as_deref();
                    let attempts = details.and_then(|d| d.attempt).unwrap_or(0);
                    let next = attempts.saturating_add(1);
                    match recorded.status {
                        OperationStatus::Succeeded => {
                            let payload = details
                                .and_then(|d| d.result.clone())
                                .unwrap_or_else(|| Payload::from("null"));
                            self.replayed += 1;
                            Next::Resume(Response::Step(Ok(payload)))
                        }
                        status @ (OperationStatus::Failed
                        | OperationStatus::Cancelled
                        | OperationStatus::TimedOut
                        | OperationStatus::Stopped) => {
                            let error = details.and_then(|d| d.error.as_ref());
                            self.replayed += 1;
                            let error = recorded_error(error, status, "StepFailed", "step");
                            Next::Resume(Response::Step(Err(error)))
                        }
                        // An at-most-once attempt was interrupted: it counts
                        // as failed and never runs again silently.
                        OperationStatus::Started if at_most_once => {
                            let error = ErrorObject::new(
                                "StepInterrupted",
                                format!(
                                    "attempt {next} of {op} was started (its START was \
                                     recorded) but no outcome was recorded: the body may have \
                                     run in full, in part or not at all, so at-most-once \
                                     semantics count the attempt as failed"
                                ),
                            );
                            let retry = retry.as_ref();
                            self.failed_attempt(ctx, &op, next, retry, error, None, Vec::new())
                        }
                        // An at-least-once attempt was interrupted: run it
                        // again, without a new START.
                        OperationStatus::Started => {
                            self.execute(ctx, &op, next, retry, false, false)
                        }
                        OperationStatus::Ready => {
                            self.execute(ctx, &op, next, retry, at_most_once, true)
                        }
                        OperationStatus::Pending => {
                            Next::Suspend(details.and_then(|d| d.next_attempt_timestamp))
                        }
                        OperationStatus::Unknown(name) => Next::Fail(unknown_status(&op, name)),
                    }
                }
            }
        };
        self.set_last(ctx, op);
        self.apply(ctx, next);
    }

    /// Prepares a live attempt of the step `op`. At most once: START first,
    /// acknowledged, then the body. At least once: START (if `send_start`)
    /// is deferred when the body is handed out, so that it travels with the
    /// outcome of a fast body, or alone while a slow one runs.
    fn execute(
        &mut self,
        ctx: CtxId,
        op: &OpRef,
        attempt: u32,
        retry: Option<Arc<dyn RetryStrategy>>,
        at_most_once: bool,
        send_start: bool,
    ) -> Next {
        let live = LiveStep {
            op: op.clone(),
            attempt,
            send_start: send_start && !at_most_once,
            retry,
            condition: None,
        };
        if at_most_once && send_start {
            return Next::Checkpoint(
                vec![update(op, OperationAction::Start)],
                After::Started(ctx, live),
            );
        }
        let context = self.step_context(op, attempt);
        self.contexts[ctx as usize].live = Some(live);
        Next::Resume(Response::Execute(context))
    }

    fn on_wait(&mut self, ctx: CtxId, name: Option<Cow<'static, str>>, duration: Duration) {
        let (op, at) = self.next_op(ctx, OperationType::Wait, WAIT_SUBTYPE, name);
        // Whole seconds, rounded up, like retry delays.
        let seconds = duration
            .as_secs()
            .saturating_add(u64::from(duration.subsec_nanos() > 0));
        let recorded = at.map(|at| self.history.at(at));
        let replay_only = self.contexts[ctx as usize].replay_only;
        let next = if let Err(e) = self.check(&op, recorded) {
            Next::Fail(e)
        } else if !(1..=MAX_WAIT_SECONDS).contains(&seconds) {
            Next::Fail(ExecutionError::InvalidWaitDuration {
                op: op.clone(),
                duration,
            })
        } else if let Some(recorded) = recorded {
            match recorded.status {
                OperationStatus::Succeeded | OperationStatus::Cancelled => {
                    self.replayed += 1;
                    Next::Resume(Response::Continue)
                }
                OperationStatus::Unknown(name) => Next::Fail(unknown_status(&op, name)),
                OperationStatus::Started if replay_only => {
                    Next::Fail(Self::not_recorded(&op, Some(recorded)))
                }
                OperationStatus::Started => Next::Suspend(
                    recorded
                        .wait_details
                        .as_ref()
                        .and_then(|d| d.scheduled_end_timestamp),
                ),
                status => Next::Fail(ExecutionError::UnexpectedStatus {
                    op: op.clone(),
                    status,
                }),
            }
        } else if replay_only {
            Next::Fail(Self::not_recorded(&op, None))
        } else {
            let mut start = update(&op, OperationAction::Start);
            start.wait_options = Some(WaitOptions {
                wait_seconds: seconds as u32,
            });
            Next::Checkpoint(vec![start], After::WaitStarted(ctx, op.id))
        };
        self.set_last(ctx, op);
        self.apply(ctx, next);
    }

    fn on_callback(
        &mut self,
        ctx: CtxId,
        name: Option<Cow<'static, str>>,
        timeout_seconds: u32,
        heartbeat_timeout_seconds: u32,
    ) {
        let (op, at) = self.next_op(ctx, OperationType::Callback, CALLBACK_SUBTYPE, name);
        let recorded = at.map(|at| self.history.at(at));
        let replay_only = self.contexts[ctx as usize].replay_only;
        let next = if let Err(e) = self.check(&op, recorded) {
            Next::Fail(e)
        } else if let Some(reason) = [
            ("timeout", timeout_seconds),
            ("heartbeat timeout", heartbeat_timeout_seconds),
        ]
        .iter()
        .find(|(_, s)| *s > MAX_CALLBACK_TIMEOUT_SECONDS)
        .map(|(what, s)| {
            format!("the {what} is {s} s, over the service's {MAX_CALLBACK_TIMEOUT_SECONDS} s")
        }) {
            Next::Fail(ExecutionError::InvalidConfig {
                op: op.clone(),
                reason,
            })
        } else {
            match recorded {
                // Whatever became of it, its id is the recorded one; its
                // outcome is read when the workflow asks for it.
                Some(_) => {
                    self.replayed += 1;
                    self.callback_id(&op)
                }
                None if replay_only => Next::Fail(Self::not_recorded(&op, None)),
                None => {
                    let mut start = update(&op, OperationAction::Start);
                    start.callback_options = Some(CallbackOptions {
                        timeout_seconds,
                        heartbeat_timeout_seconds,
                    });
                    Next::Checkpoint(vec![start], After::CallbackStarted(ctx, op.clone()))
                }
            }
        };
        self.set_last(ctx, op);
        self.apply(ctx, next);
    }

    /// The id the service issued for the callback `op`.
    fn callback_id(&self, op: &OpRef) -> Next {
        let id = self
            .history
            .get(&op.id)
            .and_then(|o| o.callback_details.as_ref())
            .and_then(|d| d.callback_id.clone())
            .filter(|id| !id.is_empty());
        match id {
            Some(callback_id) => Next::Resume(Response::Callback {
                op: op.id,
                callback_id,
            }),
            None => Next::Fail(ExecutionError::InvalidHistory(format!(
                "{op} has no callback id: the service did not issue one"
            ))),
        }
    }

    fn on_callback_result(&mut self, ctx: CtxId, id: OperationId) {
        let next = match self.history.get(&id) {
            None => Next::Fail(ExecutionError::Internal(format!(
                "the result of callback {id} was asked for, but it was never created"
            ))),
            Some(op) => {
                let details = op.callback_details.as_deref();
                match op.status {
                    // The body as the sender sent it; none for an empty one.
                    OperationStatus::Succeeded => Next::Resume(Response::Step(Ok(details
                        .and_then(|d| d.result.clone())
                        .unwrap_or_else(|| Payload::from(""))))),
                    status @ (OperationStatus::Failed
                    | OperationStatus::TimedOut
                    | OperationStatus::Cancelled
                    | OperationStatus::Stopped) => {
                        let error = details.and_then(|d| d.error.as_ref());
                        let error = recorded_error(error, status, "CallbackFailed", "callback");
                        let error = match (status, error.error_type.is_some()) {
                            // The emulator stores a failure sent without an
                            // error as `{}`.
                            (OperationStatus::Failed, false) => ErrorObject {
                                error_type: Some("CallbackFailed".into()),
                                error_message: error
                                    .error_message
                                    .or_else(|| Some("the callback failed".into())),
                                ..error
                            },
                            _ => error,
                        };
                        Next::Resume(Response::Step(Err(error)))
                    }
                    OperationStatus::Unknown(name) => {
                        Next::Fail(ExecutionError::UnknownOperation {
                            op: OpRef {
                                seq: 0,
                                id,
                                op_type: OperationType::Callback,
                                sub_type: op.sub_type.clone().map(Cow::Owned),
                                name: op.name.clone().map(Cow::Owned),
                                parent: op.parent_id,
                            },
                            what: "status",
                            name: name.to_string(),
                        })
                    }
                    // Waits for someone outside: no timer to resume at.
                    _ => Next::Suspend(None),
                }
            }
        };
        self.apply(ctx, next);
    }

    fn on_invoke(
        &mut self,
        ctx: CtxId,
        name: Option<Cow<'static, str>>,
        function_name: String,
        tenant_id: Option<String>,
        payload: Result<Payload, ErrorObject>,
    ) {
        let (mut op, at) = self.next_op(ctx, OperationType::ChainedInvoke, INVOKE_SUBTYPE, name);
        let recorded = at.map(|at| self.history.at(at));
        // Versions before 0.2 named an unnamed invoke after its function:
        // executions they started still replay.
        if let Some(r) = recorded.filter(|r| {
            op.name.is_none()
                && r.op_type == OperationType::ChainedInvoke
                && r.name.as_deref() == Some(function_name.as_str())
        }) {
            op.name = r.name.clone().map(Cow::Owned);
        }
        let replay_only = self.contexts[ctx as usize].replay_only;
        let invalid = |reason: String| ExecutionError::InvalidConfig {
            op: op.clone(),
            reason,
        };
        let next = if let Err(e) = self.check(&op, recorded) {
            Next::Fail(e)
        } else if recorded.is_some() {
            // Never invoked again: its outcome, or a wait for it.
            self.replayed += 1;
            self.invoke_outcome(&op)
        } else if replay_only {
            Next::Fail(Self::not_recorded(&op, None))
        } else if function_name.is_empty() || function_name.len() > 256 {
            Next::Fail(invalid(format!(
                "the function name must be 1 to 256 characters, not {:?}",
                function_name
            )))
        } else if tenant_id
            .as_deref()
            .is_some_and(|t| t.is_empty() || t.len() > 256)
        {
            Next::Fail(invalid("a tenant id must be 1 to 256 characters".into()))
        } else {
            match payload {
                Err(error) => Next::Fail(invalid(format!(
                    "the input could not be encoded: {}",
                    error.error_message.unwrap_or_default()
                ))),
                Ok(payload) if payload.len() > MAX_OPERATION_PAYLOAD => {
                    Next::Fail(invalid(format!(
                        "the input is {} bytes, over the limit of {MAX_OPERATION_PAYLOAD}",
                        payload.len()
                    )))
                }
                Ok(payload) => {
                    let mut start = update(&op, OperationAction::Start);
                    start.payload = Some(payload);
                    start.chained_invoke_options = Some(Box::new(ChainedInvokeOptions {
                        function_name,
                        tenant_id,
                    }));
                    Next::Checkpoint(vec![start], After::InvokeStarted(ctx, op.clone()))
                }
            }
        };
        self.set_last(ctx, op);
        self.apply(ctx, next);
    }

    /// What became of the chained invoke `op`, as recorded.
    fn invoke_outcome(&self, op: &OpRef) -> Next {
        let Some(recorded) = self.history.get(&op.id) else {
            return Next::Suspend(None);
        };
        let details = recorded.chained_invoke_details.as_deref();
        match recorded.status {
            OperationStatus::Succeeded => Next::Resume(Response::Invoked(Ok(details
                .and_then(|d| d.result.clone())
                .unwrap_or_else(|| Payload::from("null"))))),
            status @ (OperationStatus::Failed
            | OperationStatus::TimedOut
            | OperationStatus::Stopped
            | OperationStatus::Cancelled) => {
                let error = details.and_then(|d| d.error.as_ref());
                let error =
                    recorded_error(error, status, "ChainedInvokeFailed", "invoked function");
                Next::Resume(Response::Invoked(Err((status, error))))
            }
            OperationStatus::Unknown(name) => Next::Fail(unknown_status(op, name)),
            // The target runs; the service invokes this function again
            // when it ends.
            _ => Next::Suspend(None),
        }
    }

    fn on_condition(
        &mut self,
        ctx: CtxId,
        name: Option<Cow<'static, str>>,
        strategy: Arc<dyn RetryStrategy>,
    ) {
        let (op, at) = self.next_op(ctx, OperationType::Step, CONDITION_SUBTYPE, name);
        let recorded = at.map(|at| self.history.at(at));
        let replay_only = self.contexts[ctx as usize].replay_only;
        let next = if let Err(e) = self.check(&op, recorded) {
            Next::Fail(e)
        } else {
            match recorded {
                Some(r) if replay_only && !r.status.is_terminal() => {
                    Next::Fail(Self::not_recorded(&op, Some(r)))
                }
                None if replay_only => Next::Fail(Self::not_recorded(&op, None)),
                None => self.check_live(ctx, &op, 1, strategy, None, true),
                Some(recorded) => {
                    let details = recorded.step_details.as_deref();
                    let next = details
                        .and_then(|d| d.attempt)
                        .unwrap_or(0)
                        .saturating_add(1);
                    // The state the last check left, if any.
                    let state = details
                        .and_then(|d| d.result.clone())
                        .filter(|p| !p.is_empty());
                    match recorded.status {
                        OperationStatus::Succeeded => {
                            self.replayed += 1;
                            Next::Resume(Response::Step(Ok(
                                state.unwrap_or_else(|| Payload::from("null"))
                            )))
                        }
                        status @ (OperationStatus::Failed
                        | OperationStatus::Cancelled
                        | OperationStatus::TimedOut
                        | OperationStatus::Stopped) => {
                            self.replayed += 1;
                            let error = details.and_then(|d| d.error.as_ref());
                            let error = recorded_error(
                                error,
                                status,
                                "WaitForConditionFailed",
                                "condition wait",
                            );
                            Next::Resume(Response::Step(Err(error)))
                        }
                        OperationStatus::Pending => {
                            Next::Suspend(details.and_then(|d| d.next_attempt_timestamp))
                        }
                        // An interrupted check runs again, without a new START.
                        OperationStatus::Started => {
                            self.check_live(ctx, &op, next, strategy, state, false)
                        }
                        OperationStatus::Ready => {
                            self.check_live(ctx, &op, next, strategy, state, true)
                        }
                        OperationStatus::Unknown(name) => Next::Fail(unknown_status(&op, name)),
                    }
                }
            }
        };
        self.set_last(ctx, op);
        self.apply(ctx, next);
    }

    /// Prepares a live check of a wait-for-condition (at least once: its
    /// START is deferred like a step attempt's).
    fn check_live(
        &mut self,
        ctx: CtxId,
        op: &OpRef,
        attempt: u32,
        strategy: Arc<dyn RetryStrategy>,
        state: Option<Payload>,
        send_start: bool,
    ) -> Next {
        let done = Arc::new(AtomicBool::new(false));
        let context = self.step_context(op, attempt);
        self.contexts[ctx as usize].live = Some(LiveStep {
            op: op.clone(),
            attempt,
            send_start,
            retry: None,
            condition: Some((strategy, done.clone())),
        });
        Next::Resume(Response::Check {
            context,
            state,
            done,
        })
    }

    /// Starts a context running `body` for the CONTEXT operation `op`.
    fn spawn(&mut self, op: OpRef, owner: Owner, body: ContextBody, replay_only: bool) -> CtxId {
        let recorded_ahead = self.recorded(Some(op.id));
        let ids = IdGenerator::child(op.id);
        let ctx = self.spawn_with(op, owner, body, replay_only, ids);
        self.contexts[ctx as usize].recorded_ahead = recorded_ahead;
        ctx
    }

    fn spawn_with(
        &mut self,
        op: OpRef,
        owner: Owner,
        body: ContextBody,
        replay_only: bool,
        ids: IdGenerator,
    ) -> CtxId {
        let parent = match owner {
            Owner::Root => None,
            Owner::Child(parent) => Some(parent),
            Owner::Branch { batch, .. } => Some(self.batches[batch].owner),
        };
        let inherited = parent.is_some_and(|p| self.contexts[p as usize].replay_only);
        let abandoned = parent.is_some_and(|p| self.contexts[p as usize].abandoned);
        let arn = self.execution_arn.clone();
        let context_op = Some(op.id);
        let coroutine =
            Coroutine::new(move |yielder| body(Workflow::new(yielder, arn, context_op)));
        let id = self.contexts.len() as CtxId;
        let mut ctx = Ctx::new(coroutine, ids, owner);
        if let Some(observer) = self.observer.as_deref_mut() {
            let replayed = self.history.get(&op.id).is_some();
            observer.function_started(&op, replay_only, replayed);
            ctx.function_open = true;
        }
        ctx.op = Some(op);
        ctx.replay_only = replay_only || inherited;
        ctx.abandoned = abandoned;
        self.contexts.push(ctx);
        if let Some(parent) = parent {
            self.contexts[parent as usize].children.push(id);
        }
        self.ready.push_back((id, Response::Start));
        id
    }

    /// Starts a virtual context (no CONTEXT operation) running `body` for
    /// `op`: its operations are hashed under `op`'s id and recorded as
    /// children of `parent`.
    fn spawn_virtual(
        &mut self,
        op: OpRef,
        parent: Option<OperationId>,
        owner: Owner,
        body: ContextBody,
        replay_only: bool,
    ) -> CtxId {
        let ids = IdGenerator::virtual_child(op.id, parent);
        let ahead = u32::from(self.history.position(&ids.peek_id()).is_some());
        let ctx = self.spawn_with(op, owner, body, replay_only, ids);
        let c = &mut self.contexts[ctx as usize];
        c.is_virtual = true;
        c.recorded_ahead = ahead;
        ctx
    }

    /// Abandons a context and everything it started: nothing more of them
    /// runs or is recorded.
    fn abandon(&mut self, ctx: CtxId) {
        let mut stack = vec![ctx];
        while let Some(id) = stack.pop() {
            let c = &mut self.contexts[id as usize];
            if std::mem::take(&mut c.function_open) {
                if let (Some(observer), Some(op)) = (self.observer.as_deref_mut(), &c.op) {
                    observer.function_ended(op, FunctionOutcome::Incomplete, None);
                }
            }
            c.abandoned = true;
            c.coroutine = None;
            c.live = None;
            c.suspended = None;
            if c.running.take().is_some() {
                self.in_flight -= 1;
            }
            stack.append(&mut c.children);
        }
    }

    fn on_child(
        &mut self,
        ctx: CtxId,
        name: Option<Cow<'static, str>>,
        sub_type: &'static str,
        body: ContextBody,
        is_virtual: bool,
    ) {
        let (op, at) = self.next_op(ctx, OperationType::Context, sub_type, name);
        self.set_last(ctx, op.clone());
        let recorded = at.map(|at| self.history.at(at));
        if is_virtual {
            // Never recorded: a record at its id was written by other code.
            if let Some(recorded) = recorded {
                return self.fatal(Self::not_virtual(&op, recorded));
            }
            if let Err(e) = self.check(&op, None) {
                return self.fatal(e);
            }
            let parent = self.contexts[ctx as usize].ids.parent().copied();
            let replay_only = self.contexts[ctx as usize].replay_only;
            self.spawn_virtual(op, parent, Owner::Child(ctx), body, replay_only);
            return;
        }
        let replay_only = self.contexts[ctx as usize].replay_only;
        if let Err(e) = self.check(&op, recorded) {
            return self.fatal(e);
        }
        let Some(recorded) = recorded else {
            if replay_only {
                return self.fatal(Self::not_recorded(&op, None));
            }
            self.defer(update(&op, OperationAction::Start));
            self.spawn(op, Owner::Child(ctx), body, false);
            return;
        };
        let details = recorded.context_details.as_deref();
        match recorded.status {
            OperationStatus::Succeeded if details.and_then(|d| d.replay_children) == Some(true) => {
                self.spawn(op, Owner::Child(ctx), body, true);
            }
            OperationStatus::Succeeded => {
                let payload = details
                    .and_then(|d| d.result.clone())
                    .unwrap_or_else(|| Payload::from("null"));
                self.replayed += 1;
                self.ready.push_back((ctx, Response::Step(Ok(payload))));
            }
            OperationStatus::Failed => {
                let error = details.and_then(|d| d.error.clone()).unwrap_or_else(|| {
                    ErrorObject::new("ChildContextFailed", "the child context failed")
                });
                self.replayed += 1;
                self.ready.push_back((ctx, Response::Step(Err(error))));
            }
            OperationStatus::Started if replay_only => {
                self.fatal(Self::not_recorded(&op, Some(recorded)))
            }
            OperationStatus::Started => {
                self.spawn(op, Owner::Child(ctx), body, false);
            }
            OperationStatus::Unknown(name) => self.fatal(unknown_status(&op, name)),
            status => self.fatal(ExecutionError::UnexpectedStatus { op, status }),
        }
    }

    /// The updates that close the CONTEXT `op` with `result`, and what the
    /// waiting side is told (the full result, even when it is too large to
    /// checkpoint).
    fn close_context(op: &OpRef, result: WorkflowResult) -> (OperationUpdate, RecordedOutcome) {
        match result {
            Ok(payload) => {
                let mut u = update(op, OperationAction::Succeed);
                let too_large = payload.len() > MAX_CONTEXT_RESULT
                    && payload.as_str().chars().count() > MAX_CONTEXT_RESULT;
                u.payload = Some(if too_large {
                    Payload::from("")
                } else {
                    payload.clone()
                });
                u.context_options = Some(ContextOptions {
                    replay_children: Some(too_large),
                });
                (u, Ok(payload))
            }
            Err(error) => {
                let error = error.truncated();
                let mut u = update(op, OperationAction::Fail);
                u.error = Some(Box::new(error.clone()));
                (u, Err(error))
            }
        }
    }

    fn on_returned(&mut self, ctx: CtxId, result: WorkflowResult) {
        let c = &mut self.contexts[ctx as usize];
        c.coroutine = None;
        let replay_only = c.replay_only;
        let is_virtual = c.is_virtual;
        let owner = c.owner;
        let function_open = std::mem::take(&mut c.function_open);
        // A virtual context records nothing: its value (or error) goes
        // straight to whoever waits, as a replay will compute it again.
        let result = if is_virtual {
            result.map_err(ErrorObject::truncated)
        } else {
            result
        };
        if let (Some(observer), Some(op)) = (self.observer.as_deref_mut(), &c.op) {
            let (outcome, status, error) = match &result {
                Ok(_) => (FunctionOutcome::Succeeded, OperationStatus::Succeeded, None),
                Err(e) => (
                    FunctionOutcome::Failed,
                    OperationStatus::Failed,
                    Some(Box::new(e.clone())),
                ),
            };
            if function_open {
                observer.function_ended(op, outcome, error.clone());
            }
            if is_virtual {
                observer.closed(&op.id, status, error);
            }
        }
        if is_virtual {
            match owner {
                Owner::Child(parent) => self.ready.push_back((parent, Response::Step(result))),
                Owner::Branch { batch, index } => self.branch_done(batch, index, result),
                Owner::Root => {}
            }
            return;
        }
        // The context is over: its operation is taken, not copied.
        let op = c.op.take();
        match (owner, op) {
            (Owner::Root, _) => {
                let outcome = match result {
                    Ok(payload) => Outcome::Succeeded(payload),
                    Err(error) => Outcome::Failed(error.truncated()),
                };
                self.ending = Some(Ending::Outcome(outcome));
            }
            (Owner::Child(parent), _) if replay_only => {
                self.ready.push_back((parent, Response::Step(result)));
            }
            (Owner::Branch { batch, index }, _) if replay_only => {
                self.branch_done(batch, index, result)
            }
            (Owner::Child(parent), Some(op)) => {
                let (u, outcome) = Self::close_context(&op, result);
                let after = After::Resume(parent, Response::Step(outcome));
                self.emit(vec![u], after, false);
            }
            (Owner::Branch { batch, index }, Some(op)) => {
                let (u, outcome) = Self::close_context(&op, result);
                let after = After::BranchClosed {
                    batch,
                    index,
                    outcome,
                };
                self.emit(vec![u], after, false);
            }
            (_, None) => self.fatal(ExecutionError::Internal(
                "a child context has no operation".into(),
            )),
        }
    }

    fn on_batch(&mut self, ctx: CtxId, request: BatchRequest) {
        let BatchRequest {
            kind,
            name,
            branches,
            max_concurrency,
            completion,
            nesting,
        } = request;
        let (op, at) = self.next_op(ctx, OperationType::Context, kind.sub_type(), name);
        self.set_last(ctx, op.clone());
        let recorded = at.map(|at| self.history.at(at));
        let replay_only = self.contexts[ctx as usize].replay_only;
        if let Err(e) = self.check(&op, recorded) {
            return self.fatal(e);
        }
        let invalid = if max_concurrency == Some(0) {
            Some("max_concurrency must be at least 1".to_owned())
        } else {
            completion.invalid()
        };
        if let Some(reason) = invalid {
            return self.fatal(ExecutionError::InvalidConfig { op, reason });
        }
        let mut rebuild = None;
        match recorded {
            None if replay_only => return self.fatal(Self::not_recorded(&op, None)),
            None => self.defer(update(&op, OperationAction::Start)),
            Some(recorded) => {
                let details = recorded.context_details.as_deref();
                match recorded.status {
                    OperationStatus::Succeeded
                        if details.and_then(|d| d.replay_children) == Some(true) =>
                    {
                        let summary = details
                            .and_then(|d| d.result.as_ref())
                            .and_then(|p| serde_json::from_str::<BatchSummary>(p.as_str()).ok());
                        let parsed = summary.and_then(|s| {
                            let reason = CompletionReason::parse(&s.completion_reason)?;
                            let started = s.started()?;
                            Some(Rebuild {
                                reason,
                                total: s.total_count,
                                started,
                            })
                        });
                        match parsed {
                            Some(r) => rebuild = Some(r),
                            None => {
                                return self.fatal(ExecutionError::InvalidHistory(format!(
                                    "{op} is recorded with ReplayChildren but its summary \
                                     cannot be read"
                                )));
                            }
                        }
                    }
                    OperationStatus::Succeeded => {
                        let payload = details
                            .and_then(|d| d.result.clone())
                            .unwrap_or_else(|| Payload::from("null"));
                        self.replayed += 1;
                        let reply = BatchReply::Recorded(payload);
                        return self.ready.push_back((ctx, Response::Batch(reply)));
                    }
                    OperationStatus::Failed => {
                        let error = details.and_then(|d| d.error.clone()).unwrap_or_else(|| {
                            ErrorObject::new("BatchFailed", "the batch operation failed")
                        });
                        self.replayed += 1;
                        let reply = BatchReply::Failed(error);
                        return self.ready.push_back((ctx, Response::Batch(reply)));
                    }
                    OperationStatus::Started if replay_only => {
                        return self.fatal(Self::not_recorded(&op, Some(recorded)));
                    }
                    OperationStatus::Started => {}
                    OperationStatus::Unknown(name) => {
                        return self.fatal(unknown_status(&op, name));
                    }
                    status => return self.fatal(ExecutionError::UnexpectedStatus { op, status }),
                }
            }
        }
        let n = branches.len();
        self.contexts.reserve(n);
        let (names, bodies) = branches.into_iter().map(|b| (b.name, Some(b.body))).unzip();
        self.batches.push(Batch {
            owner: ctx,
            op,
            kind,
            names,
            bodies,
            branches: (0..n).map(|_| Branch::NotStarted).collect(),
            next: 0,
            active: 0,
            succeeded: 0,
            failed: 0,
            max_concurrency: max_concurrency.unwrap_or(usize::MAX),
            policy: completion,
            rebuild,
            done: false,
            summary: None,
            nesting,
        });
        self.admit(self.batches.len() - 1);
    }

    /// Starts branches in index order while the batch's concurrency allows,
    /// and ends the batch when its policy says so.
    fn admit(&mut self, b: usize) {
        loop {
            let batch = &self.batches[b];
            // A batch inside an abandoned branch starts nothing more.
            if batch.done || self.ending.is_some() || self.dead(batch.owner) {
                return;
            }
            let total = batch.branches.len();
            let (limit, admissible, reason) = match &batch.rebuild {
                Some(r) => {
                    let admissible = r.total.min(total);
                    let over = batch.next >= admissible && batch.active == 0;
                    (usize::MAX, admissible, over.then_some(r.reason))
                }
                None => (
                    batch.max_concurrency,
                    total,
                    batch.policy.evaluate(total, batch.succeeded, batch.failed),
                ),
            };
            if let Some(reason) = reason {
                return self.finish_batch(b, reason);
            }
            if batch.next >= admissible || batch.active >= limit {
                return;
            }
            let index = batch.next;
            self.batches[b].next += 1;
            self.start_branch(b, index);
        }
    }

    fn start_branch(&mut self, b: usize, index: usize) {
        let batch = &mut self.batches[b];
        let parent = batch.op.id;
        let op = OpRef {
            seq: index as u64,
            id: IdGenerator::branch(&parent, index as u64),
            op_type: OperationType::Context,
            sub_type: Some(Cow::Borrowed(batch.kind.branch_sub_type())),
            // Each name is used once: taken, not copied.
            name: Some(std::mem::take(&mut batch.names[index])),
            parent: Some(parent),
        };
        let body = batch.bodies[index].take();
        let started_earlier = batch
            .rebuild
            .as_ref()
            .map(|r| r.started.binary_search(&index).is_ok());
        let owner_ctx = batch.owner;
        if batch.nesting == Nesting::Flat {
            return self.start_flat_branch(b, index, op, body, started_earlier);
        }
        let recorded = self.history.get(&op.id);
        if let Err(e) = self.check(&op, recorded) {
            return self.fatal(e);
        }
        if let Some(observer) = self.observer.as_deref_mut() {
            observer.reached(&op, recorded);
        }
        let owner = Owner::Branch { batch: b, index };
        let replay_only = self.contexts[owner_ctx as usize].replay_only;
        let Some(body) = body else {
            return self.fatal(ExecutionError::Internal("a branch started twice".into()));
        };
        match started_earlier {
            // Recorded as started and abandoned: nothing to rebuild.
            Some(true) => {
                self.batches[b].branches[index] = Branch::Started;
                return;
            }
            // Recorded as finished: it must have finished.
            Some(false) if !recorded.is_some_and(|r| r.status.is_terminal()) => {
                return self.fatal(Self::not_recorded(&op, recorded));
            }
            _ => {}
        }
        let recorded_outcome = match recorded {
            None if replay_only => return self.fatal(Self::not_recorded(&op, None)),
            None => {
                self.defer(update(&op, OperationAction::Start));
                None
            }
            Some(r) => {
                let details = r.context_details.as_deref();
                match r.status {
                    OperationStatus::Succeeded
                        if details.and_then(|d| d.replay_children) == Some(true) =>
                    {
                        let ctx = self.spawn(op, owner, body, true);
                        self.batches[b].branches[index] = Branch::Active(ctx);
                        self.batches[b].active += 1;
                        return;
                    }
                    OperationStatus::Succeeded => Some(Ok(details
                        .and_then(|d| d.result.clone())
                        .unwrap_or_else(|| Payload::from("null")))),
                    OperationStatus::Failed => Some(Err(details
                        .and_then(|d| d.error.clone())
                        .unwrap_or_else(|| ErrorObject::new("BranchFailed", "the branch failed")))),
                    OperationStatus::Started if replay_only => {
                        return self.fatal(Self::not_recorded(&op, Some(r)));
                    }
                    OperationStatus::Started => None,
                    OperationStatus::Unknown(name) => return self.fatal(unknown_status(&op, name)),
                    status => return self.fatal(ExecutionError::UnexpectedStatus { op, status }),
                }
            }
        };
        match recorded_outcome {
            // Finished in an earlier invocation: counted here, and the loop
            // in `admit` goes on (no recursion, however many there are).
            Some(outcome) => {
                self.replayed += 1;
                let batch = &mut self.batches[b];
                match outcome {
                    Ok(_) => batch.succeeded += 1,
                    Err(_) => batch.failed += 1,
                }
                batch.branches[index] = Branch::Done(outcome);
            }
            None => {
                let ctx = self.spawn(op, owner, body, false);
                let batch = &mut self.batches[b];
                batch.branches[index] = Branch::Active(ctx);
                batch.active += 1;
            }
        }
    }

    /// Starts branch `index` of a flat batch: a virtual context whose
    /// operations are recorded as children of the batch operation. It
    /// records nothing of its own, so it always runs (its operations
    /// replay from their records), also to rebuild a result too large to
    /// have been checkpointed; only a branch recorded as abandoned
    /// (started, unfinished) is not run again.
    fn start_flat_branch(
        &mut self,
        b: usize,
        index: usize,
        op: OpRef,
        body: Option<ContextBody>,
        started_earlier: Option<bool>,
    ) {
        if let Some(recorded) = self.history.get(&op.id) {
            return self.fatal(Self::not_virtual(&op, recorded));
        }
        if let Err(e) = self.check(&op, None) {
            return self.fatal(e);
        }
        let Some(body) = body else {
            return self.fatal(ExecutionError::Internal("a branch started twice".into()));
        };
        if started_earlier == Some(true) {
            self.batches[b].branches[index] = Branch::Started;
            return;
        }
        if let Some(observer) = self.observer.as_deref_mut() {
            observer.reached(&op, None);
        }
        let batch = &self.batches[b];
        let parent = Some(batch.op.id);
        let replay_only =
            started_earlier.is_some() || self.contexts[batch.owner as usize].replay_only;
        let owner = Owner::Branch { batch: b, index };
        let ctx = self.spawn_virtual(op, parent, owner, body, replay_only);
        let batch = &mut self.batches[b];
        batch.branches[index] = Branch::Active(ctx);
        batch.active += 1;
    }

    /// A branch ended (its end recorded, or replayed).
    fn branch_done(&mut self, b: usize, index: usize, outcome: RecordedOutcome) {
        let Some(batch) = self.batches.get_mut(b) else {
            return;
        };
        if batch.done || !matches!(batch.branches[index], Branch::Active(_)) {
            return; // abandoned: the batch ended without it
        }
        let owner = batch.owner;
        if self.dead(owner) {
            return; // the batch itself is in an abandoned branch
        }
        let batch = &mut self.batches[b];
        batch.active -= 1;
        match outcome {
            Ok(_) => batch.succeeded += 1,
            Err(_) => batch.failed += 1,
        }
        batch.branches[index] = Branch::Done(outcome);
        self.admit(b);
    }

    fn finish_batch(&mut self, b: usize, reason: CompletionReason) {
        let batch = &mut self.batches[b];
        batch.done = true;
        batch.bodies = Vec::new();
        batch.names = Vec::new();
        let branches = std::mem::take(&mut batch.branches);
        let rebuilding = batch.rebuild.is_some();
        let (owner, kind, admitted) = (batch.owner, batch.kind, batch.next);
        let mut items = Vec::with_capacity(branches.len());
        let (mut started, mut completed) = (Vec::new(), Vec::new());
        let (mut succeeded, mut failed) = (0, 0);
        for (index, branch) in branches.into_iter().enumerate() {
            let item = match branch {
                // Branches start in index order: the rest never started
                // either. Like AWS's SDKs, the result holds the branches
                // that started.
                Branch::NotStarted => break,
                Branch::Active(ctx) => {
                    self.abandon(ctx);
                    started.push(index);
                    RawItem {
                        status: BatchItemStatus::Started,
                        result: None,
                        error: None,
                    }
                }
                Branch::Started => {
                    started.push(index);
                    RawItem {
                        status: BatchItemStatus::Started,
                        result: None,
                        error: None,
                    }
                }
                Branch::Done(Ok(payload)) => {
                    completed.push(index);
                    succeeded += 1;
                    RawItem {
                        status: BatchItemStatus::Succeeded,
                        result: Some(payload),
                        error: None,
                    }
                }
                Branch::Done(Err(error)) => {
                    completed.push(index);
                    failed += 1;
                    RawItem {
                        status: BatchItemStatus::Failed,
                        result: None,
                        error: Some(error),
                    }
                }
            };
            items.push(item);
        }
        let raw = RawBatch { items, reason };
        if rebuilding {
            self.replayed += 1;
            self.ready
                .push_back((owner, Response::Batch(BatchReply::Rebuilt(raw))));
            return;
        }
        let started_count = started.len();
        let (started_indexes, completed_indexes) = if started.len() <= completed.len() {
            (Some(started), None)
        } else {
            (None, Some(completed))
        };
        self.batches[b].summary = Some(BatchSummary {
            kind: kind.summary_type().to_owned(),
            total_count: admitted,
            completion_reason: reason.as_str().to_owned(),
            started_indexes,
            completed_indexes,
            started_count,
            success_count: succeeded,
            failure_count: failed,
            status: if failed > 0 { "FAILED" } else { "SUCCEEDED" }.to_owned(),
        });
        self.contexts[owner as usize].closing = Some(b);
        self.ready
            .push_back((owner, Response::Batch(BatchReply::Live(raw))));
    }

    fn on_close_batch(&mut self, ctx: CtxId, encoded: Result<Payload, ErrorObject>) {
        let Some(b) = self.contexts[ctx as usize].closing.take() else {
            return self.fatal(ExecutionError::Internal(
                "a batch result was sent for no batch".into(),
            ));
        };
        let batch = &mut self.batches[b];
        let op = batch.op.clone();
        let summary = batch.summary.take();
        let (u, response) = match encoded {
            Ok(payload) => {
                let too_large = payload.len() > MAX_CONTEXT_RESULT
                    && payload.as_str().chars().count() > MAX_CONTEXT_RESULT;
                let mut u = update(&op, OperationAction::Succeed);
                u.context_options = Some(ContextOptions {
                    replay_children: Some(too_large),
                });
                if too_large {
                    let text = summary
                        .and_then(|s| serde_json::to_string(&s).ok())
                        .unwrap_or_default();
                    u.payload = Some(Payload::from(text));
                    (u, Response::Continue)
                } else {
                    u.payload = Some(payload.clone());
                    (u, Response::Step(Ok(payload)))
                }
            }
            Err(error) => {
                let error = error.truncated();
                let mut u = update(&op, OperationAction::Fail);
                u.error = Some(Box::new(error.clone()));
                (u, Response::Step(Err(error)))
            }
        };
        self.emit(vec![u], After::Resume(ctx, response), false);
    }
}

impl Ctx {
    fn new(coroutine: Coroutine, ids: IdGenerator, owner: Owner) -> Self {
        Ctx {
            coroutine: Some(coroutine),
            ids,
            owner,
            op: None,
            live: None,
            running: None,
            last_op: None,
            replay_only: false,
            abandoned: false,
            suspended: None,
            closing: None,
            children: Vec::new(),
            recorded_ahead: 0,
            is_virtual: false,
            function_open: false,
        }
    }
}

thread_local! {
    /// Whether the workflow code running on this thread (if any) replays
    /// what an earlier invocation ran.
    static REPLAYING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// The operation the context being resumed last started: the one the
    /// answer it resumes with is about.
    static ANSWERED: std::cell::Cell<Option<OperationId>> = const { std::cell::Cell::new(None) };
}

/// The operation whose answer the running workflow code just got (the
/// last operation its context started). Workflow code reads it right
/// after a yield returns, to decode the operation's payload for it.
pub(crate) fn answered_op() -> Option<OperationId> {
    ANSWERED.with(|a| a.get())
}

/// Whether workflow code running now, on this thread, is replaying: it
/// runs again what an earlier invocation of the execution already ran
/// (recorded operations of its context lie ahead of it). False outside
/// workflow code, and in step bodies (which only run live).
///
/// A log line written while this is true was written by an earlier
/// invocation already. Filter on it to log each line once per execution;
/// with `tracing-subscriber`, a *dynamic* filter (a plain `filter_fn` is
/// evaluated once per call site and cached):
///
/// ```text
/// use tracing_subscriber::{filter::dynamic_filter_fn, prelude::*};
/// tracing_subscriber::registry()
///     .with(tracing_subscriber::fmt::layer()
///         .with_filter(dynamic_filter_fn(|_, _| !durable_yield::is_replaying())))
///     .init();
/// ```
pub fn is_replaying() -> bool {
    REPLAYING.with(|r| r.get())
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

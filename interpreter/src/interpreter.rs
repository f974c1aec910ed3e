//! The replay state machine: events in, actions out.
//!
//! The [`Interpreter`] owns the history and the workflow coroutine. It never
//! does I/O, reads a clock or awaits anything: its driver (the local runner,
//! or the Lambda handler) calls [`Interpreter::poll`] and carries out the
//! [`Action`] it returns, then reports back with
//! [`Interpreter::step_finished`] or [`Interpreter::checkpoint_finished`]:
//!
//! ```text
//! loop {
//!     match interpreter.poll() {
//!         Some(Action::RunStep(run))     => { let out = run.future.await; interpreter.step_finished(out) }
//!         Some(Action::Checkpoint { updates, .. }) => { let delta = send(updates).await?; interpreter.checkpoint_finished(delta) }
//!         Some(Action::Finish(outcome))  => return outcome,
//!         None => unreachable: every action above is answered before polling again,
//!     }
//! }
//! ```

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use durable_yield_codecs::{Json, to_payload};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::coroutine::{BoxFuture, Coroutine, Resumed};
use crate::error::{ExecutionError, OpRef};
use crate::history::History;
use crate::id::IdGenerator;
use crate::model::{
    ErrorObject, Millis, Operation, OperationAction, OperationId, OperationStatus, OperationType,
    OperationUpdate, Payload, StepOptions, WaitOptions, WireName,
};
use crate::protocol::{Fatal, RecordedOutcome, Request, Response, StepOutcome};
use crate::retry::{ExponentialBackoff, FailedAttempt, RetryStrategy, unit_random, whole_seconds};
use crate::workflow::{BoxError, StepContext, StepFailure, StepSemantics, Workflow, WorkflowFn};

/// The subtype written on steps.
pub const STEP_SUBTYPE: &str = "Step";
/// The subtype written on waits.
pub const WAIT_SUBTYPE: &str = "Wait";
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

/// A step body for the driver to run.
pub struct StepRun {
    /// The step's context (id, name, attempt).
    pub context: StepContext,
    /// The body; resolves to the encoded result or the error to record.
    pub future: BoxFuture<StepOutcome>,
}

impl std::fmt::Debug for StepRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepRun")
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

/// What the driver must do next.
#[derive(Debug)]
#[non_exhaustive]
pub enum Action {
    /// Run this step body and report with [`Interpreter::step_finished`].
    RunStep(StepRun),
    /// Send these updates, in order, and report the response's operations
    /// with [`Interpreter::checkpoint_finished`].
    Checkpoint {
        /// The updates.
        updates: Vec<OperationUpdate>,
        /// Whether the workflow needs the service's answer to go on (a
        /// wait's START: the response may say the wait is over). When
        /// `false` (a step's outcome), a driver may acknowledge at once
        /// with no operations and send the updates later, together with
        /// others, accepting that a crash loses them.
        wait_for_response: bool,
    },
    /// The invocation is over.
    Finish(Outcome),
}

struct LiveStep {
    op: OpRef,
    attempt: u32,
    send_start: bool,
    retry: Option<Arc<dyn RetryStrategy>>,
}

enum After {
    /// Resume the workflow with the step's outcome.
    Step(RecordedOutcome),
    /// A wait started: go on if it is already over, else suspend.
    WaitStarted(OpRef),
    /// An at-most-once attempt's START was acknowledged: run the body.
    Started(LiveStep),
    /// A retry was scheduled: suspend until it is due.
    Retried(OpRef),
}

enum State {
    Resume(Response),
    RunningStep(LiveStep),
    Flush(Vec<OperationUpdate>, After),
    AwaitCheckpoint(After),
    End(Outcome),
    Fail(Box<ExecutionError>),
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
    coroutine: Option<Coroutine>,
    ids: IdGenerator,
    state: State,
    live: Option<LiveStep>,
    last_op: Option<OpRef>,
    error: Option<ExecutionError>,
    replayed: u64,
    executed: u64,
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
            coroutine: None,
            ids: IdGenerator::root(),
            state: State::Finished,
            live: None,
            last_op: None,
            error: None,
            replayed: 0,
            executed: 0,
        };
        match interpreter.decode_input::<I>() {
            Ok(input) => {
                interpreter.coroutine = Some(Coroutine::new(|yielder| {
                    let run = workflow.start(Workflow::new(yielder, execution_arn), input);
                    Box::pin(async move {
                        let output = run.await?;
                        to_payload(&Json, &output).map(Payload::from).map_err(|e| {
                            ExecutionError::InvalidOutput(e.to_string()).to_error_object()
                        })
                    })
                }));
                interpreter.state = State::Resume(Response::Start);
            }
            Err(e) => interpreter.state = fail(e),
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

    /// Runs the workflow until it needs the driver. Returns `None` while an
    /// action is outstanding (a step body or a checkpoint not yet reported)
    /// and after [`Action::Finish`].
    pub fn poll(&mut self) -> Option<Action> {
        loop {
            match std::mem::replace(&mut self.state, State::Finished) {
                State::Resume(response) => {
                    let Some(coroutine) = self.coroutine.as_mut() else {
                        self.state = fail(ExecutionError::Internal("no workflow to resume".into()));
                        continue;
                    };
                    let resumed = coroutine.resume(response);
                    if let Some(action) = self.on_resumed(resumed) {
                        return Some(action);
                    }
                }
                State::Flush(updates, after) => {
                    let wait_for_response = !matches!(after, After::Step(_));
                    self.state = State::AwaitCheckpoint(after);
                    return Some(Action::Checkpoint {
                        updates,
                        wait_for_response,
                    });
                }
                state @ (State::RunningStep(_) | State::AwaitCheckpoint(_)) => {
                    self.state = state;
                    return None;
                }
                State::End(Outcome::Failed(error)) => {
                    self.coroutine = None;
                    return Some(Action::Finish(Outcome::Failed(error.truncated())));
                }
                State::End(outcome) => {
                    self.coroutine = None;
                    return Some(Action::Finish(outcome));
                }
                State::Fail(error) => {
                    let object = error.to_error_object();
                    self.error = Some(*error);
                    self.coroutine = None;
                    return Some(Action::Finish(Outcome::Failed(object)));
                }
                State::Finished => return None,
            }
        }
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

    /// Reports the outcome of the step body handed out with
    /// [`Action::RunStep`]. The next poll checkpoints it: a success, a
    /// retry (if the step's strategy says so) or a failure.
    pub fn step_finished(&mut self, outcome: StepOutcome) {
        let live = match std::mem::replace(&mut self.state, State::Finished) {
            State::RunningStep(live) => live,
            other => {
                self.state = other;
                self.misuse("step_finished without a running step");
                return;
            }
        };
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
        let mut updates = Vec::with_capacity(2);
        if live.send_start {
            updates.push(update(&live.op, OperationAction::Start));
        }
        self.state = match outcome {
            Ok(payload) => {
                let mut u = update(&live.op, OperationAction::Succeed);
                u.payload = Some(payload.clone());
                updates.push(u);
                State::Flush(updates, After::Step(Ok(payload)))
            }
            Err(failure) => {
                let (error, source, retryable) = failure.into_parts();
                // What is recorded is what the workflow sees, now and on
                // every replay: cut to the service's limits first.
                let error = error.truncated();
                if retryable {
                    let retry = live.retry.as_ref();
                    self.failed_attempt(&live.op, live.attempt, retry, error, source, updates)
                } else {
                    // The SDK's own failures of a result (too large, not
                    // encodable) would fail every attempt the same way.
                    let mut u = update(&live.op, OperationAction::Fail);
                    u.error = Some(error.clone());
                    updates.push(u);
                    State::Flush(updates, After::Step(Err(error)))
                }
            }
        };
    }

    /// A failed attempt: asks the step's retry strategy, and checkpoints a
    /// RETRY (then suspends) or a FAIL (then resumes with the error).
    fn failed_attempt(
        &self,
        op: &OpRef,
        attempt: u32,
        retry: Option<&Arc<dyn RetryStrategy>>,
        error: ErrorObject,
        source: Option<BoxError>,
        mut updates: Vec<OperationUpdate>,
    ) -> State {
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
                u.error = Some(error);
                updates.push(u);
                State::Flush(updates, After::Retried(op.clone()))
            }
            None => {
                let mut u = update(op, OperationAction::Fail);
                u.error = Some(error.clone());
                updates.push(u);
                State::Flush(updates, After::Step(Err(error)))
            }
        }
    }

    /// Reports that the updates of [`Action::Checkpoint`] were accepted,
    /// with the operations the response carried (new and changed ones,
    /// including completions that happened meanwhile).
    pub fn checkpoint_finished(&mut self, delta: Vec<Operation>) {
        let after = match std::mem::replace(&mut self.state, State::Finished) {
            State::AwaitCheckpoint(after) => after,
            other => {
                self.state = other;
                self.misuse("checkpoint_finished without a checkpoint");
                return;
            }
        };
        self.history.merge(delta);
        self.state = match after {
            After::Step(outcome) => State::Resume(Response::Step(outcome)),
            After::Started(live) => {
                let context = self.step_context(&live.op, live.attempt);
                self.live = Some(live);
                State::Resume(Response::Execute(context))
            }
            After::Retried(op) => State::End(Outcome::Pending {
                resume_at: self
                    .history
                    .get(&op.id)
                    .and_then(|o| o.step_details.as_ref())
                    .and_then(|d| d.next_attempt_timestamp),
            }),
            After::WaitStarted(op) => match self.history.get(&op.id) {
                Some(o)
                    if matches!(
                        o.status,
                        OperationStatus::Succeeded | OperationStatus::Cancelled
                    ) =>
                {
                    State::Resume(Response::Continue)
                }
                recorded => State::End(Outcome::Pending {
                    resume_at: recorded
                        .and_then(|o| o.wait_details.as_ref())
                        .and_then(|d| d.scheduled_end_timestamp),
                }),
            },
        };
    }

    /// Merges operations the service reported outside an answer to
    /// [`Action::Checkpoint`] (e.g. when a driver sends held-back updates
    /// later).
    pub fn merge_operations(&mut self, operations: Vec<Operation>) {
        self.history.merge(operations);
    }

    fn misuse(&mut self, what: &str) {
        if !matches!(self.state, State::Finished | State::End(_)) {
            self.state = fail(ExecutionError::Internal(what.to_owned()));
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

    fn on_resumed(&mut self, resumed: Resumed) -> Option<Action> {
        match resumed {
            Resumed::Yielded(Request::Step {
                name,
                retry,
                semantics,
            }) => self.on_step(name, retry, semantics),
            Resumed::Yielded(Request::Run(future)) => match self.live.take() {
                Some(live) => {
                    let context = self.step_context(&live.op, live.attempt);
                    self.state = State::RunningStep(live);
                    return Some(Action::RunStep(StepRun { context, future }));
                }
                None => {
                    self.state = fail(ExecutionError::Internal(
                        "a step body was sent for no step".into(),
                    ))
                }
            },
            Resumed::Yielded(Request::Wait { name, duration }) => self.on_wait(name, duration),
            Resumed::Yielded(Request::Fatal(Fatal::Decode(error))) => {
                self.state = fail(ExecutionError::Codec {
                    op: self.last_op.clone(),
                    error,
                })
            }
            Resumed::Yielded(Request::Fatal(Fatal::Protocol(what))) => {
                self.state = fail(ExecutionError::Internal(what.to_owned()))
            }
            Resumed::Returned(Ok(payload)) => self.state = State::End(Outcome::Succeeded(payload)),
            Resumed::Returned(Err(error)) => self.state = State::End(Outcome::Failed(error)),
            Resumed::ForeignAwait => {
                self.state = fail(ExecutionError::ForeignAwait {
                    last_op: self.last_op.clone(),
                })
            }
            Resumed::Panicked(message) => {
                self.state = fail(ExecutionError::WorkflowPanicked {
                    message,
                    last_op: self.last_op.clone(),
                })
            }
        }
        None
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
        }
        Ok(())
    }

    fn next_op(
        &mut self,
        op_type: OperationType,
        sub_type: &'static str,
        name: Option<Cow<'static, str>>,
    ) -> OpRef {
        let (id, seq) = self.ids.next_id();
        OpRef {
            seq,
            id,
            op_type,
            sub_type: Some(Cow::Borrowed(sub_type)),
            name,
        }
    }

    /// Checks that the recorded operation is the one requested.
    #[allow(clippy::result_large_err)]
    fn matches(&self, recorded: &Operation, op: &OpRef) -> Result<(), ExecutionError> {
        if recorded.op_type == op.op_type
            && recorded.sub_type.as_deref() == op.sub_type.as_deref()
            && recorded.name.as_deref() == op.name.as_deref()
            && recorded.parent_id.as_ref() == self.ids.parent()
        {
            return Ok(());
        }
        let recorded_ref = OpRef {
            seq: op.seq,
            id: recorded.id,
            op_type: recorded.op_type,
            sub_type: recorded.sub_type.clone().map(Cow::Owned),
            name: recorded.name.clone().map(Cow::Owned),
        };
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
            requested: format!("{}{}", op.describe(), parent(self.ids.parent())),
        })
    }

    fn on_step(
        &mut self,
        name: Option<Cow<'static, str>>,
        retry: Option<Arc<dyn RetryStrategy>>,
        semantics: StepSemantics,
    ) {
        let op = self.next_op(OperationType::Step, STEP_SUBTYPE, name);
        let at_most_once = semantics == StepSemantics::AtMostOncePerRetry;
        let recorded = self.history.get(&op.id);
        if let Err(e) = self.check(&op, recorded) {
            self.state = fail(e);
            self.last_op = Some(op);
            return;
        }
        self.state = match recorded {
            None => self.execute(&op, 1, retry, at_most_once, true),
            Some(recorded) => match self.matches(recorded, &op) {
                Err(e) => fail(e),
                Ok(()) => {
                    let details = recorded.step_details.as_deref();
                    let attempts = details.and_then(|d| d.attempt).unwrap_or(0);
                    let next = attempts.saturating_add(1);
                    match recorded.status {
                        OperationStatus::Succeeded => {
                            let payload = details
                                .and_then(|d| d.result.clone())
                                .unwrap_or_else(|| Payload::from("null"));
                            self.replayed += 1;
                            State::Resume(Response::Step(Ok(payload)))
                        }
                        status @ (OperationStatus::Failed
                        | OperationStatus::Cancelled
                        | OperationStatus::TimedOut
                        | OperationStatus::Stopped) => {
                            let error =
                                details.and_then(|d| d.error.clone()).unwrap_or_else(|| {
                                    ErrorObject::new(
                                        "StepFailed",
                                        format!("the step ended with status {status}"),
                                    )
                                });
                            self.replayed += 1;
                            State::Resume(Response::Step(Err(error)))
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
                            self.failed_attempt(&op, next, retry, error, None, Vec::new())
                        }
                        // An at-least-once attempt was interrupted: run it
                        // again, without a new START.
                        OperationStatus::Started => self.execute(&op, next, retry, false, false),
                        OperationStatus::Ready => {
                            self.execute(&op, next, retry, at_most_once, true)
                        }
                        OperationStatus::Pending => State::End(Outcome::Pending {
                            resume_at: details.and_then(|d| d.next_attempt_timestamp),
                        }),
                        OperationStatus::Unknown(name) => fail(unknown_status(&op, name)),
                    }
                }
            },
        };
        self.last_op = Some(op);
    }

    /// Prepares a live attempt of the step `op`. At most once: START first,
    /// acknowledged, then the body. At least once: the body, then START
    /// (if `send_start`) and the outcome in one request.
    fn execute(
        &mut self,
        op: &OpRef,
        attempt: u32,
        retry: Option<Arc<dyn RetryStrategy>>,
        at_most_once: bool,
        send_start: bool,
    ) -> State {
        let live = LiveStep {
            op: op.clone(),
            attempt,
            send_start: send_start && !at_most_once,
            retry,
        };
        if at_most_once && send_start {
            return State::Flush(
                vec![update(op, OperationAction::Start)],
                After::Started(live),
            );
        }
        let context = self.step_context(op, attempt);
        self.live = Some(live);
        State::Resume(Response::Execute(context))
    }

    fn on_wait(&mut self, name: Option<Cow<'static, str>>, duration: Duration) {
        let op = self.next_op(OperationType::Wait, WAIT_SUBTYPE, name);
        // Whole seconds, rounded up, like retry delays.
        let seconds = duration
            .as_secs()
            .saturating_add(u64::from(duration.subsec_nanos() > 0));
        let recorded = self.history.get(&op.id);
        if let Err(e) = self.check(&op, recorded) {
            self.state = fail(e);
        } else if !(1..=MAX_WAIT_SECONDS).contains(&seconds) {
            self.state = fail(ExecutionError::InvalidWaitDuration {
                op: op.clone(),
                duration,
            });
        } else if let Some(recorded) = recorded {
            self.state = match (self.matches(recorded, &op), recorded.status) {
                (Err(e), _) => fail(e),
                (Ok(()), OperationStatus::Succeeded | OperationStatus::Cancelled) => {
                    self.replayed += 1;
                    State::Resume(Response::Continue)
                }
                (Ok(()), OperationStatus::Unknown(name)) => fail(unknown_status(&op, name)),
                (Ok(()), OperationStatus::Started) => State::End(Outcome::Pending {
                    resume_at: recorded
                        .wait_details
                        .as_ref()
                        .and_then(|d| d.scheduled_end_timestamp),
                }),
                (Ok(()), status) => fail(ExecutionError::UnexpectedStatus {
                    op: op.clone(),
                    status,
                }),
            };
        } else {
            let mut start = update(&op, OperationAction::Start);
            start.wait_options = Some(WaitOptions {
                wait_seconds: seconds as u32,
            });
            self.state = State::Flush(vec![start], After::WaitStarted(op.clone()));
        }
        self.last_op = Some(op);
    }
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

fn fail(error: ExecutionError) -> State {
    State::Fail(Box::new(error))
}

fn update(op: &OpRef, action: OperationAction) -> OperationUpdate {
    let mut u = OperationUpdate::new(op.id, op.op_type, action);
    u.name = op.name.clone();
    u.sub_type = op.sub_type.clone();
    u
}

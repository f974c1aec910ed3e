//! One invocation, start to end: the code path shared by the local runner
//! and the Lambda handler.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use durable_yield_interpreter::panic_message;
use serde::Serialize;
use serde::de::DeserializeOwned;

use futures_util::FutureExt;
use futures_util::future::{Either, select};
use futures_util::stream::{FuturesUnordered, StreamExt};
use tracing::{Instrument, Level};

use crate::engine::{
    Action, BoxFuture, CheckpointHandle, Interpreter, Observation, OpRef, Outcome, StepHandle,
    StepOutcome, StepRun,
};
use crate::model::{
    ErrorObject, InvocationInput, InvocationOutput, InvocationStatus, Millis, Operation,
    OperationAction, OperationId, OperationType, OperationUpdate, Payload, json_string_len,
};
use crate::plugin::{
    Active, AttemptEvent, AttemptOutcome, FunctionEvent, FunctionOutcome, InvocationEnd,
    InvocationEndStatus, InvocationStart, OperationChange, OperationEvent, Plugins,
};
use crate::service::{DurableService, ServiceError, os_random};
use crate::timer::Delay;
use crate::{StepFailure, WorkflowFn};

/// The largest result returned in the invocation response, measured as it
/// is sent: as a JSON string, quotes and escaping included. A larger one is
/// checkpointed with an EXECUTION SUCCEED (PROTOCOL.md §6), and the
/// response carries an empty result.
pub const MAX_RESPONSE_RESULT: usize = 6 * 1024 * 1024 - 50;

/// The most state pages one invocation reads before it gives up (a service
/// that keeps answering with a next marker): 5,000 pages of at least 100
/// operations is far beyond the service's operation limits.
pub const MAX_STATE_PAGES: usize = 5_000;

/// The largest execution result the service stores at all (its payload
/// limit, 6,291,456 characters); a larger one fails the execution.
pub const MAX_EXECUTION_RESULT: usize = 6 * 1024 * 1024;

/// The most updates the service takes in one checkpoint request.
pub const MAX_UPDATES_PER_REQUEST: usize = 250;

/// The most bytes of update JSON sent in one checkpoint request.
pub const MAX_REQUEST_BYTES: usize = 750 * 1024;

/// How checkpoint updates are grouped into requests.
///
/// Updates always go out in the order the workflow made them. By default
/// every step's checkpoint (its START and its outcome, in one request) is
/// sent before the workflow goes on: one request per live step, and a crash
/// never re-runs a step whose body already finished, except the one running.
/// A body still running after [`BatchConfig::start_delay`] has its START
/// sent on its own, so that the service knows the step started.
///
/// With [`BatchConfig::max_delay`] above zero, a step's checkpoint may wait
/// for the following steps' and share their request: fewer requests, at a
/// price: under at-least-once semantics a crash re-runs every step whose
/// result was not sent yet. Held updates are sent when the delay has passed
/// (checked whenever the workflow makes a durable call or a step is about
/// to run), when a request is full, when the workflow needs the service's
/// answer (a wait) and always before the invocation returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchConfig {
    /// The most updates per request (at most [`MAX_UPDATES_PER_REQUEST`]).
    pub max_updates: usize,
    /// The most bytes of update JSON per request (at most [`MAX_REQUEST_BYTES`]).
    pub max_bytes: usize,
    /// How long a step's checkpoint may be held back. Zero by default.
    /// Measured with the service's clock ([`DurableService::now`]: the
    /// system clock on Lambda, the virtual clock on the local runner).
    pub max_delay: Duration,
    /// How long the START of a step attempt (and of the child contexts
    /// around it) may wait, while the body runs, for the body's outcome to
    /// share its request. 100 ms by default, as AWS's SDKs: a body that
    /// ends sooner costs one request, START and outcome together; a longer
    /// one has its START recorded while it runs, so that a crash inside
    /// it leaves `StepStarted` in the history. Real time, on every runner.
    pub start_delay: Duration,
}

/// The default [`BatchConfig::start_delay`].
const DEFAULT_START_DELAY: Duration = Duration::from_millis(100);

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            max_updates: MAX_UPDATES_PER_REQUEST,
            max_bytes: MAX_REQUEST_BYTES,
            max_delay: Duration::ZERO,
            start_delay: DEFAULT_START_DELAY,
        }
    }
}

impl BatchConfig {
    /// The default: no delay, service limits.
    pub fn new() -> Self {
        BatchConfig::default()
    }

    /// Lets step checkpoints wait up to `delay` to share a request.
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Sets how long a START may wait, while its body runs, for the
    /// body's outcome ([`BatchConfig::start_delay`]). `Duration::ZERO`
    /// sends every START as soon as its body starts (a second request per
    /// step that does not end at its first poll).
    pub fn start_delay(mut self, delay: Duration) -> Self {
        self.start_delay = delay;
        self
    }

    /// Caps the updates per request (1 to [`MAX_UPDATES_PER_REQUEST`]).
    pub fn max_updates(mut self, n: usize) -> Self {
        self.max_updates = n.clamp(1, MAX_UPDATES_PER_REQUEST);
        self
    }
}

/// An invocation that could not finish: the service should invoke again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the invocation failed and should be retried: {0}")]
pub struct InvocationError(pub ServiceError);

/// What one invocation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvocationSummary {
    /// The response for the service.
    pub output: InvocationOutput,
    /// Operations answered from history.
    pub replayed: u64,
    /// Step bodies that ran.
    pub executed: u64,
    /// Checkpoint requests sent.
    pub checkpoints: u64,
}

/// Runs one invocation of `workflow` for the envelope `input`, talking to
/// `service`, with the default [`BatchConfig`].
///
/// Errors that the service should answer by invoking again (a stale token,
/// a transient failure) are returned as [`InvocationError`]; everything else
/// ends in the returned output (`SUCCEEDED`, `FAILED` or `PENDING`).
pub async fn run_invocation<I, O, W, S>(
    workflow: &W,
    input: InvocationInput,
    service: &S,
) -> Result<InvocationSummary, InvocationError>
where
    I: DeserializeOwned,
    O: Serialize + 'static,
    W: WorkflowFn<I, O> + ?Sized,
    S: DurableService + ?Sized,
{
    run_invocation_with(workflow, input, service, &BatchConfig::default()).await
}

/// [`run_invocation`] with a [`BatchConfig`].
pub async fn run_invocation_with<I, O, W, S>(
    workflow: &W,
    input: InvocationInput,
    service: &S,
    batching: &BatchConfig,
) -> Result<InvocationSummary, InvocationError>
where
    I: DeserializeOwned,
    O: Serialize + 'static,
    W: WorkflowFn<I, O> + ?Sized,
    S: DurableService + ?Sized,
{
    run_invocation_traced(
        workflow,
        input,
        service,
        batching,
        None,
        &Plugins::default(),
    )
    .await
}

/// [`run_invocation_with`] inside its `durable_execution` tracing span,
/// with the Lambda request id when there is one.
///
/// The span's fields: `execution_arn`, `request_id`, `first_invocation`
/// (the history holds nothing but the EXECUTION operation) and `replaying`
/// (recorded operations are replayed first). Workflow code and step bodies
/// run inside it, so their log lines carry the execution ARN; each live
/// step attempt runs in a `durable_operation` span (`operation_id`, `name`,
/// `type`, `subtype`, `attempt`, and `parent_id` once it has one).
pub(crate) async fn run_invocation_traced<I, O, W, S>(
    workflow: &W,
    input: InvocationInput,
    service: &S,
    batching: &BatchConfig,
    lambda: Option<&LambdaRequest<'_>>,
    plugins: &Plugins,
) -> Result<InvocationSummary, InvocationError>
where
    I: DeserializeOwned,
    O: Serialize + 'static,
    W: WorkflowFn<I, O> + ?Sized,
    S: DurableService + ?Sized,
{
    let state = &input.initial_execution_state;
    let more_pages = state.next_marker.as_deref().is_some_and(|m| !m.is_empty());
    let first_invocation = !more_pages
        && state
            .operations
            .iter()
            .all(|op| op.op_type == OperationType::Execution);
    let span = tracing::info_span!(
        "durable_execution",
        execution_arn = %input.durable_execution_arn,
        request_id = tracing::field::Empty,
        first_invocation,
        replaying = !first_invocation,
    );
    if let Some(lambda) = lambda {
        span.record("request_id", lambda.request_id);
    }
    let run = Run {
        batching,
        request_id: lambda.map(|l| l.request_id),
        trace_header: lambda.and_then(|l| l.trace_header),
        first_invocation,
        plugins,
    };
    invocation(workflow, input, service, run)
        .instrument(span)
        .await
}

/// What Lambda says of the request.
pub(crate) struct LambdaRequest<'a> {
    pub(crate) request_id: &'a str,
    pub(crate) trace_header: Option<&'a str>,
}

/// How to run one invocation.
struct Run<'a> {
    batching: &'a BatchConfig,
    request_id: Option<&'a str>,
    trace_header: Option<&'a str>,
    first_invocation: bool,
    plugins: &'a Plugins,
}

async fn invocation<I, O, W, S>(
    workflow: &W,
    input: InvocationInput,
    service: &S,
    run: Run<'_>,
) -> Result<InvocationSummary, InvocationError>
where
    I: DeserializeOwned,
    O: Serialize + 'static,
    W: WorkflowFn<I, O> + ?Sized,
    S: DurableService + ?Sized,
{
    let arn = input.durable_execution_arn;
    let mut checkpointer = Checkpointer {
        service,
        arn: &arn,
        token: input.checkpoint_token,
        config: run.batching,
        held: Vec::new(),
        held_bytes: 0,
        held_since: None,
        requests: 0,
    };
    let mut operations = input.initial_execution_state.operations;
    let marker = input.initial_execution_state.next_marker;
    if let Err(error) = checkpointer.page_in(marker, &mut operations).await {
        return Ok(InvocationSummary {
            output: fail_or_retry(error)?,
            replayed: 0,
            executed: 0,
            checkpoints: 0,
        });
    }
    tracing::debug!(
        execution = %arn,
        operations = operations.len(),
        "durable invocation started"
    );
    if let Err(message) = run.plugins.prepare(&operations).await {
        tracing::warn!(%message, "failing the invocation; the service will invoke it again");
        return Err(InvocationError(ServiceError::Transient(message)));
    }

    let mut hooks = if run.plugins.is_empty() {
        Active::none()
    } else {
        let execution_started_at = operations
            .iter()
            .find(|op| op.op_type == OperationType::Execution)
            .and_then(|op| op.start_timestamp);
        let start = InvocationStart {
            execution_arn: &arn,
            request_id: run.request_id,
            trace_header: run.trace_header,
            first_invocation: run.first_invocation,
            execution_started_at,
            operations: &operations,
            updated_operation_ids: input.updated_operation_ids.as_deref().unwrap_or(&[]),
            at: service.now(),
        };
        let mut hooks = run.plugins.start(&start);
        hooks.each("on_invocation_start", |h| h.on_invocation_start(&start));
        hooks
    };
    // Operation starts and ends are tracked only for someone who listens.
    let observing = !hooks.is_empty() || tracing::enabled!(target: OPERATION_TARGET, Level::DEBUG);
    let mut interpreter = Interpreter::new(&arn, operations, workflow);
    interpreter.set_entropy(os_random());
    if observing {
        let updated = input.updated_operation_ids.iter().flatten();
        interpreter.observe(updated.filter_map(|id| OperationId::new(id).ok()));
    }
    let mut attempts: HashMap<StepHandle, Attempt> = HashMap::new();
    // Step bodies run concurrently (several contexts may each run one);
    // checkpoints go out one request at a time, in order, several queued
    // ones sharing a request.
    let mut running = FuturesUnordered::new();
    let mut queue: VecDeque<(CheckpointHandle, Vec<OperationUpdate>, bool)> = VecDeque::new();
    let mut finished: Vec<(StepHandle, StepOutcome)> = Vec::new();
    // Since when updates no context waits for (STARTs) are held back
    // while bodies run.
    let mut deferred_since: Option<(u64, Instant)> = None;
    // Operations that ended here, reported once the service's answer to
    // their end is merged (so that the hooks see the recorded result and
    // timestamps).
    let mut unmerged: Vec<Observation> = Vec::new();
    // The invocation's body is an async block so that however it ends
    // (`?` included), the invocation-end hooks below run.
    let result: Result<InvocationOutput, InvocationError> = async {
        Ok('invocation: loop {
            interpreter.set_now(service.now());
            for (handle, outcome) in finished.drain(..) {
                if let Some(attempt) = attempts.remove(&handle) {
                    attempt.ended(&mut hooks, &outcome, service.now());
                }
                interpreter.step_finished(handle, outcome);
            }
            loop {
                let action = interpreter.poll();
                if observing {
                    observed(&mut interpreter, &mut hooks, &mut unmerged, service.now());
                }
                let Some(action) = action else { break };
                match action {
                    Action::RunStep(run) => {
                        if checkpointer.is_due() {
                            match checkpointer.flush().await {
                                Ok(Flushed::Sent(delta)) => {
                                    let updated = changes_for(&hooks, &delta);
                                    interpreter.merge_operations(delta);
                                    let now = service.now();
                                    report_ended(&interpreter, &mut hooks, &mut unmerged, now);
                                    changed(&mut hooks, &interpreter, updated, &arn, now);
                                }
                                Ok(Flushed::Revoked) => break 'invocation pending(),
                                Err(e) => break 'invocation fail_or_retry(e)?,
                            }
                        }
                        if !hooks.is_empty() {
                            let attempt = Attempt::of(&run);
                            attempt.started(&mut hooks, service.now());
                            attempts.insert(run.handle, attempt);
                        }
                        running.push(run_step(run));
                    }
                    Action::Checkpoint {
                        handle,
                        updates,
                        wait_for_response,
                    } => queue.push_back((handle, updates, wait_for_response)),
                    Action::Finish(outcome) => {
                        let execution = interpreter.history().execution().map(|op| op.id);
                        break 'invocation finish(&mut checkpointer, execution, outcome).await?;
                    }
                    other => {
                        break 'invocation failed(ErrorObject::new(
                            "InternalError",
                            format!("this runtime cannot carry out the action {other:?}"),
                        ));
                    }
                }
            }
            if let Some((first, mut updates, mut wait)) = queue.pop_front() {
                // Everything queued goes out together; bodies keep running
                // meanwhile, and their outcomes are reported afterwards.
                let mut later = Vec::new();
                updates.reserve(queue.iter().map(|q| q.1.len()).sum());
                for (handle, u, w) in queue.drain(..) {
                    later.push(handle);
                    updates.extend(u);
                    wait |= w;
                }
                let sent = {
                    let send = checkpointer.submit(updates, wait);
                    let mut send = std::pin::pin!(send);
                    loop {
                        if running.is_empty() {
                            break send.await;
                        }
                        match select(send.as_mut(), running.next()).await {
                            Either::Left((sent, _)) => break sent,
                            Either::Right((Some(done), _)) => finished.push(done),
                            Either::Right((None, _)) => break send.await,
                        }
                    }
                };
                match sent {
                    Ok(Flushed::Sent(delta)) => {
                        let updated = changes_for(&hooks, &delta);
                        // The response answers them all; its operations once.
                        interpreter.checkpoint_finished(first, delta);
                        for handle in later {
                            interpreter.checkpoint_finished(handle, Vec::new());
                        }
                        report_ended(&interpreter, &mut hooks, &mut unmerged, service.now());
                        changed(&mut hooks, &interpreter, updated, &arn, service.now());
                    }
                    Ok(Flushed::Revoked) => break pending(),
                    Err(e) => break fail_or_retry(e)?,
                }
                continue;
            }
            // Bodies are running and nothing is being sent. STARTs held
            // back for them (and for their child contexts) wait a little
            // for an outcome to share a request with; past that they go
            // out on their own, so that the service records the start of
            // a long body before it ends (or the process dies in it).
            if let Some(epoch) = interpreter.deferred_epoch() {
                // A body that ends at its first poll (most do) reads no
                // clock and arms no timer.
                match running.next().now_or_never() {
                    Some(Some(done)) => {
                        finished.push(done);
                        while let Some(Some(done)) = running.next().now_or_never() {
                            finished.push(done);
                        }
                        continue;
                    }
                    Some(None) => {}
                    None => {
                        // Measured from when these STARTs were first held
                        // (not from an earlier set, sent since).
                        let since = match deferred_since {
                            Some((e, since)) if e == epoch => since,
                            _ => {
                                let now = Instant::now();
                                deferred_since = Some((epoch, now));
                                now
                            }
                        };
                        let deadline = since + run.batching.start_delay;
                        if Instant::now() < deadline {
                            let wait = select(running.next(), Delay::until(deadline)).await;
                            if let Either::Left((Some(done), _)) = wait {
                                finished.push(done);
                                continue;
                            }
                        }
                    }
                }
                // Past the delay (or no body left): the STARTs go out now.
                deferred_since = None;
                interpreter.send_deferred();
                continue;
            }
            deferred_since = None;
            match running.next().await {
                Some(done) => {
                    finished.push(done);
                    // Report every body that is done by now together.
                    while let Some(Some(done)) = running.next().now_or_never() {
                        finished.push(done);
                    }
                }
                None => {
                    break failed(ErrorObject::new(
                        "InternalError",
                        "the interpreter stopped without finishing",
                    ));
                }
            }
        })
    }
    .await;
    // Ends whose answer never came (the invocation failed, or its updates
    // were held and sent at the end) are reported before it ends.
    report_ended(&interpreter, &mut hooks, &mut unmerged, service.now());
    if !hooks.is_empty() {
        let retry;
        let (status, error) = match &result {
            Ok(output) => (
                match output.status {
                    InvocationStatus::Succeeded => InvocationEndStatus::Succeeded,
                    InvocationStatus::Failed => InvocationEndStatus::Failed,
                    InvocationStatus::Pending => InvocationEndStatus::Pending,
                },
                output.error.as_ref(),
            ),
            Err(e) => {
                retry = ErrorObject::new("InvocationFailed", e.to_string());
                (InvocationEndStatus::Retry, Some(&retry))
            }
        };
        let history = interpreter.history();
        let end = InvocationEnd {
            execution_arn: &arn,
            status,
            error,
            result: result.as_ref().ok().and_then(|o| o.result.as_ref()),
            request_id: run.request_id,
            first_invocation: run.first_invocation,
            execution_started_at: history.execution().and_then(|op| op.start_timestamp),
            operations: history.operations(),
            at: service.now(),
        };
        hooks.each("on_invocation_end", |h| h.on_invocation_end(&end));
        hooks.report();
    }
    let output = result?;
    tracing::debug!(
        status = %output.status,
        replayed = interpreter.replayed(),
        executed = interpreter.executed(),
        checkpoints = checkpointer.requests,
        "durable invocation finished"
    );
    Ok(InvocationSummary {
        output,
        replayed: interpreter.replayed(),
        executed: interpreter.executed(),
        checkpoints: checkpointer.requests,
    })
}

/// The tracing target of the debug events for operations starting and
/// ending (`durable_yield::operation`).
pub const OPERATION_TARGET: &str = "durable_yield::operation";

/// The operations of a checkpoint answer, kept for the plugins'
/// operation-change hook (none without plugins, or without operations).
fn changes_for(hooks: &Active, delta: &[Operation]) -> Option<Vec<Operation>> {
    (!hooks.is_empty() && !delta.is_empty()).then(|| delta.to_vec())
}

/// Calls the plugins' operation-change hook once the answer's operations
/// were merged.
fn changed(
    hooks: &mut Active,
    interpreter: &Interpreter,
    updated: Option<Vec<Operation>>,
    arn: &str,
    at: Millis,
) {
    if let Some(updated) = updated {
        let change = OperationChange {
            execution_arn: arn,
            updated: &updated,
            operations: interpreter.history().operations(),
            at,
        };
        hooks.each("on_operation_change", |h| h.on_operation_change(&change));
    }
}

/// Hands what the interpreter observed to the plugins (and to `tracing`
/// at debug level). The end of an operation decided here waits in
/// `unmerged` until the service's answer to it is merged
/// ([`report_ended`]).
fn observed(
    interpreter: &mut Interpreter,
    hooks: &mut Active,
    unmerged: &mut Vec<Observation>,
    at: Millis,
) {
    for observation in interpreter.take_observations() {
        if let Observation::Ended {
            op,
            replayed: false,
            checkpointed: true,
            ..
        } = &observation
        {
            let merged = interpreter
                .history()
                .get(&op.id)
                .is_some_and(|r| r.status.is_terminal());
            if !merged {
                unmerged.push(observation);
                continue;
            }
        }
        report(interpreter, hooks, &observation, at);
    }
}

/// Reports the ends held in `unmerged`, now that their answer is merged.
fn report_ended(
    interpreter: &Interpreter,
    hooks: &mut Active,
    unmerged: &mut Vec<Observation>,
    at: Millis,
) {
    for observation in unmerged.drain(..) {
        report(interpreter, hooks, &observation, at);
    }
}

/// Hands one observation to the plugins and to `tracing`.
fn report(interpreter: &Interpreter, hooks: &mut Active, observation: &Observation, at: Millis) {
    let (op, replayed, status, error, result, end) = match observation {
        Observation::FunctionStarted {
            op,
            replay_children,
            replayed,
        } => {
            let event = function_event(op, *replay_children, *replayed, None, None, at);
            hooks.each("on_function_start", |h| h.on_function_start(&event));
            return;
        }
        Observation::FunctionEnded { op, outcome, error } => {
            let event = function_event(op, false, false, Some(*outcome), error.as_deref(), at);
            hooks.each("on_function_end", |h| h.on_function_end(&event));
            return;
        }
        Observation::Started {
            op,
            replayed,
            status,
        } => (op, *replayed, *status, None, None, false),
        Observation::Ended {
            op,
            replayed,
            status,
            error,
            result,
            ..
        } => (
            op,
            *replayed,
            *status,
            error.as_deref(),
            result.as_ref(),
            true,
        ),
        _ => return,
    };
    let record = interpreter.history().get(&op.id);
    // A step's attempt: the one that ended (a terminal record counts
    // it), or the one about to run.
    let recorded_attempts = record
        .and_then(|r| r.step_details.as_ref())
        .and_then(|d| d.attempt);
    let ended_on_record = record.is_some_and(|r| r.status.is_terminal());
    let attempt = (op.op_type == OperationType::Step).then(|| {
        if end && ended_on_record {
            recorded_attempts.unwrap_or(1)
        } else {
            recorded_attempts.unwrap_or(0) + 1
        }
    });
    let event = OperationEvent {
        id: &op.id,
        parent_id: op.parent.as_ref(),
        name: op.name.as_deref(),
        op_type: op.op_type,
        sub_type: op.sub_type.as_deref(),
        replayed,
        status,
        error,
        result,
        attempt,
        record,
        at,
    };
    tracing::debug!(
        target: OPERATION_TARGET,
        operation_id = %op.id,
        parent_id = op.parent.as_ref().map(tracing::field::display),
        name = op.name.as_deref(),
        r#type = %op.op_type,
        subtype = op.sub_type.as_deref(),
        replayed,
        status = %status,
        error_type = error.and_then(|e| e.error_type.as_deref()),
        "{}",
        if end { "operation ended" } else { "operation started" }
    );
    if end {
        hooks.each("on_operation_end", |h| h.on_operation_end(&event));
    } else {
        hooks.each("on_operation_start", |h| h.on_operation_start(&event));
    }
}

/// The function event of a context's code.
fn function_event<'a>(
    op: &'a OpRef,
    replay_children: bool,
    replayed: bool,
    outcome: Option<FunctionOutcome>,
    error: Option<&'a ErrorObject>,
    at: Millis,
) -> FunctionEvent<'a> {
    FunctionEvent {
        id: &op.id,
        parent_id: op.parent.as_ref(),
        name: op.name.as_deref(),
        op_type: op.op_type,
        sub_type: op.sub_type.as_deref(),
        attempt: None,
        replay_children,
        replayed,
        outcome,
        error,
        at,
    }
}

/// A step attempt handed to the plugins.
struct Attempt {
    id: OperationId,
    parent_id: Option<OperationId>,
    name: Option<String>,
    sub_type: &'static str,
    attempt: u32,
}

impl Attempt {
    fn of(run: &StepRun) -> Self {
        Attempt {
            id: *run.context.operation_id(),
            parent_id: run.parent_id,
            name: run.context.name().map(str::to_owned),
            sub_type: run.sub_type,
            attempt: run.context.attempt(),
        }
    }

    fn event(&self, at: Millis) -> AttemptEvent<'_> {
        AttemptEvent {
            id: &self.id,
            parent_id: self.parent_id.as_ref(),
            name: self.name.as_deref(),
            sub_type: self.sub_type,
            attempt: self.attempt,
            outcome: None,
            error: None,
            at,
        }
    }

    fn function(&self, at: Millis) -> FunctionEvent<'_> {
        FunctionEvent {
            id: &self.id,
            parent_id: self.parent_id.as_ref(),
            name: self.name.as_deref(),
            op_type: OperationType::Step,
            sub_type: Some(self.sub_type),
            attempt: Some(self.attempt),
            replay_children: false,
            replayed: false,
            outcome: None,
            error: None,
            at,
        }
    }

    fn started(&self, hooks: &mut Active, at: Millis) {
        let event = self.event(at);
        hooks.each("on_attempt_start", |h| h.on_attempt_start(&event));
        let function = self.function(at);
        hooks.each("on_function_start", |h| h.on_function_start(&function));
    }

    fn ended(&self, hooks: &mut Active, outcome: &StepOutcome, at: Millis) {
        let mut event = self.event(at);
        match outcome {
            Ok(_) => event.outcome = Some(AttemptOutcome::Succeeded),
            Err(failure) => {
                event.outcome = Some(AttemptOutcome::Failed);
                event.error = Some(failure.error_object());
            }
        }
        let mut function = self.function(at);
        function.outcome = Some(match event.outcome {
            Some(AttemptOutcome::Succeeded) => FunctionOutcome::Succeeded,
            _ => FunctionOutcome::Failed,
        });
        function.error = event.error;
        hooks.each("on_function_end", |h| h.on_function_end(&function));
        hooks.each("on_attempt_end", |h| h.on_attempt_end(&event));
    }
}

/// Runs one step body in its `durable_operation` span, turning a panic
/// into a failed attempt.
fn run_step(run: StepRun) -> impl Future<Output = (StepHandle, StepOutcome)> + Send {
    let ctx = &run.context;
    let span = tracing::info_span!(
        "durable_operation",
        operation_id = %ctx.operation_id(),
        parent_id = tracing::field::Empty,
        name = ctx.name().unwrap_or(""),
        r#type = "STEP",
        subtype = run.sub_type,
        attempt = ctx.attempt(),
    );
    if let Some(parent) = &run.parent_id {
        span.record("parent_id", tracing::field::display(parent));
    }
    let handle = run.handle;
    CatchUnwind(run.future)
        .instrument(span)
        .map(move |outcome| (handle, outcome))
}

/// Ends the invocation: sends what is held back, then builds the response.
async fn finish<S: DurableService + ?Sized>(
    checkpointer: &mut Checkpointer<'_, S>,
    execution: Option<OperationId>,
    outcome: Outcome,
) -> Result<InvocationOutput, InvocationError> {
    // Everything held back goes out before the invocation ends.
    match checkpointer.flush().await {
        Ok(Flushed::Sent(_)) => {}
        Ok(Flushed::Revoked) => return Ok(pending()),
        Err(e) => return fail_or_retry(e),
    }
    Ok(match outcome {
        Outcome::Succeeded(payload) if payload.as_str().chars().count() > MAX_EXECUTION_RESULT => {
            failed(ErrorObject::new(
                "ResultTooLarge",
                format!(
                    "the workflow result is {} bytes, over the service's limit of \
                     {MAX_EXECUTION_RESULT} characters",
                    payload.len()
                ),
            ))
        }
        // Measured as sent: a JSON string, escaping included.
        Outcome::Succeeded(payload) if json_string_len(payload.as_str()) > MAX_RESPONSE_RESULT => {
            match checkpointer.complete_execution(execution, payload).await {
                Ok(output) => output,
                Err(e) => return fail_or_retry(e),
            }
        }
        Outcome::Succeeded(payload) => succeeded(payload),
        Outcome::Failed(error) => failed(error),
        Outcome::Pending { .. } => pending(),
    })
}

/// The service call that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Checkpoint,
    GetState,
}

impl Call {
    fn name(self) -> &'static str {
        match self {
            Call::Checkpoint => "CheckpointDurableExecution",
            Call::GetState => "GetDurableExecutionState",
        }
    }
}

/// A failed call to the service, with the call.
#[derive(Debug)]
struct CallError {
    call: Call,
    error: ServiceError,
}

trait During<T> {
    fn during(self, call: Call) -> Result<T, CallError>;
}

impl<T> During<T> for Result<T, ServiceError> {
    fn during(self, call: Call) -> Result<T, CallError> {
        self.map_err(|error| CallError { call, error })
    }
}

/// A rejected request fails the execution (`CheckpointRejected`, or
/// `ExecutionStateRejected` for a state page), naming the call; anything
/// else fails the invocation, so that the service invokes again.
fn fail_or_retry(error: CallError) -> Result<InvocationOutput, InvocationError> {
    let CallError { call, error } = error;
    match error {
        ServiceError::Rejected(message) => {
            let error_type = match call {
                Call::Checkpoint => "CheckpointRejected",
                Call::GetState => "ExecutionStateRejected",
            };
            tracing::warn!(call = call.name(), %message, "request rejected; failing the execution");
            Ok(failed(ErrorObject::new(
                error_type,
                format!("{} was rejected by the service: {message}", call.name()),
            )))
        }
        other => {
            tracing::warn!(call = call.name(), error = %other, "request failed; failing the invocation");
            Err(InvocationError(other))
        }
    }
}

enum Flushed {
    /// The operations the responses carried.
    Sent(Vec<Operation>),
    /// The service withheld the next token: stop checkpointing.
    Revoked,
}

/// Sends checkpoints for one invocation: rotates the token, splits and
/// (optionally) holds back updates, pages in large responses.
struct Checkpointer<'a, S: ?Sized> {
    service: &'a S,
    arn: &'a str,
    token: String,
    config: &'a BatchConfig,
    held: Vec<OperationUpdate>,
    held_bytes: usize,
    held_since: Option<Millis>,
    requests: u64,
}

impl<S: DurableService + ?Sized> Checkpointer<'_, S> {
    /// Loads the pages after `marker` with `GetDurableExecutionState`. A
    /// marker seen before (the pages loop) or more than
    /// [`MAX_STATE_PAGES`] pages fail the invocation instead of looping
    /// until the Lambda timeout.
    async fn page_in(
        &mut self,
        mut marker: Option<String>,
        operations: &mut Vec<Operation>,
    ) -> Result<(), CallError> {
        let mut seen = HashSet::new();
        // Pages are kept apart and joined once at the end: one move per
        // operation, however many pages (extending page by page would copy
        // the history again on every reallocation).
        let mut pages: Vec<Vec<Operation>> = Vec::new();
        while let Some(m) = marker.take().filter(|m| !m.is_empty()) {
            let invalid = |what: String| CallError {
                call: Call::GetState,
                error: ServiceError::InvalidResponse(what),
            };
            if seen.len() >= MAX_STATE_PAGES {
                return Err(invalid(format!(
                    "the execution state did not end after {MAX_STATE_PAGES} pages"
                )));
            }
            if !seen.insert(m.clone()) {
                return Err(invalid(format!(
                    "the execution state pages loop: marker {m:?} came back after {} pages",
                    seen.len()
                )));
            }
            let page = self
                .service
                .get_state(self.arn, &self.token, &m)
                .await
                .during(Call::GetState)?;
            pages.push(page.operations);
            marker = page.next_marker;
        }
        if !pages.is_empty() {
            operations.reserve_exact(pages.iter().map(Vec::len).sum());
            for page in pages {
                operations.extend(page);
            }
        }
        Ok(())
    }

    /// Whether held updates have waited long enough.
    fn is_due(&self) -> bool {
        let delay = Millis::try_from(self.config.max_delay.as_millis()).unwrap_or(Millis::MAX);
        self.held_since
            .is_some_and(|since| self.service.now().saturating_sub(since) >= delay)
    }

    /// Takes `updates` for sending: sends them (and everything held) now,
    /// or holds them back and acknowledges at once with no operations.
    async fn submit(
        &mut self,
        updates: Vec<OperationUpdate>,
        wait_for_response: bool,
    ) -> Result<Flushed, CallError> {
        let bytes: usize = updates.iter().map(OperationUpdate::approx_size).sum();
        let now = wait_for_response || self.config.max_delay.is_zero();
        if self.held.is_empty()
            && now
            && updates.len() <= self.config.max_updates
            && bytes <= self.config.max_bytes
        {
            // The common case: nothing held, one request, sent as it is.
            return self.send(updates).await;
        }
        self.held_bytes += bytes;
        if self.held.is_empty() {
            self.held = updates;
        } else {
            self.held.extend(updates);
        }
        if self.held_since.is_none() {
            self.held_since = Some(self.service.now());
        }
        let full =
            self.held.len() >= self.config.max_updates || self.held_bytes >= self.config.max_bytes;
        if now || full || self.is_due() {
            self.flush().await
        } else {
            Ok(Flushed::Sent(Vec::new()))
        }
    }

    /// Sends everything held, in order, in as few requests as the limits
    /// allow.
    async fn flush(&mut self) -> Result<Flushed, CallError> {
        self.held_since = None;
        let bytes = std::mem::take(&mut self.held_bytes);
        let held = std::mem::take(&mut self.held);
        if held.is_empty() {
            return Ok(Flushed::Sent(Vec::new()));
        }
        if held.len() <= self.config.max_updates && bytes <= self.config.max_bytes {
            // The common case: one request, sent as it is.
            return self.send(held).await;
        }
        let mut held = held.into_iter().peekable();
        let mut delta = Vec::new();
        while held.peek().is_some() {
            let mut request = Vec::with_capacity(self.config.max_updates.min(held.len()));
            let mut size = 0;
            while let Some(next) = held.peek() {
                let next_size = next.approx_size();
                let fits = request.len() < self.config.max_updates
                    && size + next_size <= self.config.max_bytes;
                if !request.is_empty() && !fits {
                    break;
                }
                size += next_size;
                request.extend(held.next());
            }
            match self.send(request).await? {
                Flushed::Sent(ops) => delta.extend(ops),
                Flushed::Revoked => return Ok(Flushed::Revoked),
            }
        }
        Ok(Flushed::Sent(delta))
    }

    /// One `CheckpointDurableExecution` request.
    async fn send(&mut self, updates: Vec<OperationUpdate>) -> Result<Flushed, CallError> {
        self.requests += 1;
        tracing::trace!(updates = updates.len(), "checkpoint");
        let response = self
            .service
            .checkpoint(self.arn, &self.token, updates)
            .await
            .during(Call::Checkpoint)?;
        let Some(next) = response.checkpoint_token else {
            tracing::info!("the service withheld the checkpoint token; suspending");
            return Ok(Flushed::Revoked);
        };
        self.token = next;
        let mut operations = response.operations;
        self.page_in(response.next_marker, &mut operations).await?;
        Ok(Flushed::Sent(operations))
    }

    /// Records a result too large for the response with an EXECUTION
    /// SUCCEED checkpoint; the response then carries an empty result.
    async fn complete_execution(
        &mut self,
        execution: Option<OperationId>,
        payload: Payload,
    ) -> Result<InvocationOutput, CallError> {
        let Some(id) = execution else {
            return Ok(failed(ErrorObject::new(
                "InternalError",
                "no EXECUTION operation to record the large result on",
            )));
        };
        let mut update =
            OperationUpdate::new(id, OperationType::Execution, OperationAction::Succeed);
        update.payload = Some(payload);
        // Whether or not a next token comes back, the execution is closed.
        self.send(vec![update]).await?;
        Ok(succeeded(Payload::from("")))
    }
}

fn succeeded(result: Payload) -> InvocationOutput {
    InvocationOutput {
        status: InvocationStatus::Succeeded,
        result: Some(result),
        error: None,
    }
}

fn failed(error: ErrorObject) -> InvocationOutput {
    InvocationOutput {
        status: InvocationStatus::Failed,
        result: None,
        error: Some(error.truncated()),
    }
}

fn pending() -> InvocationOutput {
    InvocationOutput {
        status: InvocationStatus::Pending,
        result: None,
        error: None,
    }
}

/// Turns a panic in a step body into a failed attempt.
struct CatchUnwind(BoxFuture<StepOutcome>);

impl Future for CatchUnwind {
    type Output = StepOutcome;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<StepOutcome> {
        let inner = self.0.as_mut();
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(poll) => poll,
            Err(panic) => Poll::Ready(Err(StepFailure::new(
                "StepPanicked",
                format!("the step body panicked: {}", panic_message(panic.as_ref())),
            ))),
        }
    }
}

//! One invocation, start to end: the code path shared by the local runner
//! and the Lambda handler.

mod checkpointer;
mod finish;
mod hooks;
mod step;

use checkpointer::*;
use finish::*;
use hooks::*;
use step::*;

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use durable_yield_interpreter::finished_since_last_write;
use serde::Serialize;
use serde::de::DeserializeOwned;

use futures_util::FutureExt;
use futures_util::future::{Either, select};
use futures_util::stream::{FuturesUnordered, StreamExt};
use tracing::{Instrument, Level};

use crate::engine::{
    Action, CheckpointHandle, History, Interpreter, Observation, OpRef, Outcome, StepHandle,
    StepOutcome, StepRun,
};
use crate::model::{
    ErrorObject, InvocationInput, InvocationOutput, InvocationStatus, Millis, Operation,
    OperationAction, OperationId, OperationType, OperationUpdate, Payload, json_string_len,
};
use crate::plugin::{
    Active, AttemptEvent, AttemptOutcome, ChainedInvokeStart, FunctionEvent, FunctionOutcome,
    InvocationEnd, InvocationEndStatus, InvocationStart, OperationChange, OperationEvent, Plugins,
    Scope, UserCode, within,
};
use crate::service::{DurableService, Now, ServiceError, os_entropy};
use crate::timer::Delay;
use crate::{StepFailure, WorkflowFn};
use std::sync::Arc;

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
/// A body still running after [`CheckpointBatching::start_delay`] has its START
/// sent on its own, so that the service knows the step started.
///
/// With [`CheckpointBatching::max_delay`] above zero, a step's checkpoint may wait
/// for the following steps' and share their request: fewer requests, at a
/// price: under at-least-once semantics a crash re-runs every step whose
/// result was not sent yet. Held updates are sent when the delay has passed
/// (checked whenever the workflow makes a durable call or a step is about
/// to run), when a request is full, when the workflow needs the service's
/// answer (a wait) and always before the invocation returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointBatching {
    max_updates: usize,
    max_bytes: usize,
    max_delay: Duration,
    start_delay: Duration,
}

/// The default [`CheckpointBatching::start_delay`].
const DEFAULT_START_DELAY: Duration = Duration::from_millis(100);

impl Default for CheckpointBatching {
    fn default() -> Self {
        CheckpointBatching {
            max_updates: MAX_UPDATES_PER_REQUEST,
            max_bytes: MAX_REQUEST_BYTES,
            max_delay: Duration::ZERO,
            start_delay: DEFAULT_START_DELAY,
        }
    }
}

impl CheckpointBatching {
    /// The default: no delay, service limits, a 100 ms start delay.
    pub fn new() -> Self {
        CheckpointBatching::default()
    }

    /// Lets step checkpoints wait up to `delay` to share a request. Zero
    /// by default. Measured with the service's clock
    /// ([`DurableService::now`]: the system clock on Lambda, the virtual
    /// clock on the local runner).
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Sets how long the START of a step attempt (and of the child
    /// contexts around it) may wait, while the body runs, for the body's
    /// outcome to share its request. 100 ms by default, as AWS's SDKs: a
    /// body that ends sooner costs one request, START and outcome
    /// together; a longer one has its START recorded while it runs, so
    /// that a crash inside it leaves `StepStarted` in the history. Real
    /// time, on every runner. `Duration::ZERO` sends every START as soon
    /// as its body starts (a second request per step that does not end at
    /// its first poll).
    pub fn start_delay(mut self, delay: Duration) -> Self {
        self.start_delay = delay;
        self
    }

    /// Caps the updates per request (1 to [`MAX_UPDATES_PER_REQUEST`], the
    /// default).
    pub fn max_updates(mut self, n: usize) -> Self {
        self.max_updates = n.clamp(1, MAX_UPDATES_PER_REQUEST);
        self
    }

    /// Caps the bytes of update JSON per request (at most
    /// [`MAX_REQUEST_BYTES`], the default). An update larger than the cap
    /// is sent in a request of its own.
    pub fn max_bytes(mut self, n: usize) -> Self {
        self.max_bytes = n.clamp(1, MAX_REQUEST_BYTES);
        self
    }
}

/// An invocation that could not finish: the service should invoke again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the invocation failed and should be retried: {0}")]
pub struct InvocationError(pub ServiceError);

/// What one invocation did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
/// `service`, with the default [`CheckpointBatching`].
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
    run_invocation_with(workflow, input, service, &CheckpointBatching::default()).await
}

/// [`run_invocation`] with a [`CheckpointBatching`].
pub async fn run_invocation_with<I, O, W, S>(
    workflow: &W,
    input: InvocationInput,
    service: &S,
    batching: &CheckpointBatching,
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
    batching: &CheckpointBatching,
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
        tenant_id = tracing::field::Empty,
        first_invocation,
        replaying = !first_invocation,
    );
    if let Some(lambda) = lambda {
        span.record("request_id", lambda.request_id);
        if let Some(tenant) = lambda.tenant_id {
            span.record("tenant_id", tenant);
        }
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
    /// The tenant the invocation runs for (Lambda's tenant isolation mode).
    pub(crate) tenant_id: Option<&'a str>,
}

/// How to run one invocation.
struct Run<'a> {
    batching: &'a CheckpointBatching,
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
        held_sizes: Vec::new(),
        held_bytes: 0,
        held_since: None,
        requests: 0,
    };
    // Indexed page by page as the pages come (`Pages for History`:
    // `History::append_in_place`).
    let mut history = History::new(input.initial_execution_state.operations);
    let marker = input.initial_execution_state.next_marker;
    if let Err(error) = checkpointer.page_in(marker, &mut history).await {
        return Ok(InvocationSummary {
            output: fail_or_retry(error)?,
            replayed: 0,
            executed: 0,
            checkpoints: 0,
        });
    }
    let operations = history.operations();
    tracing::debug!(
        execution = %arn,
        operations = operations.len(),
        "durable invocation started"
    );
    if let Err(message) = run.plugins.prepare(operations).await {
        tracing::warn!(%message, "failing the invocation; the service will invoke it again");
        return Err(InvocationError(ServiceError::Transient(message)));
    }

    let mut hooks = if run.plugins.is_empty() {
        Active::none()
    } else {
        let execution = operations
            .iter()
            .find(|op| op.op_type == OperationType::Execution);
        let execution_started_at = execution.and_then(|op| op.start_timestamp);
        let now = Now::of(service);
        let start = InvocationStart {
            execution_arn: &arn,
            request_id: run.request_id,
            trace_header: run.trace_header,
            first_invocation: run.first_invocation,
            execution_started_at,
            execution_input: execution.and_then(execution_input),
            operations,
            updated_operation_ids: input.updated_operation_ids.as_deref().unwrap_or(&[]),
            at: now.at,
            time: now.time,
        };
        let mut hooks = run.plugins.start(&start);
        hooks.each("on_invocation_start", |h| h.on_invocation_start(&start));
        hooks
    };
    // What the plugins make current while the workflow's code runs.
    let workflow_scopes = hooks.scopes(UserCode::Workflow);
    // Operation starts and ends are tracked only for someone who listens.
    let observing = !hooks.is_empty() || tracing::enabled!(target: OPERATION_TARGET, Level::DEBUG);
    // Changed since the last invocation: what the service lists, and what
    // it finished after the SDK last wrote (it may not list an answered
    // callback).
    let updated: Vec<OperationId> = if observing {
        let listed = input.updated_operation_ids.iter().flatten();
        let mut updated: Vec<OperationId> =
            listed.filter_map(|id| OperationId::new(id).ok()).collect();
        updated.extend(finished_since_last_write(operations));
        updated
    } else {
        Vec::new()
    };
    let mut interpreter = Interpreter::with_history(&arn, history, workflow);
    interpreter.set_entropy(os_entropy());
    if observing {
        interpreter.observe(updated);
    }
    if !hooks.is_empty() {
        interpreter.scope_contexts(hooks.context_scope());
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
                // Attempts are kept only for plugins; without any, the map
                // stays empty and is not even hashed into.
                let attempt = if attempts.is_empty() {
                    None
                } else {
                    attempts.remove(&handle)
                };
                if let Some(attempt) = attempt {
                    attempt.ended(&mut hooks, &outcome, Now::of(service));
                }
                interpreter.step_finished(handle, outcome);
            }
            loop {
                let action = within(&workflow_scopes, || interpreter.poll());
                if observing {
                    observed(&mut interpreter, &mut hooks, &mut unmerged, service);
                }
                let Some(action) = action else { break };
                match action {
                    Action::RunStep(run) => {
                        if checkpointer.is_due() {
                            match checkpointer.flush().await {
                                Ok(Flushed::Sent(delta)) => absorb(
                                    delta,
                                    &mut interpreter,
                                    &mut hooks,
                                    &mut unmerged,
                                    &arn,
                                    service,
                                ),
                                Ok(Flushed::Revoked) => break 'invocation pending(),
                                Err(e) => break 'invocation fail_or_retry(e)?,
                            }
                        }
                        let mut scopes = Vec::new();
                        if !hooks.is_empty() {
                            let attempt = Attempt::of(&run);
                            scopes = attempt.started(&mut hooks, Now::of(service));
                            attempts.insert(run.handle, attempt);
                        }
                        // A body that ends at its first poll (most do)
                        // needs no task of its own in `running`.
                        let mut body = run_step(run, scopes);
                        match (&mut body).now_or_never() {
                            Some(done) => finished.push(done),
                            None => running.push(body),
                        }
                    }
                    Action::Checkpoint {
                        handle,
                        mut updates,
                        wait_for_response,
                    } => {
                        if !hooks.is_empty() {
                            propagate_trace(&mut hooks, &arn, &mut updates);
                        }
                        queue.push_back((handle, updates, wait_for_response));
                    }
                    // Reported above: the code of the contexts that
                    // started runs next, in what the plugins gave it.
                    Action::Observations => {}
                    Action::Finish(outcome) => {
                        // A transient failure's end comes with what ended
                        // before it, unanswered: recorded before the
                        // invocation fails, so that it is not run again.
                        if matches!(outcome, Outcome::Retry(_)) && !queue.is_empty() {
                            let updates: Vec<OperationUpdate> = queue
                                .drain(..)
                                .flat_map(|(_, updates, _)| updates)
                                .collect();
                            // Sent now and merged as any answer is, so
                            // that the plugins hear of those ends with what
                            // the service recorded.
                            match checkpointer.submit(updates, true).await {
                                Ok(Flushed::Sent(delta)) => absorb(
                                    delta,
                                    &mut interpreter,
                                    &mut hooks,
                                    &mut unmerged,
                                    &arn,
                                    service,
                                ),
                                Ok(Flushed::Revoked) => break 'invocation pending(),
                                Err(e) => break 'invocation fail_or_retry(e)?,
                            }
                        }
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
                        let last = delta.merge_earlier(&mut interpreter);
                        interpreter.checkpoint_finished(first, last);
                        for handle in later {
                            interpreter.checkpoint_finished(handle, Vec::new());
                        }
                        report_ended(&interpreter, &mut hooks, &mut unmerged, service);
                        changed(&mut hooks, &interpreter, updated, &arn, service);
                    }
                    Ok(Flushed::Revoked) => break pending(),
                    Err(e) => break fail_or_retry(e)?,
                }
                continue;
            }
            // Bodies that ended when they were handed out are reported
            // first: their outcomes may share a request with the STARTs
            // held back for them.
            if !finished.is_empty() {
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
    report_ended(&interpreter, &mut hooks, &mut unmerged, service);
    if !hooks.is_empty() {
        let retry;
        let (status, error) = match &result {
            Ok(output) => (
                match output.status {
                    InvocationStatus::Succeeded => InvocationEndStatus::Succeeded,
                    InvocationStatus::Failed => InvocationEndStatus::Failed,
                    InvocationStatus::Pending => InvocationEndStatus::Pending,
                    // (No other status is made by the driver.)
                    _ => InvocationEndStatus::Failed,
                },
                output.error.as_ref(),
            ),
            Err(e) => {
                retry = ErrorObject::new("InvocationFailed", e.to_string());
                (InvocationEndStatus::Retry, Some(&retry))
            }
        };
        let history = interpreter.history();
        let now = Now::of(service);
        let end = InvocationEnd {
            execution_arn: &arn,
            status,
            error,
            result: result.as_ref().ok().and_then(|o| o.result.as_ref()),
            request_id: run.request_id,
            first_invocation: run.first_invocation,
            execution_started_at: history.execution().and_then(|op| op.start_timestamp),
            execution_input: history.execution().and_then(execution_input),
            operations: history.operations(),
            at: now.at,
            time: now.time,
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

/// The input an EXECUTION operation records.
fn execution_input(execution: &Operation) -> Option<&Payload> {
    execution
        .execution_details
        .as_deref()
        .and_then(|d| d.input_payload.as_ref())
}

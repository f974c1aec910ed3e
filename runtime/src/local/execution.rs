//! One execution held by the local runner: invoking it, its clock, its
//! callbacks and what it reports.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::*;

/// Where an injected crash strikes a checkpoint request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CrashPoint {
    /// The process dies before the request reaches the service: nothing of
    /// it is applied.
    BeforeRequest,
    /// The process dies after the service applied the request, before the
    /// response arrives.
    AfterRequest,
}

/// One execution held by the local runner: the in-process service.
///
/// Cloning gives another handle to the same execution.
#[derive(Clone)]
pub struct LocalExecution {
    pub(super) state: Arc<Mutex<ExecState>>,
    pub(super) functions: Arc<HashMap<String, LocalFunction>>,
    pub(super) page_size: usize,
    pub(super) max_failed_invocations: u32,
    pub(super) batching: CheckpointBatching,
    pub(super) plugins: Plugins,
    /// Whether invocations carry a request id and a trace header
    /// ([`LocalRunner::lambda_trace_headers`](super::LocalRunner::lambda_trace_headers)).
    pub(super) trace_headers: bool,
    /// The `Root` of those headers, when an invoke's START named it.
    pub(super) trace_root: Option<String>,
}

impl fmt::Debug for LocalExecution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalExecution")
            .field("status", &self.status())
            .field("invocations", &self.invocations())
            .finish_non_exhaustive()
    }
}

impl LocalExecution {
    pub(super) fn lock(&self) -> MutexGuard<'_, ExecState> {
        // A panic while the lock is held cannot leave the state half
        // updated (batches are validated before anything is applied), so a
        // poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Invokes the workflow once, as the service would, and applies its
    /// response. Does nothing once the execution is closed.
    pub async fn invoke<I, O, W>(&self, workflow: &W) -> Option<InvocationSummary>
    where
        I: DeserializeOwned,
        O: Serialize + 'static,
        W: WorkflowFn<I, O> + ?Sized,
    {
        self.invoke_crashing(workflow, std::future::pending()).await
    }

    /// Invokes the workflow once, like [`LocalExecution::invoke`], and
    /// kills the invocation when `crash` completes first, as if the
    /// process had died in the middle of it (out of memory, a Lambda
    /// timeout): whatever it had not sent yet never reaches the service,
    /// the invocation counts as failed and the next one starts from what
    /// was recorded. Returns `None` if the crash struck (or the execution
    /// was already closed).
    ///
    /// For example, a crash a second into a body that never ends finds its
    /// START recorded (the START goes out while the body runs, see
    /// [`CheckpointBatching::start_delay`]), and the next invocation runs the
    /// body again:
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use durable_yield::{LocalRunner, StepError, Workflow};
    /// # use durable_yield::model::OperationStatus;
    /// async fn slow(mut wf: Workflow, _: ()) -> Result<u32, StepError> {
    ///     wf.step("slow", |_| async {
    ///         std::future::pending::<()>().await; // never ends
    ///         Ok(1)
    ///     })
    ///     .await
    /// }
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    /// # rt.block_on(async {
    /// let execution = LocalRunner::new().start(&()).unwrap();
    /// let crash = tokio::time::sleep(Duration::from_secs(1));
    /// assert!(execution.invoke_crashing(&slow, crash).await.is_none());
    /// let step = &execution.operations()[1];
    /// assert_eq!(step.status, OperationStatus::Started);
    /// # });
    /// ```
    pub async fn invoke_crashing<I, O, W, C>(
        &self,
        workflow: &W,
        crash: C,
    ) -> Option<InvocationSummary>
    where
        I: DeserializeOwned,
        O: Serialize + 'static,
        W: WorkflowFn<I, O> + ?Sized,
        C: Future<Output = ()>,
    {
        let input = {
            let mut s = self.lock();
            if s.closed.is_some() {
                return None;
            }
            s.invocations += 1;
            s.token_seq += 1;
            let token = format!("local-token-{}", s.token_seq);
            s.token = Some(token.clone());
            let (invocation, at) = (s.invocations, s.now);
            s.timeline.push(TimelineEvent::Invoked { invocation, at });
            let visible = s.pages(&token);
            let end = visible.len().min(self.page_size);
            // Room for every page: the driver's history keeps this vector
            // and appends the later pages to it.
            let mut first = Vec::with_capacity(visible.len());
            first.extend(visible[..end].iter().map(|&i| s.ops[i].clone()));
            let mut input = InvocationInput::new(
                s.arn.clone(),
                token,
                ExecutionState::new(first, (end < visible.len()).then(|| end.to_string())),
            );
            input.updated_operation_ids = Some(std::mem::take(&mut s.updated));
            let lambda = self.trace_headers.then(|| {
                let n = s.invocations;
                let request_id = format!("local-request-{n}");
                let header = lambda_trace_header(&s.arn, s.start, n, self.trace_root.as_deref());
                (request_id, header)
            });
            (input, lambda)
        };
        let (input, lambda) = input;
        let request = lambda
            .as_ref()
            .map(|(request_id, header)| crate::driver::LambdaRequest {
                request_id,
                trace_header: Some(header),
                tenant_id: None,
            });
        let service = LocalService {
            state: self.state.clone(),
            page_size: self.page_size,
        };
        let invocation = run_invocation_traced(
            workflow,
            input,
            &service,
            &self.batching,
            request.as_ref(),
            &self.plugins,
        );
        let result = {
            let invocation = std::pin::pin!(invocation);
            let crash = std::pin::pin!(crash);
            match futures_util::future::select(invocation, crash).await {
                futures_util::future::Either::Left((result, _)) => result,
                futures_util::future::Either::Right(((), _)) => {
                    self.lock().crashed = true;
                    Err(InvocationError(ServiceError::Transient(
                        "injected crash: the process died during the invocation".into(),
                    )))
                }
            }
        };
        {
            let mut s = self.lock();
            s.token = None;
            s.finish_invocation(result.clone(), self.max_failed_invocations);
        }
        self.run_invoked_functions().await;
        result.ok()
    }

    /// Runs the functions the last invocation invoked; their outcomes
    /// complete the invokes when their (virtual) time has passed.
    async fn run_invoked_functions(&self) {
        let (pending, now) = {
            let mut s = self.lock();
            (std::mem::take(&mut s.pending_invokes), s.now)
        };
        for (op, function_name, input, trace_header) in pending {
            let Some(function) = self
                .functions
                .get(&resolve_function(&function_name))
                .cloned()
            else {
                continue;
            };
            // The invoked execution starts a millisecond after the invoking
            // invocation, and its outcome reaches the invoking execution a
            // millisecond after it ends, as a real service's would, a
            // little later (so that their times never overlap).
            let start = now.saturating_add(1);
            let env = super::InvokeEnv {
                start,
                plugins: self.plugins.clone(),
                trace_headers: self.trace_headers,
                trace_header,
            };
            let (result, elapsed, run) = function(input.clone(), env).await;
            let mut s = self.lock();
            let due = start.saturating_add(elapsed.max(0)).saturating_add(1);
            s.invoke_results.push((due, op, result));
            s.invoked.push(InvokedFunction {
                operation_id: op,
                function_name,
                input,
                run,
            });
        }
    }

    /// If the workflow waits for a timer, moves the virtual clock to the
    /// earliest one and fires every timer due by then: waits succeed,
    /// steps waiting for a retry become READY. Returns whether one fired.
    pub fn advance_time(&self) -> bool {
        self.lock().advance_time()
    }

    /// The execution's status.
    pub fn status(&self) -> ExecutionStatus {
        match self.lock().closed {
            None => ExecutionStatus::Running,
            Some(Closed::Succeeded(_)) => ExecutionStatus::Succeeded,
            Some(Closed::Failed(_)) => ExecutionStatus::Failed,
            Some(Closed::TimedOut(_)) => ExecutionStatus::TimedOut,
        }
    }

    /// How many invocations ran.
    pub fn invocations(&self) -> u32 {
        self.lock().invocations
    }

    /// How many checkpoint requests were accepted or rejected so far.
    pub fn checkpoint_requests(&self) -> u64 {
        self.lock().checkpoint_requests
    }

    /// Makes checkpoint request number `request` (counting every request
    /// of this execution from 1, see [`LocalExecution::checkpoint_requests`])
    /// crash the invocation at `point`, as if the process had died: the
    /// invocation fails and the runner invokes again, as the service would.
    pub fn inject_crash(&self, request: u64, point: CrashPoint) {
        self.lock().crashes.push((request, point));
    }

    /// A copy of the operations.
    pub fn operations(&self) -> Vec<Operation> {
        self.lock().ops.clone()
    }

    /// The virtual clock.
    pub fn now(&self) -> Millis {
        self.lock().now
    }

    /// Moves the virtual clock forward by `by` (rounded down to whole
    /// milliseconds), e.g. from a step body, to stand for time a step
    /// takes. Timers that fall due are not completed until the next
    /// [`LocalExecution::advance_time`] or checkpoint.
    pub fn advance_clock(&self, by: std::time::Duration) {
        let by = Millis::try_from(by.as_millis()).unwrap_or(Millis::MAX);
        let mut state = self.lock();
        state.now = state.now.saturating_add(by);
    }

    /// The id of the started callback named `name` (the first one, if
    /// several have the name).
    pub fn callback_id(&self, name: &str) -> Option<String> {
        let s = self.lock();
        s.ops
            .iter()
            .filter(|op| op.op_type == OperationType::Callback && op.name.as_deref() == Some(name))
            .find_map(|op| op.callback_details.as_ref()?.callback_id.clone())
    }

    /// Succeeds the callback `callback_id` with `body` (the raw text a
    /// sender sends: JSON, or plain text), as
    /// `SendDurableExecutionCallbackSuccess` does.
    pub fn send_callback_success(&self, callback_id: &str, body: &str) -> Result<(), LocalError> {
        self.answer(callback_id, Answer::Success(body.to_owned()))
    }

    /// Fails the callback `callback_id` with `error`, as
    /// `SendDurableExecutionCallbackFailure` does.
    pub fn send_callback_failure(
        &self,
        callback_id: &str,
        error: ErrorObject,
    ) -> Result<(), LocalError> {
        self.answer(callback_id, Answer::Failure(error))
    }

    /// Restarts the heartbeat time-out of the callback `callback_id`, as
    /// `SendDurableExecutionCallbackHeartbeat` does.
    pub fn send_callback_heartbeat(&self, callback_id: &str) -> Result<(), LocalError> {
        self.answer(callback_id, Answer::Heartbeat)
    }

    fn answer(&self, callback_id: &str, answer: Answer) -> Result<(), LocalError> {
        let mut s = self.lock();
        let Some(op) = s.callback_ids.get(callback_id).copied() else {
            return Err(LocalError::UnknownCallback(format!(
                "no callback of this execution has the id {callback_id:?}"
            )));
        };
        s.answer_callback(&op, answer)
            .map_err(LocalError::UnknownCallback)
    }

    /// What the execution waits for when only callbacks are left: their
    /// names and ids.
    pub(super) fn blocked_on(&self) -> Option<String> {
        let s = self.lock();
        if s.closed.is_some() || !s.updated.is_empty() || s.callbacks.is_empty() {
            return None;
        }
        let waiting: Vec<String> = s
            .callbacks
            .keys()
            .filter_map(|id| s.get(id))
            .map(|op| {
                let id = op
                    .callback_details
                    .as_ref()
                    .and_then(|d| d.callback_id.clone())
                    .unwrap_or_default();
                format!("callback {:?} (id {id})", op.name.as_deref().unwrap_or("-"))
            })
            .collect();
        Some(waiting.join(", "))
    }

    /// The execution's ARN (unique per execution).
    pub fn arn(&self) -> String {
        self.lock().arn.clone()
    }

    /// A copy of the timeline so far.
    pub fn timeline(&self) -> Timeline {
        let s = self.lock();
        s.timeline.to_timeline(&s.ops)
    }

    /// The execution so far as a history in the service's shape (see
    /// [`LocalRun::history`]).
    pub fn history(&self) -> crate::history::ExecutionHistory {
        let s = self.lock();
        s.timeline
            .to_timeline(&s.ops)
            .to_history_with(&s.arn, &s.ops, &s.invoked)
    }

    /// The run as it stands, with the result decoded.
    pub fn finish<O: DeserializeOwned>(&self) -> Result<LocalRun<O>, LocalError> {
        self.report(false)
    }

    /// Like [`LocalExecution::finish`], but moves the operations into the
    /// run instead of copying them when this is the last handle to the
    /// execution. (The timeline is built either way: the runner keeps it
    /// in a compact form while the execution runs.)
    pub fn into_run<O: DeserializeOwned>(self) -> Result<LocalRun<O>, LocalError> {
        self.report(Arc::strong_count(&self.state) == 1)
    }

    fn report<O: DeserializeOwned>(&self, take: bool) -> Result<LocalRun<O>, LocalError> {
        let mut s = self.lock();
        let (status, result, error) = match &s.closed {
            None => (ExecutionStatus::Running, None, None),
            Some(Closed::Succeeded(payload)) => {
                let text = if payload.is_empty() {
                    "null"
                } else {
                    payload.as_str()
                };
                let value =
                    serde_json::from_str(text).map_err(|e| LocalError::Result(e.to_string()))?;
                (ExecutionStatus::Succeeded, Some(value), None)
            }
            Some(Closed::Failed(e)) => (ExecutionStatus::Failed, None, Some(e.clone())),
            Some(Closed::TimedOut(e)) => (ExecutionStatus::TimedOut, None, Some(e.clone())),
        };
        let timeline = s.timeline.to_timeline(&s.ops);
        let operations = if take {
            std::mem::take(&mut s.ops)
        } else {
            s.ops.clone()
        };
        Ok(LocalRun {
            status,
            result,
            error,
            operations,
            invocations: s.invocations,
            elapsed: Duration::from_millis((s.now - s.start).max(0) as u64),
            timeline,
            arn: s.arn.clone(),
            invoked: s.invoked.clone(),
        })
    }
}

/// An X-Ray trace header as Lambda passes one to invocation `n` of the
/// execution `arn` started at `start` (epoch ms): `Root` given (the trace
/// of the invoke that started the execution) or from the start's seconds
/// and a hash of the ARN (the same for every invocation), `Parent` (the
/// invocation's segment) from the ARN and `n`.
fn lambda_trace_header(
    arn: &str,
    start: crate::model::Millis,
    n: u32,
    root: Option<&str>,
) -> String {
    // FNV-1a: stable, and enough to tell executions apart locally.
    let hash = |salt: u64| {
        arn.bytes()
            .chain(salt.to_le_bytes())
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            })
    };
    let (a, b) = (hash(u64::MAX), hash(u64::MAX - 1));
    let seconds = u32::try_from(start.max(0) / 1000).unwrap_or(u32::MAX);
    let parent = hash(u64::from(n)).max(1);
    let root = match root {
        Some(root) => root.to_owned(),
        None => format!("1-{seconds:08x}-{:08x}{a:016x}", b as u32),
    };
    format!("Root={root};Parent={parent:016x};Sampled=1")
}

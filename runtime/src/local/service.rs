//! The service side of the local runner: an execution's state and the
//! service's rules for applying checkpoints (PROTOCOL.md §4), served in
//! process through [`DurableService`].

use std::future::{Future, ready};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::driver::{InvocationError, InvocationSummary};
use crate::engine::MAX_WAIT_SECONDS;
use std::collections::HashMap;

use crate::model::{
    CallbackDetails, ContextDetails, ErrorObject, ExecutionState, IdMap, InvocationStatus, Millis,
    Operation, OperationAction, OperationId, OperationStatus, OperationType, OperationUpdate,
    Payload, WaitDetails,
};
use crate::service::{CheckpointResponse, DurableService, ServiceError};

use super::timeline::shorten;
use super::{CrashPoint, ExecutionStatus, MAX_PAYLOAD_CHARS, Timeline, TimelineEvent};

/// What a valid checkpoint batch does.
pub(super) struct Batch {
    /// The operations it creates or changes, in their new state.
    touched: Vec<Operation>,
    /// The status after each non-EXECUTION update, in order.
    statuses: Vec<OperationStatus>,
    /// The execution's end, if the batch carries an EXECUTION update.
    close: Option<Closed>,
}

pub(super) enum Closed {
    Succeeded(Payload),
    Failed(ErrorObject),
}

pub(super) struct ExecState {
    pub(super) arn: String,
    pub(super) ops: Vec<Operation>,
    pub(super) index: IdMap<usize>,
    pub(super) start: Millis,
    pub(super) now: Millis,
    pub(super) token: Option<String>,
    pub(super) token_seq: u64,
    pub(super) closed: Option<Closed>,
    pub(super) invocations: u32,
    pub(super) failed_invocations: u32,
    pub(super) idle_pendings: u32,
    pub(super) updated: Vec<String>,
    pub(super) timeline: Timeline,
    pub(super) checkpoint_requests: u64,
    pub(super) crashes: Vec<(u64, CrashPoint)>,
    /// Started callbacks: their time-outs.
    pub(super) callbacks: IdMap<CallbackTimers>,
    /// Callback ids to their operations.
    pub(super) callback_ids: HashMap<String, OperationId>,
    /// Answers to give callbacks by name when they start.
    pub(super) answer_rules: Vec<(String, CallbackAnswer)>,
    /// Answers due at a virtual time.
    pub(super) scheduled: Vec<(Millis, OperationId, CallbackAnswer)>,
    /// The names of the registered functions chained invokes may call.
    pub(super) functions: std::collections::HashSet<String>,
    /// Invokes started by the last invocation: operation, function, input.
    pub(super) pending_invokes: Vec<(OperationId, String, String)>,
    /// Outcomes of invoked functions, due at a virtual time.
    pub(super) invoke_results: Vec<(Millis, OperationId, Result<String, ErrorObject>)>,
    /// The functions invoked so far.
    pub(super) invoked: Vec<super::InvokedFunction>,
    /// The operations the pages of the current token list (`visible()` as
    /// of its first page), so that paging a large history in costs one
    /// pass over it, not one per page.
    pub(super) pages: Option<(String, std::sync::Arc<[usize]>)>,
}

/// The time-outs of a started callback (epoch ms).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct CallbackTimers {
    pub(super) timeout_at: Option<Millis>,
    pub(super) heartbeat_seconds: u32,
    pub(super) heartbeat_at: Option<Millis>,
}

/// How a callback is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Answer {
    Success(String),
    Failure(ErrorObject),
    Heartbeat,
}

/// An answer for the callbacks of a name, given a while after they start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackAnswer {
    pub(super) answer: Answer,
    pub(super) after: Millis,
}

impl CallbackAnswer {
    /// Succeeds the callback with `value`, encoded as JSON (what a sender
    /// using AWS's other SDKs sends).
    pub fn success<T: serde::Serialize + ?Sized>(value: &T) -> Self {
        let body = serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned());
        CallbackAnswer::raw_success(body)
    }
    /// Succeeds the callback with this body, as it is (e.g. plain text).
    pub fn raw_success(body: impl Into<String>) -> Self {
        CallbackAnswer {
            answer: Answer::Success(body.into()),
            after: 0,
        }
    }
    /// Fails the callback with this error.
    pub fn failure(error: ErrorObject) -> Self {
        CallbackAnswer {
            answer: Answer::Failure(error),
            after: 0,
        }
    }
    /// Answers this long (virtual time) after the callback started.
    pub fn after(mut self, delay: std::time::Duration) -> Self {
        self.after = Millis::try_from(delay.as_millis()).unwrap_or(Millis::MAX);
        self
    }
}

impl ExecState {
    pub(super) fn get(&self, id: &OperationId) -> Option<&Operation> {
        self.index.get(id).map(|&i| &self.ops[i])
    }

    /// The positions of the operations an invocation is sent, as the
    /// service sends them:
    /// the children of a completed CONTEXT are left out unless it was
    /// completed with `ReplayChildren` (PROTOCOL.md §4), so that a
    /// workflow never depends on them.
    /// [`ExecState::visible`] for the pages of `token`, computed once per
    /// token (every checkpoint rotates it).
    pub(super) fn pages(&mut self, token: &str) -> std::sync::Arc<[usize]> {
        match &self.pages {
            Some((t, pages)) if t == token => pages.clone(),
            _ => {
                let pages: std::sync::Arc<[usize]> = self.visible().into();
                self.pages = Some((token.to_owned(), pages.clone()));
                pages
            }
        }
    }

    pub(super) fn visible(&self) -> Vec<usize> {
        let mut hidden = vec![false; self.ops.len()];
        let mut out = Vec::with_capacity(self.ops.len());
        for (at, op) in self.ops.iter().enumerate() {
            let parent = op.parent_id.as_ref().and_then(|p| self.index.get(p));
            if let Some(&p) = parent {
                let parent = &self.ops[p];
                let closed = matches!(
                    parent.status,
                    OperationStatus::Succeeded | OperationStatus::Failed
                );
                let replay_children = parent
                    .context_details
                    .as_ref()
                    .and_then(|d| d.replay_children)
                    == Some(true);
                hidden[at] = hidden[p] || (closed && !replay_children);
            }
            if !hidden[at] {
                out.push(at);
            }
        }
        out
    }

    pub(super) fn upsert(&mut self, op: Operation) {
        match self.index.get(&op.id) {
            Some(&i) => self.ops[i] = op,
            None => {
                self.index.insert(op.id, self.ops.len());
                self.ops.push(op);
            }
        }
    }

    pub(super) fn close(&mut self, closed: Closed) {
        let (status, detail, result, error) = match &closed {
            Closed::Succeeded(p) => (
                ExecutionStatus::Succeeded,
                shorten(p.as_str(), 120),
                Some(p.clone()),
                None,
            ),
            Closed::Failed(e) => (
                ExecutionStatus::Failed,
                shorten(&e.to_string(), 200),
                None,
                Some(Box::new(e.clone())),
            ),
        };
        let at = self.now;
        self.timeline.events.push(TimelineEvent::Closed {
            at,
            status,
            detail,
            result,
            error,
        });
        self.closed = Some(closed);
    }

    pub(super) fn has_outstanding(&self) -> bool {
        self.ops.iter().any(|op| {
            matches!(
                (op.op_type, op.status),
                (
                    OperationType::Step,
                    OperationStatus::Pending | OperationStatus::Ready
                ) | (
                    OperationType::Wait | OperationType::Callback | OperationType::ChainedInvoke,
                    OperationStatus::Started,
                )
            )
        })
    }

    pub(super) fn finish_invocation(
        &mut self,
        result: Result<InvocationSummary, InvocationError>,
        max_failed: u32,
    ) {
        let (invocation, at) = (self.invocations, self.now);
        let summary = match result {
            Ok(summary) => summary,
            Err(e) => {
                self.timeline.events.push(TimelineEvent::InvocationFailed {
                    invocation,
                    at,
                    error: e.to_string(),
                });
                self.failed_invocations += 1;
                if self.failed_invocations >= max_failed && self.closed.is_none() {
                    self.close(Closed::Failed(ErrorObject::new(
                        "InvocationFailed",
                        format!("{max_failed} consecutive invocations failed; the last: {e}"),
                    )));
                }
                return;
            }
        };
        self.failed_invocations = 0;
        let output = summary.output;
        self.timeline.events.push(TimelineEvent::Returned {
            invocation,
            at,
            status: output.status,
            replayed: summary.replayed,
            executed: summary.executed,
            checkpoints: summary.checkpoints,
        });
        if self.closed.is_some() {
            return; // closed by an EXECUTION checkpoint: the output is ignored
        }
        let invalid =
            |m: &str| Closed::Failed(ErrorObject::new("InvalidParameterValueException", m));
        match output.status {
            InvocationStatus::Succeeded if output.error.is_some() => self.close(invalid(
                "a SUCCEEDED invocation output must not carry an Error",
            )),
            InvocationStatus::Succeeded => self.close(Closed::Succeeded(
                output.result.unwrap_or_else(|| Payload::from("")),
            )),
            InvocationStatus::Failed if output.result.is_some() => self.close(invalid(
                "a FAILED invocation output must not carry a Result",
            )),
            InvocationStatus::Failed => {
                self.close(Closed::Failed(output.error.unwrap_or_default()))
            }
            InvocationStatus::Pending if self.has_outstanding() => self.idle_pendings = 0,
            InvocationStatus::Pending => {
                self.idle_pendings += 1;
                if self.idle_pendings > 3 {
                    self.close(invalid(
                        "the function returned PENDING with nothing pending, four times in a row",
                    ));
                }
            }
        }
    }

    /// The earliest callback deadline or scheduled answer, if any.
    fn next_callback_event(&self) -> Option<Millis> {
        let deadlines = self
            .callbacks
            .values()
            .flat_map(|t| [t.timeout_at, t.heartbeat_at])
            .flatten();
        let answers = self.scheduled.iter().map(|(at, _, _)| *at);
        let invokes = self.invoke_results.iter().map(|(at, _, _)| *at);
        deadlines.chain(answers).chain(invokes).min()
    }

    pub(super) fn advance_time(&mut self) -> bool {
        let due = |op: &Operation| match (op.op_type, op.status) {
            (OperationType::Wait, OperationStatus::Started) => op
                .wait_details
                .as_ref()
                .and_then(|d| d.scheduled_end_timestamp),
            (OperationType::Step, OperationStatus::Pending) => op
                .step_details
                .as_ref()
                .and_then(|d| d.next_attempt_timestamp),
            _ => None,
        };
        let timers = self.ops.iter().filter_map(due).min();
        let next = match (timers, self.next_callback_event()) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => match a.or(b) {
                Some(t) => t,
                None => return false,
            },
        };
        self.now = self.now.max(next);
        let now = self.now;
        let mut fired = Vec::new();
        for op in self.ops.iter_mut() {
            if due(op).is_none_or(|t| t > now) {
                continue;
            }
            match op.op_type {
                OperationType::Wait => {
                    op.status = OperationStatus::Succeeded;
                    op.end_timestamp = Some(now);
                }
                _ => {
                    op.status = OperationStatus::Ready;
                    if let Some(d) = op.step_details.as_mut() {
                        d.next_attempt_timestamp = None;
                    }
                }
            }
            fired.push(TimelineEvent::TimerFired {
                at: now,
                id: op.id,
                op_type: op.op_type,
                name: op.name.clone(),
                status: op.status,
            });
            self.updated.push(op.id.to_string());
        }
        self.timeline.events.extend(fired);
        // Scheduled answers first (an answer due with a time-out wins).
        for (op, answer) in take_due(&mut self.scheduled, now) {
            let _ = self.answer_callback(&op, answer.answer);
        }
        for (op, result) in take_due(&mut self.invoke_results, now) {
            self.close_invoke(&op, result);
        }
        let expired: Vec<(OperationId, &'static str, &'static str)> = self
            .callbacks
            .iter()
            .filter_map(|(id, t)| {
                if t.timeout_at.is_some_and(|at| at <= now) {
                    Some((*id, "Callback.Timeout", "Callback timed out"))
                } else if t.heartbeat_at.is_some_and(|at| at <= now) {
                    Some((*id, "Callback.Heartbeat", "Callback timed out on heartbeat"))
                } else {
                    None
                }
            })
            .collect();
        for (id, error_type, message) in expired {
            self.close_callback(
                &id,
                OperationStatus::TimedOut,
                None,
                Some(ErrorObject::new(error_type, message)),
            );
        }
        true
    }

    /// Registers a callback the workflow just started: its time-outs and
    /// the answers the runner was told to give it.
    pub(super) fn callback_started(&mut self, op: &Operation, u: &OperationUpdate) {
        let options = u.callback_options.clone().unwrap_or_default();
        let at = |seconds: u32| {
            (seconds > 0).then(|| self.now.saturating_add(i64::from(seconds) * 1000))
        };
        self.callbacks.insert(
            op.id,
            CallbackTimers {
                timeout_at: at(options.timeout_seconds),
                heartbeat_seconds: options.heartbeat_timeout_seconds,
                heartbeat_at: at(options.heartbeat_timeout_seconds),
            },
        );
        if let Some(id) = op
            .callback_details
            .as_ref()
            .and_then(|d| d.callback_id.clone())
        {
            self.callback_ids.insert(id, op.id);
        }
        let name = op.name.as_deref().unwrap_or("");
        let answers: Vec<CallbackAnswer> = self
            .answer_rules
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, a)| a.clone())
            .collect();
        for answer in answers {
            let at = self.now.saturating_add(answer.after);
            self.scheduled.push((at, op.id, answer));
        }
    }

    /// A chained invoke started: an unknown function fails it at once (in
    /// the response, as the service does); a known one runs after this
    /// invocation.
    fn invoke_started(&mut self, u: &OperationUpdate, delta: &mut [Operation]) {
        let function = u
            .chained_invoke_options
            .as_ref()
            .map(|o| o.function_name.clone())
            .unwrap_or_default();
        if self.functions.contains(&super::resolve_function(&function)) {
            let input = u.payload.as_ref().map_or("{}", |p| p.as_str()).to_owned();
            self.pending_invokes.push((u.id, function, input));
            return;
        }
        let error = ErrorObject::new(
            "ResourceNotFoundException",
            format!("Function not found: {function}."),
        );
        self.close_invoke(&u.id, Err(error));
        if let (Some(op), Some(slot)) = (
            self.get(&u.id).cloned(),
            delta.iter_mut().find(|o| o.id == u.id),
        ) {
            *slot = op;
        }
    }

    fn close_invoke(&mut self, id: &OperationId, result: Result<String, ErrorObject>) {
        let now = self.now;
        let Some(&at) = self.index.get(id) else {
            return;
        };
        let op = &mut self.ops[at];
        let details = op
            .chained_invoke_details
            .get_or_insert_with(Default::default);
        let detail = match result {
            Ok(r) => {
                op.status = OperationStatus::Succeeded;
                let d = shorten(&r, 48);
                details.result = Some(Payload::from(r));
                d
            }
            Err(e) => {
                op.status = match e.error_type.as_deref() {
                    Some("ChainedInvoke.Timeout") => OperationStatus::TimedOut,
                    _ => OperationStatus::Failed,
                };
                let d = shorten(&e.to_string(), 80);
                details.error = Some(e);
                d
            }
        };
        op.end_timestamp = Some(now);
        let event = TimelineEvent::Answered {
            at: now,
            id: *id,
            op_type: OperationType::ChainedInvoke,
            name: op.name.clone(),
            status: op.status,
            detail,
        };
        self.timeline.events.push(event);
        self.updated.push(id.to_string());
    }

    /// Answers the callback `op` (success, failure or heartbeat), as
    /// `SendDurableExecutionCallback*` does.
    pub(super) fn answer_callback(
        &mut self,
        op: &OperationId,
        answer: Answer,
    ) -> Result<(), String> {
        let Some(timers) = self.callbacks.get_mut(op) else {
            return Err(format!(
                "callback operation {op} is not waiting for an answer"
            ));
        };
        match answer {
            Answer::Heartbeat => {
                if timers.heartbeat_seconds > 0 {
                    let seconds = i64::from(timers.heartbeat_seconds);
                    timers.heartbeat_at = Some(self.now.saturating_add(seconds * 1000));
                }
                let (at, id) = (self.now, *op);
                let name = self.get(op).and_then(|o| o.name.clone());
                self.timeline.events.push(TimelineEvent::Answered {
                    at,
                    id,
                    op_type: OperationType::Callback,
                    name,
                    status: OperationStatus::Started,
                    detail: "heartbeat".into(),
                });
            }
            Answer::Success(body) => {
                let result = (!body.is_empty()).then(|| Payload::from(body));
                self.close_callback(op, OperationStatus::Succeeded, result, None);
            }
            Answer::Failure(error) => {
                self.close_callback(op, OperationStatus::Failed, None, Some(error));
            }
        }
        Ok(())
    }

    fn close_callback(
        &mut self,
        id: &OperationId,
        status: OperationStatus,
        result: Option<Payload>,
        error: Option<ErrorObject>,
    ) {
        self.callbacks.remove(id);
        self.scheduled.retain(|(_, op, _)| op != id);
        let now = self.now;
        let Some(&at) = self.index.get(id) else {
            return;
        };
        let op = &mut self.ops[at];
        op.status = status;
        op.end_timestamp = Some(now);
        let details = op.callback_details.get_or_insert_with(Default::default);
        details.result = result.clone();
        details.error = error.clone();
        let detail = match (&result, &error) {
            (Some(r), _) => shorten(r.as_str(), 48),
            (_, Some(e)) => shorten(&e.to_string(), 80),
            _ => String::new(),
        };
        let event = TimelineEvent::Answered {
            at: now,
            id: *id,
            op_type: OperationType::Callback,
            name: op.name.clone(),
            status,
            detail,
        };
        self.timeline.events.push(event);
        self.updated.push(id.to_string());
    }

    pub(super) fn check_token(&self, token: &str) -> Result<(), ServiceError> {
        match &self.token {
            Some(current) if current == token => Ok(()),
            _ => Err(ServiceError::InvalidToken(
                "Invalid checkpoint token".to_owned(),
            )),
        }
    }

    pub(super) fn checkpoint(
        &mut self,
        token: &str,
        updates: &[OperationUpdate],
    ) -> Result<CheckpointResponse, ServiceError> {
        self.checkpoint_requests += 1;
        let crash = self
            .crashes
            .iter()
            .find(|(n, _)| *n == self.checkpoint_requests)
            .map(|(_, point)| *point);
        if crash == Some(CrashPoint::BeforeRequest) {
            return Err(ServiceError::Transient(
                "injected crash before the request".into(),
            ));
        }
        let response = self.apply_checkpoint(token, updates);
        if crash == Some(CrashPoint::AfterRequest) {
            // The next token was issued but never seen: the invocation is gone.
            self.token = None;
            return Err(ServiceError::Transient(
                "injected crash after the request".into(),
            ));
        }
        response
    }

    pub(super) fn apply_checkpoint(
        &mut self,
        token: &str,
        updates: &[OperationUpdate],
    ) -> Result<CheckpointResponse, ServiceError> {
        self.check_token(token)?;
        if self.closed.is_some() {
            return Err(ServiceError::InvalidToken(
                "Invalid checkpoint token: the execution is closed".to_owned(),
            ));
        }
        let Batch {
            touched,
            statuses,
            close,
        } = match self.validate(updates) {
            Ok(batch) => batch,
            Err(message) => {
                let at = self.now;
                self.timeline.events.push(TimelineEvent::Rejected {
                    at,
                    message: message.clone(),
                });
                return Err(ServiceError::Rejected(message));
            }
        };
        let mut delta = Vec::with_capacity(touched.len());
        for op in touched {
            delta.push(op.clone());
            self.upsert(op);
        }
        for u in updates {
            if u.op_type == OperationType::Callback && u.action == OperationAction::Start {
                if let Some(op) = self.get(&u.id).cloned() {
                    self.callback_started(&op, u);
                }
            }
            if u.op_type == OperationType::ChainedInvoke && u.action == OperationAction::Start {
                self.invoke_started(u, &mut delta);
            }
        }
        let at = self.now;
        let applied = updates
            .iter()
            .filter(|u| u.op_type != OperationType::Execution);
        for (u, status) in applied.zip(statuses) {
            self.timeline.events.push(TimelineEvent::Applied {
                at,
                id: u.id,
                op_type: u.op_type,
                name: u.name.clone(),
                action: u.action,
                status,
                payload: u.payload.clone(),
                wait_seconds: u.wait_options.as_ref().map(|w| w.wait_seconds),
                retry_seconds: u
                    .step_options
                    .as_ref()
                    .and_then(|o| o.next_attempt_delay_seconds),
                error: u.error.clone(),
                parent: u.parent_id,
            });
        }
        if let Some(closed) = close {
            self.close(closed);
        }
        self.token_seq += 1;
        let next = format!("local-token-{}", self.token_seq);
        self.token = Some(next.clone());
        Ok(CheckpointResponse {
            checkpoint_token: Some(next),
            operations: delta,
            next_marker: None,
        })
    }

    /// Checks a batch against the service's rules and computes the
    /// operations it produces, without changing anything.
    pub(super) fn validate(&self, updates: &[OperationUpdate]) -> Result<Batch, String> {
        let mut touched: Vec<Operation> = Vec::with_capacity(updates.len());
        // Where each touched id is in `touched`, and the batch's last
        // action and update count for it.
        let mut seen = Seen::for_batch(updates.len());
        let mut statuses = Vec::with_capacity(updates.len());
        let mut close = None;
        for u in updates {
            if close.is_some() {
                return Err("the EXECUTION update must be the last of its batch".into());
            }
            if u.op_type == OperationType::Execution {
                close = Some(match u.action {
                    OperationAction::Succeed if u.error.is_none() => {
                        check_payload(u)?;
                        Closed::Succeeded(u.payload.clone().unwrap_or_else(|| Payload::from("")))
                    }
                    OperationAction::Fail if u.payload.is_none() => {
                        Closed::Failed(u.error.as_deref().cloned().unwrap_or_default())
                    }
                    a => return Err(format!("invalid EXECUTION update: {a} (with these fields)")),
                });
                continue;
            }
            check_payload(u)?;
            let earlier = match seen.get(&u.id) {
                None => None,
                Some(&(at, OperationAction::Start, 1))
                    if u.action != OperationAction::Start
                        && matches!(u.op_type, OperationType::Step | OperationType::Context) =>
                {
                    Some(at)
                }
                Some(_) => {
                    return Err(format!(
                        "more than one update for operation {} in one batch",
                        u.id
                    ));
                }
            };
            if let Some(parent) = &u.parent_id {
                let is_context = |op: &Operation| op.op_type == OperationType::Context;
                let known = match seen.get(parent) {
                    Some(&(at, _, _)) => is_context(&touched[at]),
                    None => self.get(parent).is_some_and(is_context),
                };
                if !known {
                    return Err(format!(
                        "parent {parent} of operation {} is not a known CONTEXT",
                        u.id
                    ));
                }
            }
            let current = match earlier {
                // Taken out (and put back below): no copy of its strings.
                Some(at) => Some(std::mem::replace(
                    &mut touched[at],
                    Operation::new(u.id, u.op_type, OperationStatus::Started),
                )),
                None => self.get(&u.id).cloned(),
            };
            if current.is_none() {
                check_new_fields(u)?;
            }
            if let Some(cur) = &current {
                if cur.op_type != u.op_type
                    || cur.sub_type.as_deref() != u.sub_type.as_deref()
                    || cur.name.as_deref() != u.name.as_deref()
                    || cur.parent_id != u.parent_id
                {
                    return Err(format!(
                        "update for operation {} does not match the stored operation's type, \
                         subtype, name or parent",
                        u.id
                    ));
                }
            }
            let op = transition(current, u, self.now)?;
            statuses.push(op.status);
            match earlier {
                Some(at) => {
                    touched[at] = op;
                    seen.insert(u.id, (at, u.action, 2));
                }
                None => {
                    seen.insert(u.id, (touched.len(), u.action, 1));
                    touched.push(op);
                }
            }
        }
        Ok(Batch {
            touched,
            statuses,
            close,
        })
    }
}

/// The ids a batch touched so far: a scan for small batches (most of
/// them), a hash map for large ones.
enum Seen {
    Few(Vec<(OperationId, (usize, OperationAction, u32))>),
    Many(IdMap<(usize, OperationAction, u32)>),
}

impl Seen {
    fn for_batch(updates: usize) -> Self {
        if updates <= 16 {
            Seen::Few(Vec::new())
        } else {
            Seen::Many(IdMap::with_capacity_and_hasher(updates, Default::default()))
        }
    }

    fn get(&self, id: &OperationId) -> Option<&(usize, OperationAction, u32)> {
        match self {
            Seen::Few(v) => v.iter().find(|(k, _)| k == id).map(|(_, e)| e),
            Seen::Many(m) => m.get(id),
        }
    }

    fn insert(&mut self, id: OperationId, entry: (usize, OperationAction, u32)) {
        match self {
            Seen::Few(v) => match v.iter_mut().find(|(k, _)| *k == id) {
                Some(slot) => slot.1 = entry,
                None => v.push((id, entry)),
            },
            Seen::Many(m) => {
                m.insert(id, entry);
            }
        }
    }
}

/// Removes the entries due by `now` and returns them, in order.
fn take_due<T>(entries: &mut Vec<(Millis, OperationId, T)>, now: Millis) -> Vec<(OperationId, T)> {
    let (due, later): (Vec<_>, Vec<_>) = std::mem::take(entries)
        .into_iter()
        .partition(|(at, _, _)| *at <= now);
    *entries = later;
    due.into_iter().map(|(_, op, t)| (op, t)).collect()
}

/// `[A-Za-z0-9_-]`: the characters of ids and subtypes.
fn id_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Checks the fields of an update for an operation the service does not
/// know yet (a known operation's fields must equal the stored ones).
fn check_new_fields(u: &OperationUpdate) -> Result<(), String> {
    // Branch-free over the bytes: ids are long and almost always valid.
    if !u.id.as_bytes().iter().fold(true, |ok, &b| ok & id_char(b)) {
        return Err(format!(
            "operation id {:?} must match [a-zA-Z0-9-_]{{1,64}}",
            u.id.as_str()
        ));
    }
    let id = &u.id;
    if let Some(name) = &u.name {
        if name.is_empty() || name.len() > 256 || !name.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(format!(
                "name {name:?} of operation {id} must be 1 to 256 printable ASCII characters"
            ));
        }
    }
    if let Some(sub) = &u.sub_type {
        if sub.is_empty() || sub.len() > 32 || !sub.bytes().all(id_char) {
            return Err(format!(
                "subtype {sub:?} of operation {id} must match [A-Za-z0-9-_]{{1,32}}"
            ));
        }
    }
    Ok(())
}

fn check_payload(u: &OperationUpdate) -> Result<(), String> {
    let Some(p) = &u.payload else { return Ok(()) };
    // Bytes bound characters from above: count only when it may matter.
    if p.len() <= MAX_PAYLOAD_CHARS {
        return Ok(());
    }
    let chars = p.as_str().chars().count();
    if chars <= MAX_PAYLOAD_CHARS {
        return Ok(());
    }
    Err(format!(
        "payload of operation {} is {chars} characters, over the limit of {MAX_PAYLOAD_CHARS}",
        u.id
    ))
}

/// The service's transition rules (PROTOCOL.md §4).
fn transition(
    current: Option<Operation>,
    u: &OperationUpdate,
    now: Millis,
) -> Result<Operation, String> {
    use OperationAction as A;
    use OperationStatus as S;
    use OperationType as T;
    let status = current.as_ref().map(|o| o.status);
    let mut op = current.unwrap_or_else(|| {
        let mut op = Operation::new(u.id, u.op_type, S::Started);
        op.parent_id = u.parent_id;
        op.name = u.name.as_deref().map(str::to_owned);
        op.sub_type = u.sub_type.as_deref().map(str::to_owned);
        op.start_timestamp = Some(now);
        op
    });
    let invalid = || {
        let from = status.map_or("absent".to_owned(), |s| s.to_string());
        Err(format!(
            "Invalid current {} state to {}: operation {} is {from}",
            u.op_type,
            u.action.to_string().to_lowercase(),
            u.id
        ))
    };
    match (u.op_type, u.action, status) {
        (T::Step, A::Start, None | Some(S::Ready)) => {
            op.status = S::Started;
            op.step_details
                .get_or_insert_with(Default::default)
                .attempt
                .get_or_insert(0);
        }
        (T::Step, A::Retry, Some(S::Started | S::Ready)) => {
            let delay = u
                .step_options
                .as_ref()
                .and_then(|o| o.next_attempt_delay_seconds)
                .filter(|d| (1..=MAX_WAIT_SECONDS).contains(&u64::from(*d)))
                .ok_or_else(|| format!("RETRY of {} needs StepOptions.NextAttemptDelaySeconds from 1 to {MAX_WAIT_SECONDS}", u.id))?;
            if u.error.is_some() == u.payload.is_some() {
                return Err(format!(
                    "RETRY of {} needs exactly one of Error and Payload",
                    u.id
                ));
            }
            op.status = S::Pending;
            let d = op.step_details.get_or_insert_with(Default::default);
            d.attempt = Some(d.attempt.unwrap_or(0) + 1);
            d.next_attempt_timestamp = Some(now.saturating_add(i64::from(delay) * 1000));
            if u.error.is_some() {
                d.error = u.error.as_deref().cloned();
            }
            if u.payload.is_some() {
                d.result = u.payload.clone();
            }
        }
        (T::Step, A::Succeed | A::Fail, None | Some(S::Started | S::Ready)) => {
            let d = op.step_details.get_or_insert_with(Default::default);
            d.attempt = Some(d.attempt.unwrap_or(0) + 1);
            if u.action == A::Succeed {
                if u.error.is_some() {
                    return Err(format!("SUCCEED of {} must not carry an Error", u.id));
                }
                op.status = S::Succeeded;
                d.result = u.payload.clone();
            } else {
                if u.payload.is_some() {
                    return Err(format!("FAIL of {} must not carry a Payload", u.id));
                }
                op.status = S::Failed;
                d.error = u.error.as_deref().cloned();
            }
            op.end_timestamp = Some(now);
        }
        (T::Wait, A::Start, None) => {
            let seconds = u
                .wait_options
                .as_ref()
                .map(|o| o.wait_seconds)
                .filter(|s| (1..=MAX_WAIT_SECONDS).contains(&u64::from(*s)))
                .ok_or_else(|| format!("START of wait {} needs WaitOptions.WaitSeconds from 1 to {MAX_WAIT_SECONDS}", u.id))?;
            op.status = S::Started;
            op.wait_details = Some(Box::new(WaitDetails {
                scheduled_end_timestamp: Some(now.saturating_add(i64::from(seconds) * 1000)),
            }));
        }
        (T::Wait, A::Cancel, Some(S::Started)) => {
            op.status = S::Cancelled;
            op.end_timestamp = Some(now);
        }
        (T::Context, A::Start, None) => op.status = S::Started,
        (T::Context, A::Succeed | A::Fail, None | Some(S::Started)) => {
            op.status = if u.action == A::Succeed {
                S::Succeeded
            } else {
                S::Failed
            };
            op.context_details = Some(Box::new(ContextDetails {
                replay_children: u.context_options.as_ref().and_then(|o| o.replay_children),
                result: u.payload.clone(),
                error: u.error.as_deref().cloned(),
            }));
            op.end_timestamp = Some(now);
        }
        (T::Callback, A::Start, None) => {
            let o = u.callback_options.clone().unwrap_or_default();
            const MAX: u32 = 99_999_999;
            if o.timeout_seconds > MAX || o.heartbeat_timeout_seconds > MAX {
                return Err(format!(
                    "CallbackOptions of {} must be from 0 to {MAX} seconds",
                    u.id
                ));
            }
            op.status = S::Started;
            op.callback_details = Some(Box::new(CallbackDetails {
                callback_id: Some(format!("local-callback-{}", u.id)),
                result: None,
                error: None,
            }));
        }
        (T::ChainedInvoke, A::Start, None) => {
            let named = u
                .chained_invoke_options
                .as_ref()
                .is_some_and(|o| !o.function_name.is_empty());
            if !named {
                return Err(format!(
                    "START of chained invoke {} needs ChainedInvokeOptions.FunctionName",
                    u.id
                ));
            }
            if u.payload.as_ref().is_some_and(|p| p.len() > 1024 * 1024) {
                return Err(format!(
                    "the input of chained invoke {} is over 1 MiB",
                    u.id
                ));
            }
            op.status = S::Started;
            op.chained_invoke_details = Some(Default::default());
        }
        _ => return invalid(),
    }
    Ok(op)
}

/// The in-process [`DurableService`] of a [`LocalExecution`].
pub(super) struct LocalService {
    pub(super) state: Arc<Mutex<ExecState>>,
    pub(super) page_size: usize,
}

impl LocalService {
    pub(super) fn lock(&self) -> MutexGuard<'_, ExecState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl DurableService for LocalService {
    fn checkpoint(
        &self,
        _execution_arn: &str,
        checkpoint_token: &str,
        updates: Vec<OperationUpdate>,
    ) -> impl Future<Output = Result<CheckpointResponse, ServiceError>> + Send {
        ready(self.lock().checkpoint(checkpoint_token, &updates))
    }

    fn get_state(
        &self,
        _execution_arn: &str,
        checkpoint_token: &str,
        marker: &str,
    ) -> impl Future<Output = Result<ExecutionState, ServiceError>> + Send {
        let mut s = self.lock();
        let result = s.check_token(checkpoint_token).and_then(|()| {
            let start: usize = marker
                .parse()
                .map_err(|_| ServiceError::Rejected(format!("invalid marker {marker:?}")))?;
            let visible = s.pages(checkpoint_token);
            let start = start.min(visible.len());
            let end = (start + self.page_size).min(visible.len());
            Ok(ExecutionState {
                operations: visible[start..end]
                    .iter()
                    .map(|&i| s.ops[i].clone())
                    .collect(),
                next_marker: (end < visible.len()).then(|| end.to_string()),
            })
        });
        ready(result)
    }

    fn now(&self) -> Millis {
        self.lock().now
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::{DEFAULT_START_TIME, LocalExecution, LocalRunner};
    use crate::model::{StepOptions, WaitOptions};

    fn execution() -> (LocalExecution, String) {
        let e = LocalRunner::new().start(&()).unwrap();
        let token = "t".to_owned();
        e.lock().token = Some(token.clone());
        (e, token)
    }

    fn id(s: &str) -> OperationId {
        OperationId::new(s).unwrap()
    }

    fn up(op: &str, t: OperationType, a: OperationAction) -> OperationUpdate {
        let mut u = OperationUpdate::new(id(op), t, a);
        u.name = Some("n".into());
        u
    }

    fn send(
        e: &LocalExecution,
        token: &str,
        updates: Vec<OperationUpdate>,
    ) -> Result<String, ServiceError> {
        let r = e.lock().checkpoint(token, &updates)?;
        Ok(r.checkpoint_token.unwrap())
    }

    fn rejected(r: Result<String, ServiceError>) -> String {
        match r {
            Err(ServiceError::Rejected(m)) => m,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn tokens_are_single_use() {
        let (e, t) = execution();
        let t2 = send(&e, &t, vec![]).unwrap();
        assert_ne!(t, t2);
        assert!(matches!(
            send(&e, &t, vec![]),
            Err(ServiceError::InvalidToken(_))
        ));
        assert!(send(&e, &t2, vec![]).is_ok());
    }

    #[test]
    fn step_transitions_follow_the_service() {
        use OperationAction as A;
        use OperationType as T;
        let (e, mut t) = execution();
        t = send(
            &e,
            &t,
            vec![up("s", T::Step, A::Start), up("s", T::Step, A::Succeed)],
        )
        .unwrap();
        let op = e.lock().get(&id("s")).cloned().unwrap();
        assert_eq!(op.status, OperationStatus::Succeeded);
        assert_eq!(op.step_details.unwrap().attempt, Some(1));
        // A finished step cannot start or succeed again.
        let m = rejected(send(&e, &t, vec![up("s", T::Step, A::Start)]));
        assert!(m.contains("Invalid current STEP state to start"), "{m}");
        let m = rejected(send(&e, &t, vec![up("s", T::Step, A::Succeed)]));
        assert!(m.contains("is SUCCEEDED"), "{m}");
        // RETRY needs a delay and exactly one of error and payload.
        t = send(&e, &t, vec![up("r", T::Step, A::Start)]).unwrap();
        rejected(send(&e, &t, vec![up("r", T::Step, A::Retry)]));
        let mut retry = up("r", T::Step, A::Retry);
        retry.step_options = Some(StepOptions {
            next_attempt_delay_seconds: Some(3),
        });
        retry.error = Some(Box::new(ErrorObject::new("E", "m")));
        send(&e, &t, vec![retry]).unwrap();
        let op = e.lock().get(&id("r")).cloned().unwrap();
        assert_eq!(op.status, OperationStatus::Pending);
        let d = op.step_details.unwrap();
        assert_eq!(d.attempt, Some(1));
        assert_eq!(d.next_attempt_timestamp, Some(DEFAULT_START_TIME + 3000));
        // The timer makes it READY.
        assert!(e.advance_time());
        assert_eq!(
            e.lock().get(&id("r")).unwrap().status,
            OperationStatus::Ready
        );
    }

    #[test]
    fn batches_are_validated_whole_and_applied_atomically() {
        use OperationAction as A;
        use OperationType as T;
        let (e, t) = execution();
        // The second update is invalid, so the first is not applied either.
        let m = rejected(send(
            &e,
            &t,
            vec![up("a", T::Step, A::Start), up("b", T::Wait, A::Start)],
        ));
        assert!(m.contains("WaitSeconds"), "{m}");
        assert!(e.lock().get(&id("a")).is_none());
        // One update per id, except START followed by one outcome.
        let m = rejected(send(
            &e,
            &t,
            vec![up("a", T::Step, A::Start), up("a", T::Step, A::Start)],
        ));
        assert!(m.contains("more than one update"), "{m}");
        // The EXECUTION update must come last.
        let m = rejected(send(
            &e,
            &t,
            vec![
                up("x", T::Execution, A::Succeed),
                up("a", T::Step, A::Start),
            ],
        ));
        assert!(m.contains("last"), "{m}");
        // Parents must be known contexts.
        let mut child = up("c", T::Step, A::Start);
        child.parent_id = Some(id("nope"));
        assert!(rejected(send(&e, &t, vec![child])).contains("not a known CONTEXT"));
        // Type, name and subtype must match the stored operation.
        let t = send(&e, &t, vec![up("a", T::Step, A::Start)]).unwrap();
        let mut renamed = up("a", T::Step, A::Succeed);
        renamed.name = Some("other".into());
        assert!(rejected(send(&e, &t, vec![renamed])).contains("does not match"));
    }

    #[test]
    fn waits_end_on_the_virtual_clock() {
        use OperationAction as A;
        use OperationType as T;
        let (e, t) = execution();
        let mut w = up("w", T::Wait, A::Start);
        w.wait_options = Some(WaitOptions { wait_seconds: 3600 });
        send(&e, &t, vec![w]).unwrap();
        assert!(e.lock().has_outstanding());
        assert!(e.advance_time());
        assert_eq!(e.now(), DEFAULT_START_TIME + 3_600_000);
        assert_eq!(
            e.lock().get(&id("w")).unwrap().status,
            OperationStatus::Succeeded
        );
        assert!(!e.advance_time(), "no timer left");
        assert!(!e.lock().has_outstanding());
    }

    #[test]
    fn get_state_pages_with_markers() {
        let e = LocalRunner::new().page_size(2).start(&()).unwrap();
        {
            let mut s = e.lock();
            s.token = Some("t".into());
            for i in 0..4 {
                let op = Operation::new(
                    id(&format!("op{i}")),
                    OperationType::Step,
                    OperationStatus::Succeeded,
                );
                s.upsert(op);
            }
        }
        let service = LocalService {
            state: e.state.clone(),
            page_size: 2,
        };
        let page = |m: &str| poll_now(service.get_state("arn", "t", m));
        let p = page("1").unwrap();
        assert_eq!(p.operations.len(), 2);
        assert_eq!(p.next_marker.as_deref(), Some("3"));
        let p = page("3").unwrap();
        assert_eq!(p.operations.len(), 2);
        assert_eq!(p.next_marker, None);
        assert!(matches!(page("x"), Err(ServiceError::Rejected(_))));
        assert!(matches!(
            poll_now(service.get_state("arn", "stale", "0")),
            Err(ServiceError::InvalidToken(_))
        ));
    }

    /// Polls a future that is ready at once.
    fn poll_now<F: Future>(f: F) -> F::Output {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match std::pin::pin!(f).poll(&mut cx) {
            std::task::Poll::Ready(r) => r,
            std::task::Poll::Pending => panic!("expected a ready future"),
        }
    }
}

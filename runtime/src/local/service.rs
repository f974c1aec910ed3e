//! The service side of the local runner: an execution's state and the
//! service's rules for applying checkpoints (PROTOCOL.md §4), served in
//! process through [`DurableService`].

use std::future::{Future, ready};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::driver::{InvocationError, InvocationSummary};
use std::collections::HashMap;

use crate::model::{
    ErrorObject, ExecutionState, IdMap, InvocationStatus, Millis, Operation, OperationAction,
    OperationId, OperationStatus, OperationType, OperationUpdate, Payload,
};
use crate::service::{CheckpointResponse, DurableService, ServiceError};

use super::answers::{CallbackAnswer, CallbackTimers};
use super::op_index::OpIndex;
use super::rules::{check_new_fields, check_payload, transition};
use super::timeline::{Applied, Log};
use super::{CrashPoint, ExecutionStatus, TimelineEvent};
use crate::history::shorten;

/// What a valid checkpoint batch does.
pub(super) struct Batch {
    /// The operations it creates or changes, in their new state.
    touched: Vec<Operation>,
    /// For each of `touched`: where it goes in the store, and the batch's
    /// updates of it.
    touches: Vec<Touch>,
    /// The status after each non-EXECUTION update, in order, and the
    /// position in `touched` of the operation it updated.
    statuses: Vec<(OperationStatus, usize)>,
    /// The execution's end, if the batch carries an EXECUTION update.
    close: Option<Closed>,
}

/// Where an operation a batch touched goes in the store (its place, or
/// the next free one for a new operation), and the batch's last update
/// of it and how many it has.
struct Touch {
    position: usize,
    action: OperationAction,
    updates: u32,
}

pub(super) enum Closed {
    Succeeded(Payload),
    Failed(ErrorObject),
    TimedOut(ErrorObject),
}

pub(super) struct ExecState {
    pub(super) arn: String,
    pub(super) ops: Vec<Operation>,
    pub(super) index: OpIndex,
    pub(super) start: Millis,
    /// The execution's timeout, from `start`.
    pub(super) timeout: Option<std::time::Duration>,
    pub(super) now: Millis,
    pub(super) token: Option<String>,
    pub(super) token_seq: u64,
    pub(super) closed: Option<Closed>,
    pub(super) invocations: u32,
    pub(super) failed_invocations: u32,
    pub(super) idle_pendings: u32,
    pub(super) updated: Vec<String>,
    pub(super) timeline: Log,
    pub(super) checkpoint_requests: u64,
    pub(super) crashes: Vec<(u64, CrashPoint)>,
    /// Whether a crash struck the current invocation (the process died).
    pub(super) crashed: bool,
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
    /// Invokes started by the last invocation, to run after it: operation,
    /// function, input, the trace header the START carried.
    pub(super) pending_invokes: Vec<(OperationId, String, String, Option<String>)>,
    /// Outcomes of invoked functions, due at a virtual time.
    pub(super) invoke_results: Vec<(Millis, OperationId, Result<String, ErrorObject>)>,
    /// The functions invoked so far.
    pub(super) invoked: Vec<super::InvokedFunction>,
    /// The operations the pages of the current token list (`visible()` as
    /// of its first page), so that paging a large history in costs one
    /// pass over it, not one per page.
    pub(super) pages: Option<(String, std::sync::Arc<[usize]>)>,
}

impl ExecState {
    pub(super) fn get(&self, id: &OperationId) -> Option<&Operation> {
        self.position(id).map(|i| &self.ops[i])
    }

    /// Where the operation with this id is in `ops`.
    pub(super) fn position(&self, id: &OperationId) -> Option<usize> {
        self.index.get(id, &self.ops)
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
            let parent = op.parent_id.as_ref().and_then(|p| self.position(p));
            if let Some(p) = parent {
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

    /// Stores `op`, in place of the operation with its id if there is
    /// one.
    pub(super) fn upsert(&mut self, op: Operation) {
        let position = self.position(&op.id).unwrap_or(self.ops.len());
        self.store(position, op);
    }

    /// Stores `op` at `position`, which a validated batch computed: its
    /// place, or the next free one for a new operation (validation found
    /// no stored operation with its id). Any other position stores it as
    /// `upsert` does.
    fn store(&mut self, position: usize, op: Operation) {
        if position == self.ops.len() {
            self.index.insert(&op.id, position);
            self.ops.push(op);
        } else if self
            .ops
            .get(position)
            .is_some_and(|stored| stored.id == op.id)
        {
            self.ops[position] = op;
        } else {
            self.upsert(op);
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
            Closed::TimedOut(e) => (
                ExecutionStatus::TimedOut,
                shorten(&e.to_string(), 200),
                None,
                Some(Box::new(e.clone())),
            ),
        };
        let at = self.now;
        self.timeline.push(TimelineEvent::Closed {
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
                // A crash is the process dying: Lambda reports it as
                // `Runtime.ExitError`.
                let error_type = if std::mem::take(&mut self.crashed) {
                    "Runtime.ExitError"
                } else {
                    "InvocationFailed"
                };
                self.timeline.push(TimelineEvent::InvocationFailed {
                    invocation,
                    at,
                    error: e.to_string(),
                    error_type: error_type.to_owned(),
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
        self.timeline.push(TimelineEvent::Returned {
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
            other => self.close(invalid(&format!(
                "the invocation output's Status {other:?} is not SUCCEEDED, FAILED or PENDING"
            ))),
        }
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
        self.crashed |= crash.is_some();
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
            touches,
            statuses,
            close,
        } = match self.validate(updates) {
            Ok(batch) => batch,
            Err(message) => {
                let at = self.now;
                self.timeline.push(TimelineEvent::Rejected {
                    at,
                    message: message.clone(),
                });
                return Err(ServiceError::Rejected(message));
            }
        };
        // The response carries the touched operations themselves; the
        // store keeps copies.
        for (op, touch) in touched.iter().zip(&touches) {
            self.store(touch.position, op.clone());
        }
        let mut delta = touched;
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
        for (u, (status, slot)) in applied.zip(statuses) {
            // A callback's two time-outs travel in the slots of a wait's
            // length and a retry's delay (`Log::to_timeline` reads them so).
            let (wait_seconds, retry_seconds) = match &u.callback_options {
                Some(c) => (Some(c.timeout_seconds), Some(c.heartbeat_timeout_seconds)),
                None => (
                    u.wait_options.as_ref().map(|w| w.wait_seconds),
                    u.step_options
                        .as_ref()
                        .and_then(|o| o.next_attempt_delay_seconds),
                ),
            };
            self.timeline.applied(Applied {
                at,
                position: touches[slot].position,
                action: u.action,
                status,
                payload: u.payload.clone(),
                wait_seconds,
                retry_seconds,
                error: u.error.clone(),
            });
            if let Some(options) = &u.chained_invoke_options {
                self.timeline.invoke_options(options.clone());
            }
        }
        if let Some(closed) = close {
            self.close(closed);
        }
        self.token_seq += 1;
        let next = format!("local-token-{}", self.token_seq);
        self.token = Some(next.clone());
        Ok(CheckpointResponse::new(Some(next), delta))
    }

    /// Checks a batch against the service's rules and computes the
    /// operations it produces, without changing anything.
    pub(super) fn validate(&self, updates: &[OperationUpdate]) -> Result<Batch, String> {
        let mut touched: Vec<Operation> = Vec::with_capacity(updates.len());
        // Where each touched id is in `touched` (a scan for small batches,
        // most of them; an index for large ones); `touches`, at the same
        // positions, says where each goes in the store and what the batch
        // did to it so far.
        let mut seen = (updates.len() > 16).then(|| OpIndex::with_capacity(updates.len()));
        let find = |seen: &Option<OpIndex>, touched: &[Operation], id: &OperationId| match seen {
            Some(index) => index.get(id, touched),
            None => touched.iter().position(|op| op.id == *id),
        };
        let mut touches: Vec<Touch> = Vec::with_capacity(updates.len());
        // New operations take the store's next positions, in order.
        let mut next_position = self.ops.len();
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
            let earlier = match find(&seen, &touched, &u.id) {
                None => None,
                Some(at)
                    if (touches[at].action, touches[at].updates) == (OperationAction::Start, 1)
                        && u.action != OperationAction::Start
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
                let known = match find(&seen, &touched, parent) {
                    Some(at) => is_context(&touched[at]),
                    None => self.get(parent).is_some_and(is_context),
                };
                if !known {
                    return Err(format!(
                        "parent {parent} of operation {} is not a known CONTEXT",
                        u.id
                    ));
                }
            }
            let stored = match earlier {
                Some(_) => None,
                None => self.position(&u.id),
            };
            let current = match earlier {
                // Taken out (and put back below): no copy of its strings.
                Some(at) => Some(std::mem::replace(
                    &mut touched[at],
                    Operation::new(u.id, u.op_type, OperationStatus::Started),
                )),
                None => stored.map(|i| self.ops[i].clone()),
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
            match earlier {
                Some(at) => {
                    statuses.push((op.status, at));
                    touched[at] = op;
                    touches[at].action = u.action;
                    touches[at].updates = 2;
                }
                None => {
                    statuses.push((op.status, touched.len()));
                    if let Some(index) = &mut seen {
                        index.insert(&u.id, touched.len());
                    }
                    let position = stored.unwrap_or_else(|| {
                        next_position += 1;
                        next_position - 1
                    });
                    touches.push(Touch {
                        position,
                        action: u.action,
                        updates: 1,
                    });
                    touched.push(op);
                }
            }
        }
        Ok(Batch {
            touched,
            touches,
            statuses,
            close,
        })
    }
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

    /// The page of `checkpoint_token`'s operations after `marker`, cloned
    /// onto the end of `operations`; the next marker.
    fn page_into(
        &self,
        checkpoint_token: &str,
        marker: &str,
        operations: &mut Vec<Operation>,
    ) -> Result<Option<String>, ServiceError> {
        let mut s = self.lock();
        s.check_token(checkpoint_token)?;
        let start: usize = marker
            .parse()
            .map_err(|_| ServiceError::Rejected(format!("invalid marker {marker:?}")))?;
        let visible = s.pages(checkpoint_token);
        let start = start.min(visible.len());
        let end = (start + self.page_size).min(visible.len());
        operations.reserve_exact(end - start);
        operations.extend(visible[start..end].iter().map(|&i| s.ops[i].clone()));
        Ok((end < visible.len()).then(|| end.to_string()))
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
        let mut operations = Vec::new();
        let page = self.page_into(checkpoint_token, marker, &mut operations);
        ready(page.map(|next_marker| ExecutionState::new(operations, next_marker)))
    }

    /// Clones the page straight from the store onto the end of
    /// `operations` (the history's own vector): no page vector, no second
    /// copy.
    fn get_state_into(
        &self,
        _execution_arn: &str,
        checkpoint_token: &str,
        marker: &str,
        operations: &mut Vec<Operation>,
    ) -> impl Future<Output = Result<Option<String>, ServiceError>> + Send {
        ready(self.page_into(checkpoint_token, marker, operations))
    }

    fn now(&self) -> Millis {
        self.lock().now
    }

    fn now_precise(&self) -> std::time::SystemTime {
        crate::service::millis_to_time(self.lock().now)
    }
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;

//! What happens outside the function while the execution is suspended:
//! waits and retry delays ending on the virtual clock, callbacks answered
//! (or timing out), chained invokes finishing.

use super::service::*;
use super::*;
use crate::history::shorten;
use crate::model::{OperationUpdate, Payload};

impl ExecState {
    /// The earliest callback deadline or scheduled answer, if any.
    pub(super) fn next_callback_event(&self) -> Option<Millis> {
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
        // A heartbeat changes no operation: the service does not invoke the
        // function for one, so the clock moves on to the next event.
        let seen = (self.updated.len(), self.closed.is_some());
        loop {
            let fired = self.advance_to_next_event();
            if !fired || (self.updated.len(), self.closed.is_some()) != seen {
                return fired;
            }
        }
    }

    /// Moves the clock to the earliest timer or scheduled answer and fires
    /// what is due by then. Whether anything was due.
    fn advance_to_next_event(&mut self) -> bool {
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
        // The execution's time runs out first: it ends TIMED_OUT, with
        // nothing more fired.
        if let Some(timeout) = self.timeout.filter(|_| self.closed.is_none()) {
            let millis = Millis::try_from(timeout.as_millis()).unwrap_or(Millis::MAX);
            let deadline = self.start.saturating_add(millis);
            if next > deadline {
                self.now = self.now.max(deadline);
                let message = format!("Execution timed out after {} seconds.", timeout.as_secs());
                let mut error = ErrorObject::default();
                error.error_message = Some(message);
                self.close(super::service::Closed::TimedOut(error));
                return true;
            }
        }
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
                    if let Some(d) = op.step_details.as_mut().map(Arc::make_mut) {
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
        for event in fired {
            self.timeline.push(event);
        }
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
    pub(super) fn invoke_started(&mut self, u: &OperationUpdate, delta: &mut [Operation]) {
        let function = u
            .chained_invoke_options
            .as_ref()
            .map(|o| o.function_name.clone())
            .unwrap_or_default();
        if self.functions.contains(&super::resolve_function(&function)) {
            let input = u.payload.as_ref().map_or("{}", |p| p.as_str()).to_owned();
            let trace_header = u
                .chained_invoke_options
                .as_ref()
                .and_then(|o| o.x_amzn_trace_id.clone());
            self.pending_invokes
                .push((u.id, function, input, trace_header));
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

    pub(super) fn close_invoke(&mut self, id: &OperationId, result: Result<String, ErrorObject>) {
        let now = self.now;
        let Some(at) = self.position(id) else {
            return;
        };
        let op = &mut self.ops[at];
        let details = Arc::make_mut(
            op.chained_invoke_details
                .get_or_insert_with(Default::default),
        );
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
        self.timeline.push(event);
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
                self.timeline.push(TimelineEvent::Answered {
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

    pub(super) fn close_callback(
        &mut self,
        id: &OperationId,
        status: OperationStatus,
        result: Option<Payload>,
        error: Option<ErrorObject>,
    ) {
        self.callbacks.remove(id);
        self.scheduled.retain(|(_, op, _)| op != id);
        let now = self.now;
        let Some(at) = self.position(id) else {
            return;
        };
        let op = &mut self.ops[at];
        op.status = status;
        op.end_timestamp = Some(now);
        let details = Arc::make_mut(op.callback_details.get_or_insert_with(Default::default));
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
        self.timeline.push(event);
        self.updated.push(id.to_string());
    }
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
    /// Sends a heartbeat (restarting the callback's heartbeat time-out), as
    /// `SendDurableExecutionCallbackHeartbeat` does; a later answer of the
    /// same name (`after` a longer delay) can then end the callback.
    pub fn heartbeat() -> Self {
        CallbackAnswer {
            answer: Answer::Heartbeat,
            after: 0,
        }
    }
    /// Answers this long (virtual time) after the callback started.
    pub fn after(mut self, delay: std::time::Duration) -> Self {
        self.after = Millis::try_from(delay.as_millis()).unwrap_or(Millis::MAX);
        self
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

//! The timeline of a local run: what happened, in order, printable.

use std::collections::HashMap;
use std::fmt;

use crate::history::shorten;
use crate::model::{
    ChainedInvokeOptions, ErrorObject, InvocationStatus, Millis, Operation, OperationAction,
    OperationId, OperationStatus, OperationType, Payload, SharedStr,
};

use super::ExecutionStatus;

mod history;

/// One entry of a run's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimelineEvent {
    /// The service invoked the function.
    Invoked {
        /// 1-based invocation number.
        invocation: u32,
        /// Virtual time.
        at: Millis,
    },
    /// A checkpoint update was applied. (More fields may come: match it
    /// with `..`.)
    #[non_exhaustive]
    Applied {
        /// Virtual time.
        at: Millis,
        /// The operation.
        id: OperationId,
        /// Its type.
        op_type: OperationType,
        /// Its name.
        name: Option<SharedStr>,
        /// What was done.
        action: OperationAction,
        /// The status it has now.
        status: OperationStatus,
        /// The update's payload.
        payload: Option<Payload>,
        /// The update's wait length, in seconds.
        wait_seconds: Option<u32>,
        /// The update's delay before the next attempt (RETRY), in seconds.
        retry_seconds: Option<u32>,
        /// The update's error.
        error: Option<Box<ErrorObject>>,
        /// The CONTEXT operation it belongs to (none at the root).
        parent: Option<OperationId>,
        /// A callback START's time-out, in seconds (0: none).
        timeout_seconds: Option<u32>,
        /// A callback START's heartbeat time-out, in seconds (0: none).
        heartbeat_timeout_seconds: Option<u32>,
        /// A chained invoke START's options (the function, the tenant).
        chained_invoke_options: Option<Box<ChainedInvokeOptions>>,
    },
    /// A checkpoint was rejected.
    Rejected {
        /// Virtual time.
        at: Millis,
        /// Why.
        message: String,
    },
    /// A timer fired: a wait ended or a step's retry became due.
    TimerFired {
        /// Virtual time.
        at: Millis,
        /// The operation.
        id: OperationId,
        /// Its type.
        op_type: OperationType,
        /// Its name.
        name: Option<SharedStr>,
        /// The status it has now.
        status: OperationStatus,
    },
    /// An operation was completed from outside the workflow: a callback
    /// answered (or sent a heartbeat), an invoked function returned.
    Answered {
        /// Virtual time.
        at: Millis,
        /// The operation.
        id: OperationId,
        /// Its type.
        op_type: OperationType,
        /// Its name.
        name: Option<SharedStr>,
        /// The status it has now.
        status: OperationStatus,
        /// The answer, shortened.
        detail: String,
    },
    /// The invocation returned.
    Returned {
        /// 1-based invocation number.
        invocation: u32,
        /// Virtual time.
        at: Millis,
        /// Its status.
        status: InvocationStatus,
        /// Operations answered from history.
        replayed: u64,
        /// Step bodies that ran.
        executed: u64,
        /// Checkpoint requests sent.
        checkpoints: u64,
    },
    /// The invocation failed (the service would retry it). (More fields
    /// may come: match it with `..`.)
    #[non_exhaustive]
    InvocationFailed {
        /// 1-based invocation number.
        invocation: u32,
        /// Virtual time.
        at: Millis,
        /// Why.
        error: String,
        /// The error type Lambda reports for it (the history's
        /// `InvocationCompleted` error): `Runtime.ExitError` when the
        /// process died (an injected crash), `InvocationFailed` when the
        /// handler returned an error.
        error_type: String,
    },
    /// The execution closed.
    Closed {
        /// Virtual time.
        at: Millis,
        /// How.
        status: ExecutionStatus,
        /// The result or the error, shortened.
        detail: String,
        /// The result, as recorded (succeeded).
        result: Option<Payload>,
        /// The error (failed).
        error: Option<Box<ErrorObject>>,
    },
}

/// What happened during a local run, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeline {
    /// Virtual time the execution started at.
    pub start: Millis,
    /// The events.
    pub events: Vec<TimelineEvent>,
}

/// A run's timeline as the local service records it. An applied update,
/// one entry per update and the bulk of a large run, is kept as the
/// position of its operation in the service's store and what the update
/// carried (64 bytes where a [`TimelineEvent`] takes 216): its id, type,
/// name and parent are those of the stored operation, since the service
/// rejects an update that does not match its operation in them. The other
/// events, a few per invocation, are kept whole. [`Log::to_timeline`]
/// builds the public form when it is asked for.
#[derive(Debug, Clone, Default)]
pub(super) struct Log {
    start: Millis,
    entries: Vec<Entry>,
    /// The options of chained invoke STARTs, by the index of their entry
    /// (few: kept apart so that the entry of every update stays small).
    invokes: Vec<(usize, Box<ChainedInvokeOptions>)>,
}

#[derive(Debug, Clone)]
enum Entry {
    Applied(Applied),
    Other(Box<TimelineEvent>),
}

/// An update the service applied to the operation at `position` of its
/// store (see [`Log`]), and the status the operation had after it.
#[derive(Debug, Clone)]
pub(super) struct Applied {
    pub(super) at: Millis,
    pub(super) position: usize,
    pub(super) action: OperationAction,
    pub(super) status: OperationStatus,
    pub(super) payload: Option<Payload>,
    pub(super) wait_seconds: Option<u32>,
    pub(super) retry_seconds: Option<u32>,
    pub(super) error: Option<Box<ErrorObject>>,
}

impl Log {
    /// An empty log of a run that started at `start`.
    pub(super) fn new(start: Millis) -> Self {
        Log {
            start,
            entries: Vec::new(),
            invokes: Vec::new(),
        }
    }

    /// Records an event other than an applied update.
    pub(super) fn push(&mut self, event: TimelineEvent) {
        self.entries.push(Entry::Other(Box::new(event)));
    }

    /// Records an applied update.
    pub(super) fn applied(&mut self, applied: Applied) {
        self.entries.push(Entry::Applied(applied));
    }

    /// Records the options of the chained invoke START just applied.
    pub(super) fn invoke_options(&mut self, options: Box<ChainedInvokeOptions>) {
        if let Some(last) = self.entries.len().checked_sub(1) {
            self.invokes.push((last, options));
        }
    }

    /// The timeline, with each applied update's id, type, name and parent
    /// read from `ops` (the service's store the positions point into).
    pub(super) fn to_timeline(&self, ops: &[Operation]) -> Timeline {
        let events = self
            .entries
            .iter()
            .enumerate()
            .filter_map(|(i, entry)| match entry {
                Entry::Other(event) => Some(TimelineEvent::clone(event)),
                Entry::Applied(a) => {
                    let chained_invoke_options = self
                        .invokes
                        .binary_search_by_key(&i, |(at, _)| *at)
                        .ok()
                        .map(|k| self.invokes[k].1.clone());
                    // (Every position is one the store had when it was logged,
                    // and the store only grows.)
                    let op = ops.get(a.position)?;
                    // A callback START keeps its two time-outs in the slots of
                    // a wait's length and a retry's delay, which it has not.
                    let callback = op.op_type == OperationType::Callback;
                    let (wait_seconds, retry_seconds, timeout_seconds, heartbeat_timeout_seconds) =
                        if callback {
                            (None, None, a.wait_seconds, a.retry_seconds)
                        } else {
                            (a.wait_seconds, a.retry_seconds, None, None)
                        };
                    Some(TimelineEvent::Applied {
                        at: a.at,
                        id: op.id,
                        op_type: op.op_type,
                        name: op.name.clone(),
                        action: a.action,
                        status: a.status,
                        payload: a.payload.clone(),
                        wait_seconds,
                        retry_seconds,
                        error: a.error.clone(),
                        parent: op.parent_id,
                        timeout_seconds,
                        heartbeat_timeout_seconds,
                        chained_invoke_options,
                    })
                }
            });
        let mut all = Vec::with_capacity(self.entries.len());
        all.extend(events);
        Timeline {
            start: self.start,
            events: all,
        }
    }
}

fn offset(start: Millis, at: Millis) -> String {
    let s = (at - start).max(0) / 1000;
    format!("+{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

fn name_or_dash(name: &Option<impl fmt::Debug>) -> String {
    match name {
        Some(n) => format!("{n:?}"),
        None => "-".to_owned(),
    }
}

impl fmt::Display for Timeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The name and depth of each context seen so far: a context's
        // START comes before anything inside it.
        let mut contexts: HashMap<OperationId, (String, usize)> = HashMap::new();
        for event in &self.events {
            match event {
                TimelineEvent::Invoked { invocation, at } => {
                    writeln!(f, "{} invocation {invocation}", offset(self.start, *at))?
                }
                TimelineEvent::Applied {
                    op_type,
                    name,
                    action,
                    status,
                    payload,
                    wait_seconds,
                    error,
                    id,
                    parent,
                    ..
                } => {
                    let (context, depth) = match parent.as_ref().and_then(|p| contexts.get(p)) {
                        Some((name, depth)) => (Some(name.clone()), depth + 1),
                        None => (None, 0),
                    };
                    if *op_type == OperationType::Context && !contexts.contains_key(id) {
                        let own = name.as_deref().unwrap_or("-").to_owned();
                        contexts.insert(*id, (own, depth));
                    }
                    let mut detail = Vec::new();
                    if let Some(p) = payload {
                        let (codec, _) = durable_yield_codecs::split_tag(p.as_str());
                        detail.push(format!(
                            "{codec} {} B: {}",
                            p.len(),
                            shorten(p.as_str(), 48)
                        ));
                    }
                    if let Some(w) = wait_seconds {
                        detail.push(format!("{w} s"));
                    }
                    if let Some(e) = error {
                        detail.push(shorten(&e.to_string(), 80));
                    }
                    // Operations in child contexts are indented under them
                    // and name the context they belong to.
                    let indent = "  ".repeat(depth);
                    let name = name_or_dash(&name.as_deref().map(str::to_owned));
                    let label = match context {
                        Some(c) => format!("{indent}{name} in {c}"),
                        None => format!("{indent}{name}"),
                    };
                    writeln!(
                        f,
                        "           {:<14} {:<34} {:<7} -> {:<9} {}",
                        op_type.to_string(),
                        label,
                        action.to_string(),
                        status.to_string(),
                        detail.join(", ")
                    )?
                }
                TimelineEvent::Rejected { message, .. } => {
                    writeln!(f, "           checkpoint rejected: {message}")?
                }
                TimelineEvent::TimerFired {
                    at,
                    op_type,
                    name,
                    status,
                    ..
                } => writeln!(
                    f,
                    "{} timer  {op_type} {} -> {status}",
                    offset(self.start, *at),
                    name_or_dash(name)
                )?,
                TimelineEvent::Answered {
                    at,
                    op_type,
                    name,
                    status,
                    detail,
                    ..
                } => writeln!(
                    f,
                    "{} answer {op_type} {} -> {status} {detail}",
                    offset(self.start, *at),
                    name_or_dash(name)
                )?,
                TimelineEvent::Returned {
                    status,
                    replayed,
                    executed,
                    checkpoints,
                    ..
                } => writeln!(
                    f,
                    "           returned {status} (replayed {replayed}, ran {executed} step(s), \
                     {checkpoints} checkpoint request(s))"
                )?,
                TimelineEvent::InvocationFailed { error, .. } => {
                    writeln!(f, "           invocation failed: {error}")?
                }
                TimelineEvent::Closed {
                    at, status, detail, ..
                } => writeln!(
                    f,
                    "{} execution {status}: {detail}",
                    offset(self.start, *at)
                )?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_builds_the_timeline_from_the_stored_operations() {
        let id = |s: &str| OperationId::new(s).expect("an id");
        let mut step = Operation::new(id("s"), OperationType::Step, OperationStatus::Succeeded);
        step.name = Some("charge".into());
        step.parent_id = Some(id("ctx"));
        let ctx = Operation::new(id("ctx"), OperationType::Context, OperationStatus::Started);
        let ops = vec![ctx, step];
        let mut log = Log::new(1_000);
        log.push(TimelineEvent::Invoked {
            invocation: 1,
            at: 1_000,
        });
        let applied = Applied {
            at: 2_000,
            position: 1,
            action: OperationAction::Succeed,
            status: OperationStatus::Succeeded,
            payload: Some(Payload::from("42")),
            wait_seconds: None,
            retry_seconds: Some(3),
            error: None,
        };
        log.applied(applied.clone());
        // A position the store does not have is left out, not a panic.
        log.applied(Applied {
            position: 9,
            ..applied
        });
        let timeline = log.to_timeline(&ops);
        assert_eq!(timeline.start, 1_000);
        assert_eq!(
            timeline.events,
            vec![
                TimelineEvent::Invoked {
                    invocation: 1,
                    at: 1_000
                },
                TimelineEvent::Applied {
                    at: 2_000,
                    id: id("s"),
                    op_type: OperationType::Step,
                    name: Some("charge".into()),
                    action: OperationAction::Succeed,
                    status: OperationStatus::Succeeded,
                    payload: Some(Payload::from("42")),
                    wait_seconds: None,
                    retry_seconds: Some(3),
                    error: None,
                    parent: Some(id("ctx")),
                    timeout_seconds: None,
                    heartbeat_timeout_seconds: None,
                    chained_invoke_options: None,
                },
            ]
        );
        // What the compact entry saves: a large run logs one per update.
        assert!(std::mem::size_of::<Entry>() < std::mem::size_of::<TimelineEvent>() / 2);
    }
}

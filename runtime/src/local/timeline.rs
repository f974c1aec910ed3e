//! The timeline of a local run: what happened, in order, printable.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use crate::model::{
    ErrorObject, InvocationStatus, Millis, OperationAction, OperationId, OperationStatus,
    OperationType, Payload,
};

use super::ExecutionStatus;

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
    /// A checkpoint update was applied.
    Applied {
        /// Virtual time.
        at: Millis,
        /// The operation.
        id: OperationId,
        /// Its type.
        op_type: OperationType,
        /// Its name.
        name: Option<Cow<'static, str>>,
        /// What was done.
        action: OperationAction,
        /// The status it has now.
        status: OperationStatus,
        /// The update's payload.
        payload: Option<Payload>,
        /// The update's wait length, in seconds.
        wait_seconds: Option<u32>,
        /// The update's error.
        error: Option<Box<ErrorObject>>,
        /// The CONTEXT operation it belongs to (none at the root).
        parent: Option<OperationId>,
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
        name: Option<String>,
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
        name: Option<String>,
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
    /// The invocation failed (the service would retry it).
    InvocationFailed {
        /// 1-based invocation number.
        invocation: u32,
        /// Virtual time.
        at: Millis,
        /// Why.
        error: String,
    },
    /// The execution closed.
    Closed {
        /// Virtual time.
        at: Millis,
        /// How.
        status: ExecutionStatus,
        /// The result or the error, shortened.
        detail: String,
    },
}

/// What happened during a local run, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline {
    /// Virtual time the execution started at.
    pub start: Millis,
    /// The events.
    pub events: Vec<TimelineEvent>,
}

fn offset(start: Millis, at: Millis) -> String {
    let s = (at - start).max(0) / 1000;
    format!("+{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

fn name_or_dash(name: &Option<String>) -> String {
    match name {
        Some(n) => format!("{n:?}"),
        None => "-".to_owned(),
    }
}

pub(super) fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let cut: String = s.chars().take(max).collect();
        format!("{cut}…")
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
                TimelineEvent::Closed { at, status, detail } => writeln!(
                    f,
                    "{} execution {status}: {detail}",
                    offset(self.start, *at)
                )?,
            }
        }
        Ok(())
    }
}

//! What the interpreter saw happen to operations, for lifecycle hooks
//! (plugins, metrics, tracing exporters). Off unless a driver asks for it
//! with [`Interpreter::observe`](crate::Interpreter::observe).

use crate::error::OpRef;
use crate::model::{
    ErrorObject, IdMap, Operation, OperationAction, OperationId, OperationStatus, OperationUpdate,
    Payload,
};

/// A change in an operation's life seen during one invocation.
///
/// Each operation the workflow reaches is reported at most once as
/// started and at most once as ended per invocation:
///
/// - [`Observation::Started`] when the workflow reaches an operation that
///   is not finished: new work (`replayed == false`), or work an earlier
///   invocation started and that is still going on (`replayed == true`: a
///   wait still running, a step waiting for its next attempt, a callback
///   not answered yet).
/// - [`Observation::Ended`] the first time its outcome is known in this
///   invocation: decided here (a step's result, a context's end), learned
///   from the service's answer to a checkpoint (a wait that is over, an
///   invoke that failed at once), or, for an operation that was already
///   finished when the invocation began, only if the service lists it
///   among the operations changed since the last invocation
///   (`UpdatedOperationIds`: a wait whose timer fired, a callback that was
///   answered). Operations finished in earlier invocations and unchanged
///   since are replayed silently.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Observation {
    /// The workflow reached an unfinished operation.
    Started {
        /// The operation.
        op: OpRef,
        /// Whether an earlier invocation started it.
        replayed: bool,
        /// Its status: `STARTED` for new work, else as recorded.
        status: OperationStatus,
    },
    /// An operation's outcome became known.
    Ended {
        /// The operation.
        op: OpRef,
        /// Whether it finished before this invocation began.
        replayed: bool,
        /// Its terminal status.
        status: OperationStatus,
        /// The error it ended with, if it failed.
        error: Option<Box<ErrorObject>>,
        /// The result it ended with (as checkpointed), if it succeeded
        /// with one.
        result: Option<Payload>,
        /// Whether the end is recorded at all: false for a virtual context
        /// (a virtual child, a flat branch), which checkpoints nothing.
        checkpointed: bool,
    },
    /// The code of a context (a child context, a map item, a parallel
    /// branch, a wait-for-callback) starts running in this invocation.
    FunctionStarted {
        /// The context's operation.
        op: OpRef,
        /// Whether it runs to rebuild a result too large to have been
        /// checkpointed (`ReplayChildren`): everything in it replays.
        replay_children: bool,
        /// Whether an earlier invocation recorded the context (it runs
        /// again to go on, or to rebuild its result).
        replayed: bool,
    },
    /// The code of a context stopped running in this invocation.
    FunctionEnded {
        /// The context's operation.
        op: OpRef,
        /// How.
        outcome: FunctionOutcome,
        /// The error it returned, if it failed.
        error: Option<Box<ErrorObject>>,
    },
}

/// How the code of a context (or a step body) stopped running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FunctionOutcome {
    /// It returned a value.
    Succeeded,
    /// It returned an error (or a step body panicked).
    Failed,
    /// It did not finish in this invocation: it waits (a timer, a
    /// callback, an invoke), or its batch ended without it.
    Incomplete,
}

impl FunctionOutcome {
    /// `SUCCEEDED`, `FAILED` or `INCOMPLETE`.
    pub fn as_str(self) -> &'static str {
        match self {
            FunctionOutcome::Succeeded => "SUCCEEDED",
            FunctionOutcome::Failed => "FAILED",
            FunctionOutcome::Incomplete => "INCOMPLETE",
        }
    }
}

impl Observation {
    /// The operation it is about.
    pub fn op(&self) -> &OpRef {
        match self {
            Observation::Started { op, .. }
            | Observation::Ended { op, .. }
            | Observation::FunctionStarted { op, .. }
            | Observation::FunctionEnded { op, .. } => op,
        }
    }
}

/// The interpreter's bookkeeping for observations.
#[derive(Default)]
pub(crate) struct Observer {
    /// Operations the service changed since the last invocation.
    updated: IdMap<()>,
    /// Operations reached in this invocation and not ended yet.
    open: IdMap<OpRef>,
    queue: Vec<Observation>,
}

impl Observer {
    pub(crate) fn new(updated: impl IntoIterator<Item = OperationId>) -> Self {
        Observer {
            updated: updated.into_iter().map(|id| (id, ())).collect(),
            ..Observer::default()
        }
    }

    /// The workflow reached `op`, recorded as `recorded`.
    pub(crate) fn reached(&mut self, op: &OpRef, recorded: Option<&Operation>) {
        match recorded {
            None => {
                self.open.insert(op.id, op.clone());
                self.queue.push(Observation::Started {
                    op: op.clone(),
                    replayed: false,
                    status: OperationStatus::Started,
                });
            }
            Some(r) if !r.status.is_terminal() => {
                self.open.insert(op.id, op.clone());
                self.queue.push(Observation::Started {
                    op: op.clone(),
                    replayed: true,
                    status: r.status,
                });
            }
            Some(r) => {
                if self.updated.contains_key(&op.id) {
                    self.queue.push(Observation::Ended {
                        op: op.clone(),
                        replayed: true,
                        status: r.status,
                        error: recorded_error(r),
                        result: recorded_result(r),
                        checkpointed: true,
                    });
                }
            }
        }
    }

    /// The interpreter sends `updates`: a SUCCEED or FAIL ends an
    /// operation.
    pub(crate) fn sending(&mut self, updates: &[OperationUpdate]) {
        for u in updates {
            let status = match u.action {
                OperationAction::Succeed => OperationStatus::Succeeded,
                OperationAction::Fail => OperationStatus::Failed,
                _ => continue,
            };
            if let Some(op) = self.open.remove(&u.id) {
                self.queue.push(Observation::Ended {
                    op,
                    replayed: false,
                    status,
                    error: u.error.clone(),
                    result: u
                        .payload
                        .clone()
                        .filter(|_| status == OperationStatus::Succeeded),
                    checkpointed: true,
                });
            }
        }
    }

    /// An operation that records no end of its own (a virtual context)
    /// ended.
    pub(crate) fn closed(
        &mut self,
        id: &OperationId,
        status: OperationStatus,
        error: Option<Box<ErrorObject>>,
    ) {
        if let Some(op) = self.open.remove(id) {
            self.queue.push(Observation::Ended {
                op,
                replayed: false,
                status,
                error,
                result: None,
                checkpointed: false,
            });
        }
    }

    /// A context's code starts running.
    pub(crate) fn function_started(&mut self, op: &OpRef, replay_children: bool, replayed: bool) {
        self.queue.push(Observation::FunctionStarted {
            op: op.clone(),
            replay_children,
            replayed,
        });
    }

    /// A context's code stopped running.
    pub(crate) fn function_ended(
        &mut self,
        op: &OpRef,
        outcome: FunctionOutcome,
        error: Option<Box<ErrorObject>>,
    ) {
        self.queue.push(Observation::FunctionEnded {
            op: op.clone(),
            outcome,
            error,
        });
    }

    /// The service reported `operations`: a reached operation that is now
    /// finished ends (the service finished it: a wait, a callback, an
    /// invoke).
    pub(crate) fn merging(&mut self, operations: &[Operation]) {
        if self.open.is_empty() {
            return;
        }
        for o in operations {
            if !o.status.is_terminal() {
                continue;
            }
            if let Some(op) = self.open.remove(&o.id) {
                self.queue.push(Observation::Ended {
                    op,
                    replayed: false,
                    status: o.status,
                    error: recorded_error(o),
                    result: recorded_result(o),
                    checkpointed: true,
                });
            }
        }
    }

    pub(crate) fn take(&mut self) -> Vec<Observation> {
        std::mem::take(&mut self.queue)
    }
}

/// The result an operation's record carries, whatever its type.
fn recorded_result(o: &Operation) -> Option<Payload> {
    o.step_details
        .as_ref()
        .and_then(|d| d.result.clone())
        .or_else(|| o.context_details.as_ref().and_then(|d| d.result.clone()))
        .or_else(|| o.callback_details.as_ref().and_then(|d| d.result.clone()))
        .or_else(|| {
            o.chained_invoke_details
                .as_ref()
                .and_then(|d| d.result.clone())
        })
}

/// The error an operation's record carries, whatever its type.
fn recorded_error(o: &Operation) -> Option<Box<ErrorObject>> {
    let error = o
        .step_details
        .as_ref()
        .and_then(|d| d.error.as_ref())
        .or_else(|| o.context_details.as_ref().and_then(|d| d.error.as_ref()))
        .or_else(|| o.callback_details.as_ref().and_then(|d| d.error.as_ref()))
        .or_else(|| {
            o.chained_invoke_details
                .as_ref()
                .and_then(|d| d.error.as_ref())
        })?;
    Some(Box::new(error.clone()))
}

/// The operations the service finished since the SDK last wrote to the
/// history: a wait, callback or chained invoke (work the service ends,
/// not the SDK) that is finished and whose end is later than everything
/// the SDK recorded (every start, and the ends of steps and contexts).
///
/// The invocation that wrote last saw them unfinished, so they changed
/// since the last invocation whether or not the service lists them in
/// `UpdatedOperationIds` (AWS's emulator leaves answered callbacks out).
/// Hand them to [`Interpreter::observe`](crate::Interpreter::observe)
/// with that list.
pub fn finished_since_last_write(operations: &[Operation]) -> Vec<OperationId> {
    use crate::model::OperationType;
    let by_service = |op: &Operation| {
        matches!(
            op.op_type,
            OperationType::Wait | OperationType::Callback | OperationType::ChainedInvoke
        )
    };
    let last_write = operations
        .iter()
        .flat_map(|op| {
            let end = (!by_service(op)).then_some(op.end_timestamp).flatten();
            [op.start_timestamp, end]
        })
        .flatten()
        .max();
    operations
        .iter()
        .filter(|op| by_service(op) && op.status.is_terminal())
        .filter(|op| match (op.end_timestamp, last_write) {
            (Some(end), Some(last)) => end > last,
            _ => false,
        })
        .map(|op| op.id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::operation_id;
    use crate::model::OperationType;

    fn op(
        n: u64,
        op_type: OperationType,
        status: OperationStatus,
        times: (i64, Option<i64>),
    ) -> Operation {
        let mut op = Operation::new(operation_id(None, n), op_type, status);
        op.start_timestamp = Some(times.0);
        op.end_timestamp = times.1;
        op
    }

    #[test]
    fn what_the_service_finished_after_the_last_write_changed() {
        use OperationStatus as S;
        use OperationType as T;
        let execution = op(0, T::Execution, S::Started, (0, None));
        let step = op(1, T::Step, S::Succeeded, (10, Some(20)));
        // Answered at 50, after everything the SDK wrote (the step's end at
        // 20, the callback's start at 30).
        let answered = op(2, T::Callback, S::Succeeded, (30, Some(50)));
        let ops = vec![execution.clone(), step.clone(), answered.clone()];
        assert_eq!(finished_since_last_write(&ops), vec![answered.id]);
        // A later write (a START at 60) saw it answered.
        let later = op(3, T::Step, S::Started, (60, None));
        let ops = vec![execution.clone(), step.clone(), answered.clone(), later];
        assert!(finished_since_last_write(&ops).is_empty());
        // Waits and invokes too; not steps or contexts (the SDK ends them),
        // nor anything unfinished.
        let wait = op(4, T::Wait, S::Succeeded, (30, Some(90)));
        let invoke = op(5, T::ChainedInvoke, S::Failed, (31, Some(95)));
        let running = op(6, T::Callback, S::Started, (32, None));
        let ops = vec![execution, step, wait.clone(), invoke.clone(), running];
        assert_eq!(finished_since_last_write(&ops), vec![wait.id, invoke.id]);
        assert!(finished_since_last_write(&[]).is_empty());
    }
}

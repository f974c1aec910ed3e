//! The checkpoint follow-up shared by every operation: updates emitted in
//! order, STARTs held while a body runs, and the service's answers merged
//! into the history.

use super::*;

impl Interpreter {
    /// Holds back an update that no context waits for.
    pub(super) fn defer(&mut self, update: OperationUpdate) {
        if self.deferred.is_empty() {
            self.deferred_epoch += 1;
        }
        self.deferred.push(update);
    }

    /// Whether updates that no context waits for are held back.
    pub(super) fn has_deferred(&self) -> bool {
        !self.deferred.is_empty() && self.ending.is_none()
    }

    /// Whether updates that no context waits for are held back (the
    /// STARTs of child contexts and of step attempts whose bodies are
    /// running: they travel with the next checkpoint, so that a fast
    /// step's START and outcome share one request), and if so a number
    /// that changes each time the held updates start anew (after the
    /// earlier ones were sent): a driver that lets them wait a while
    /// measures the wait from when the number changed.
    pub fn deferred_epoch(&self) -> Option<u64> {
        self.has_deferred().then_some(self.deferred_epoch)
    }

    /// Hands the held-back updates out now, as a checkpoint of their own
    /// (returned by the next [`Interpreter::poll`], answered like any
    /// other), without waiting for a body to finish. A driver calls it when
    /// a body has been running for a while, so that the service records
    /// that the operation started even if the process dies before the body
    /// ends. Does nothing when nothing is held back.
    pub fn send_deferred(&mut self) {
        if self.has_deferred() {
            self.emit(Vec::new(), After::Nothing, false);
        }
    }

    /// Whether a checkpoint handed out has not been answered yet.
    pub(super) fn checkpoints_outstanding(&self) -> bool {
        self.next_answer < self.next_checkpoint
    }

    /// Hands out a checkpoint with the deferred updates first.
    pub(super) fn emit(
        &mut self,
        updates: Vec<OperationUpdate>,
        after: After,
        wait_for_response: bool,
    ) {
        let updates = if self.deferred.is_empty() {
            updates
        } else {
            let mut all = std::mem::take(&mut self.deferred);
            all.extend(updates);
            all
        };
        if let Some(observer) = self.observer.as_deref_mut() {
            observer.sending(&updates);
        }
        let handle = CheckpointHandle(self.next_checkpoint);
        self.next_checkpoint += 1;
        if !matches!(after, After::Nothing) {
            self.awaiting.push_back((handle, after));
        }
        self.outbox.push_back(Action::Checkpoint {
            handle,
            updates,
            wait_for_response,
        });
    }

    /// Reports that the updates of the [`Action::Checkpoint`] `handle` were
    /// accepted, with the operations the response carried (new and changed
    /// ones, including completions that happened meanwhile). Checkpoints
    /// are answered in the order they were handed out.
    pub fn checkpoint_finished(&mut self, handle: CheckpointHandle, delta: Vec<Operation>) {
        if handle.0 != self.next_answer || !self.checkpoints_outstanding() {
            self.misuse("checkpoint_finished out of order or without a checkpoint");
            return;
        }
        self.next_answer += 1;
        let after = match self.awaiting.front() {
            Some((h, _)) if *h == handle => match self.awaiting.pop_front() {
                Some((_, after)) => after,
                None => After::Nothing,
            },
            _ => After::Nothing,
        };
        if let Some(observer) = self.observer.as_deref_mut() {
            observer.merging(&delta);
        }
        self.history.merge(delta);
        match after {
            After::Nothing => {}
            After::Resume(ctx, response) => {
                if !self.dead(ctx) {
                    self.ready.push_back((ctx, response));
                }
            }
            After::Started(ctx, live) => {
                if !self.dead(ctx) {
                    let context = self
                        .live_op(ctx)
                        .map(|op| self.step_context(op, live.attempt));
                    match context {
                        Some(context) => {
                            self.contexts[ctx as usize].step.set_live(*live);
                            self.ready
                                .push_back((ctx, Response::Execute(Box::new(context))));
                        }
                        None => self.fatal(ExecutionError::Internal(
                            "a started step has no operation reference".into(),
                        )),
                    }
                }
            }
            After::Retried(ctx, id) => {
                let due = self
                    .history
                    .get(&id)
                    .and_then(|o| o.step_details.as_ref())
                    .and_then(|d| d.next_attempt_timestamp);
                self.apply(ctx, Next::Suspend(due));
            }
            After::WaitStarted(ctx, id) => {
                let next = match self.history.get(&id) {
                    Some(o)
                        if matches!(
                            o.status,
                            OperationStatus::Succeeded | OperationStatus::Cancelled
                        ) =>
                    {
                        Next::Resume(Response::Continue)
                    }
                    recorded => Next::Suspend(
                        recorded
                            .and_then(|o| o.wait_details.as_ref())
                            .and_then(|d| d.scheduled_end_timestamp),
                    ),
                };
                if !self.dead(ctx) {
                    self.apply(ctx, next);
                }
            }
            After::BranchClosed {
                batch,
                index,
                outcome,
            } => self.branch_done(batch, index, outcome),
            After::InvokeStarted(ctx, op) => {
                if !self.dead(ctx) {
                    let next = self.invoke_outcome(&op);
                    self.apply(ctx, next);
                }
            }
            After::CallbackStarted(ctx, op) => {
                if !self.dead(ctx) {
                    let next = self.callback_id(&op);
                    self.apply(ctx, next);
                }
            }
        }
    }

    /// Merges operations the service reported outside an answer to
    /// [`Action::Checkpoint`] (e.g. when a driver sends held-back updates
    /// later).
    pub fn merge_operations(&mut self, operations: Vec<Operation>) {
        if let Some(observer) = self.observer.as_deref_mut() {
            observer.merging(&operations);
        }
        self.history.merge(operations);
    }
}

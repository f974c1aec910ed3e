//! Wait-for-condition: each check runs as a step attempt on the current
//! state; an unmet condition is a RETRY with the state and the delay.

use super::*;

impl Interpreter {
    pub(super) fn on_condition(
        &mut self,
        ctx: CtxId,
        name: Option<Cow<'static, str>>,
        strategy: Arc<dyn RetryStrategy>,
    ) {
        let (op, at) = self.next_op(
            ctx,
            OperationType::Step,
            SharedStr::from_static(crate::subtype::WAIT_FOR_CONDITION),
            name,
        );
        let recorded = at.map(|at| self.history.at(at));
        let replay_only = self.contexts[ctx as usize].replay_only;
        let next = if let Err(e) = self.check(&op, recorded) {
            Next::fail(e)
        } else {
            match recorded {
                Some(r) if replay_only && !r.status.is_terminal() => {
                    Next::fail(Self::not_recorded(&op, Some(r)))
                }
                None if replay_only => Next::fail(Self::not_recorded(&op, None)),
                None => self.check_live(ctx, &op, 1, strategy, None, true),
                Some(recorded) => {
                    let details = recorded.step_details.as_deref();
                    let next = details
                        .and_then(|d| d.attempt)
                        .unwrap_or(0)
                        .saturating_add(1);
                    // The state the last check left, if any.
                    let state = details
                        .and_then(|d| d.result.clone())
                        .filter(|p| !p.is_empty());
                    match recorded.status {
                        OperationStatus::Succeeded => {
                            self.replayed += 1;
                            Next::Resume(Response::Step(Ok(
                                state.unwrap_or_else(|| Payload::from("null"))
                            )))
                        }
                        status @ (OperationStatus::Failed
                        | OperationStatus::Cancelled
                        | OperationStatus::TimedOut
                        | OperationStatus::Stopped) => {
                            self.replayed += 1;
                            let error = details.and_then(|d| d.error.as_ref());
                            let error = recorded_error(
                                error,
                                status,
                                "WaitForConditionFailed",
                                "condition wait",
                            );
                            Next::Resume(Response::Step(Err(Box::new(error))))
                        }
                        OperationStatus::Pending => {
                            Next::Suspend(details.and_then(|d| d.next_attempt_timestamp))
                        }
                        // An interrupted check runs again, without a new START.
                        OperationStatus::Started => {
                            self.check_live(ctx, &op, next, strategy, state, false)
                        }
                        OperationStatus::Ready => {
                            self.check_live(ctx, &op, next, strategy, state, true)
                        }
                        OperationStatus::Unknown(name) => Next::fail(unknown_status(&op, name)),
                    }
                }
            }
        };
        self.set_last(ctx, op);
        self.apply(ctx, next);
    }

    /// Prepares a live check of a wait-for-condition (at least once: its
    /// START is deferred like a step attempt's).
    pub(super) fn check_live(
        &mut self,
        ctx: CtxId,
        op: &OpRef,
        attempt: u32,
        strategy: Arc<dyn RetryStrategy>,
        state: Option<Payload>,
        send_start: bool,
    ) -> Next {
        let done = Arc::new(AtomicBool::new(false));
        let context = self.step_context(op, attempt);
        self.contexts[ctx as usize].step.set_live(LiveStep {
            seq: op.seq,
            attempt,
            send_start,
            retry: None,
            condition: Some((strategy, done.clone())),
        });
        Next::Resume(Response::Check(Box::new(CheckRequest {
            context,
            state,
            done,
        })))
    }
}

//! Waits: a recorded wait replays (finished or still pending), a new one
//! checkpoints its START and suspends the invocation.

use super::*;

impl Interpreter {
    pub(super) fn on_wait(
        &mut self,
        ctx: CtxId,
        name: Option<Cow<'static, str>>,
        duration: Duration,
    ) {
        let (op, at) = self.next_op(
            ctx,
            OperationType::Wait,
            SharedStr::from_static(crate::subtype::WAIT),
            name,
        );
        // Whole seconds, rounded up, like retry delays.
        let seconds = duration
            .as_secs()
            .saturating_add(u64::from(duration.subsec_nanos() > 0));
        let recorded = at.map(|at| self.history.at(at));
        let replay_only = self.contexts[ctx as usize].replay_only;
        // The duration is checked only for a new wait: a recorded one
        // replays whatever the code asks now (a change that makes a
        // finished wait's duration invalid must not fail executions in
        // flight).
        let next = if let Err(e) = self.check(&op, recorded) {
            Next::fail(e)
        } else if let Some(recorded) = recorded {
            match recorded.status {
                OperationStatus::Succeeded | OperationStatus::Cancelled => {
                    self.replayed += 1;
                    Next::Resume(Response::Continue)
                }
                OperationStatus::Unknown(name) => Next::fail(unknown_status(&op, name)),
                OperationStatus::Started if replay_only => {
                    Next::fail(Self::not_recorded(&op, Some(recorded)))
                }
                OperationStatus::Started => Next::Suspend(
                    recorded
                        .wait_details
                        .as_ref()
                        .and_then(|d| d.scheduled_end_timestamp),
                ),
                status => Next::fail(ExecutionError::UnexpectedStatus {
                    op: op.clone(),
                    status,
                }),
            }
        } else if replay_only {
            Next::fail(Self::not_recorded(&op, None))
        } else if !(1..=MAX_WAIT_SECONDS).contains(&seconds) {
            Next::fail(ExecutionError::InvalidWaitDuration {
                op: op.clone(),
                duration,
            })
        } else {
            let mut start = update(&op, OperationAction::Start);
            start.wait_options = Some(WaitOptions {
                wait_seconds: seconds as u32,
            });
            Next::Checkpoint(vec![start], After::WaitStarted(ctx, op.id))
        };
        self.set_last(ctx, op);
        self.apply(ctx, next);
    }
}

//! Callbacks: creating one (its id comes back in the START's answer) and
//! waiting for its answer.

use super::*;

impl Interpreter {
    pub(super) fn on_callback(
        &mut self,
        ctx: CtxId,
        name: Option<Cow<'static, str>>,
        timeout_seconds: u32,
        heartbeat_timeout_seconds: u32,
    ) {
        let (op, at) = self.next_op(
            ctx,
            OperationType::Callback,
            SharedStr::from_static(crate::subtype::CALLBACK),
            name,
        );
        let recorded = at.map(|at| self.history.at(at));
        let replay_only = self.contexts[ctx as usize].replay_only;
        // The time-outs are checked only for a new callback (a recorded one
        // replays whatever the code asks now).
        let invalid = || {
            [
                ("timeout", timeout_seconds),
                ("heartbeat timeout", heartbeat_timeout_seconds),
            ]
            .iter()
            .find(|(_, s)| *s > MAX_CALLBACK_TIMEOUT_SECONDS)
            .map(|(what, s)| {
                format!("the {what} is {s} s, over the service's {MAX_CALLBACK_TIMEOUT_SECONDS} s")
            })
        };
        let next = if let Err(e) = self.check(&op, recorded) {
            Next::fail(e)
        } else {
            match recorded {
                // Whatever became of it, its id is the recorded one; its
                // outcome is read when the workflow asks for it.
                Some(_) => {
                    self.replayed += 1;
                    self.callback_id(&op)
                }
                None if replay_only => Next::fail(Self::not_recorded(&op, None)),
                None => match invalid() {
                    Some(reason) => Next::fail(ExecutionError::InvalidConfig {
                        op: op.clone(),
                        reason,
                    }),
                    None => {
                        let mut start = update(&op, OperationAction::Start);
                        start.callback_options = Some(CallbackOptions {
                            timeout_seconds,
                            heartbeat_timeout_seconds,
                        });
                        Next::Checkpoint(
                            vec![start],
                            After::CallbackStarted(ctx, Box::new(op.clone())),
                        )
                    }
                },
            }
        };
        self.set_last(ctx, op);
        self.apply(ctx, next);
    }

    /// The id the service issued for the callback `op`.
    pub(super) fn callback_id(&self, op: &OpRef) -> Next {
        let id = self
            .history
            .get(&op.id)
            .and_then(|o| o.callback_details.as_ref())
            .and_then(|d| d.callback_id.clone())
            .filter(|id| !id.is_empty());
        match id {
            Some(callback_id) => Next::Resume(Response::Callback(Box::new((op.id, callback_id)))),
            None => Next::fail(ExecutionError::InvalidHistory(format!(
                "{op} has no callback id: the service did not issue one"
            ))),
        }
    }

    /// A reference to the recorded operation `id`, for messages (its
    /// position in its context is not known here: 0).
    pub(super) fn recorded_op(&self, id: &OperationId) -> Option<OpRef> {
        let op = self.history.get(id)?;
        Some(OpRef {
            seq: 0,
            id: *id,
            op_type: op.op_type,
            sub_type: op.sub_type.clone(),
            name: op.name.clone(),
            parent: op.parent_id,
        })
    }

    pub(super) fn on_callback_result(&mut self, ctx: CtxId, id: OperationId) {
        let next = match self.history.get(&id) {
            None => Next::fail(ExecutionError::Internal(format!(
                "the result of callback {id} was asked for, but it was never created"
            ))),
            Some(op) => {
                let details = op.callback_details.as_deref();
                match op.status {
                    // The body as the sender sent it; none for an empty one.
                    OperationStatus::Succeeded => Next::Resume(Response::Step(Ok(details
                        .and_then(|d| d.result.clone())
                        .unwrap_or_else(|| Payload::from(""))))),
                    status @ (OperationStatus::Failed
                    | OperationStatus::TimedOut
                    | OperationStatus::Cancelled
                    | OperationStatus::Stopped) => {
                        let error = details.and_then(|d| d.error.as_ref());
                        let error = recorded_error(error, status, "CallbackFailed", "callback");
                        let error = match (status, error.error_type.is_some()) {
                            // The emulator stores a failure sent without an
                            // error as `{}`.
                            (OperationStatus::Failed, false) => ErrorObject {
                                error_type: Some("CallbackFailed".into()),
                                error_message: error
                                    .error_message
                                    .or_else(|| Some("the callback failed".into())),
                                ..error
                            },
                            _ => error,
                        };
                        Next::Resume(Response::Step(Err(Box::new(error))))
                    }
                    OperationStatus::Unknown(name) => {
                        Next::fail(ExecutionError::UnknownOperation {
                            op: OpRef {
                                seq: 0,
                                id,
                                op_type: OperationType::Callback,
                                sub_type: op.sub_type.clone(),
                                name: op.name.clone(),
                                parent: op.parent_id,
                            },
                            what: "status",
                            name: name.to_string(),
                        })
                    }
                    // Waits for someone outside: no timer to resume at.
                    _ => Next::Suspend(None),
                }
            }
        };
        self.apply(ctx, next);
    }
}

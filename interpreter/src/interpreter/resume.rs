//! Resuming a context: the workflow code runs until its next request, which
//! goes to the file of its operation (or ends the context).

use super::*;

impl Interpreter {
    pub(super) fn resume(&mut self, ctx: CtxId, response: Response) {
        if self.dead(ctx) {
            return;
        }
        let c = &mut self.contexts[ctx as usize];
        let replaying = c.recorded_ahead > 0;
        let Some(coroutine) = c.coroutine.as_mut() else {
            return;
        };
        let answered = c.last_op.as_ref().map(|op| op.id);
        let resumed = match (self.context_scope.as_mut(), c.op.as_ref()) {
            (Some(scope), Some(op)) => {
                let mut response = Some(response);
                let mut resumed = None;
                let mut code = || {
                    if let Some(response) = response.take() {
                        running::enter(replaying, answered);
                        resumed = Some(coroutine.resume(response));
                        running::leave();
                    }
                };
                scope(&op.id, &mut code);
                // A scope that did not run the code: it runs here.
                code();
                match resumed {
                    Some(resumed) => resumed,
                    None => return,
                }
            }
            _ => {
                running::enter(replaying, answered);
                let resumed = coroutine.resume(response);
                running::leave();
                resumed
            }
        };
        let last_op = || self.contexts[ctx as usize].last_op.clone();
        match resumed {
            Resumed::Yielded(Request::Step {
                name,
                retry,
                semantics,
                sub_type,
            }) => self.on_step(ctx, name, retry, semantics, sub_type),
            Resumed::Yielded(Request::Run(future)) => {
                let c = &mut self.contexts[ctx as usize];
                match c.step.take_live() {
                    Some(mut live) => {
                        // The step is the context's last operation.
                        let Some(op) = self.live_op(ctx) else {
                            return self.fatal(ExecutionError::Internal(
                                "a step body was sent for a step with no operation reference"
                                    .into(),
                            ));
                        };
                        let context = self.step_context(op, live.attempt);
                        let Ok(seq) = u32::try_from(live.seq) else {
                            return self.fatal(ExecutionError::Internal(
                                "a context holds more operations than a step handle counts".into(),
                            ));
                        };
                        let handle = StepHandle { ctx, seq };
                        let parent_id = op.parent;
                        // `Step`, `WaitForCondition` or the step's own.
                        let sub_type = op.sub_type.clone().unwrap_or_default();
                        // The attempt's START needs no answer: it rides
                        // with the next checkpoint (usually the attempt's
                        // own outcome), or goes out on its own while the
                        // body runs if the driver asks (`send_deferred`).
                        let start = live.send_start.then(|| update(op, OperationAction::Start));
                        if let Some(start) = start {
                            live.send_start = false;
                            self.defer(start);
                        }
                        self.contexts[ctx as usize].step = StepSlot::Running(live);
                        self.in_flight += 1;
                        self.outbox.push_back(Action::RunStep(StepRun {
                            handle,
                            context,
                            parent_id,
                            sub_type,
                            future,
                        }));
                    }
                    None => self.fatal(ExecutionError::Internal(
                        "a step body was sent for no step".into(),
                    )),
                }
            }
            Resumed::Yielded(Request::Wait { name, duration }) => self.on_wait(ctx, name, duration),
            Resumed::Yielded(Request::Child {
                name,
                sub_type,
                wait_for_callback,
                body,
                is_virtual,
            }) => {
                let sub_type = match sub_type {
                    Some(custom) => Err(custom),
                    None if wait_for_callback => Ok(crate::subtype::WAIT_FOR_CALLBACK),
                    None => Ok(crate::subtype::RUN_IN_CHILD_CONTEXT),
                };
                self.on_child(ctx, name, sub_type, body, is_virtual)
            }
            Resumed::Yielded(Request::Batch(request)) => self.on_batch(ctx, *request),
            Resumed::Yielded(Request::Callback {
                name,
                timeout_seconds,
                heartbeat_timeout_seconds,
            }) => self.on_callback(ctx, name, timeout_seconds, heartbeat_timeout_seconds),
            Resumed::Yielded(Request::CallbackResult { op }) => self.on_callback_result(ctx, *op),
            Resumed::Yielded(Request::Invoke(request)) => {
                let InvokeRequest {
                    name,
                    function_name,
                    tenant_id,
                    payload,
                } = *request;
                self.on_invoke(ctx, name, function_name, tenant_id, payload)
            }
            Resumed::Yielded(Request::Condition { name, strategy }) => {
                self.on_condition(ctx, name, strategy)
            }
            Resumed::Yielded(Request::CloseBatch(encoded, summary)) => {
                self.on_close_batch(ctx, encoded, summary)
            }
            Resumed::Yielded(Request::Fatal(fatal)) => match *fatal {
                Fatal::Codec(error) => {
                    let op = last_op();
                    self.fatal(ExecutionError::Codec { op, error })
                }
                Fatal::CodecOf(of) => {
                    let (op, error) = *of;
                    let op = self.recorded_op(&op).or_else(last_op);
                    self.fatal(ExecutionError::Codec { op, error })
                }
                Fatal::Protocol(what) => self.fatal(ExecutionError::Internal(what.to_owned())),
            },
            Resumed::Returned(result) => {
                // A summary is made only of a result too large to
                // checkpoint, by the poll that just returned it: taken now,
                // whatever becomes of it, so that none outlives its context.
                let summary = match &result {
                    Ok(p) if crate::limits::too_large_for_a_context(p.as_str()) => {
                        crate::protocol::pending_summary::take()
                    }
                    _ => None,
                };
                self.on_returned(ctx, result, summary)
            }
            Resumed::ForeignAwait => {
                let last_op = last_op();
                self.fatal(ExecutionError::ForeignAwait { last_op })
            }
            Resumed::Panicked(message) => {
                let last_op = last_op();
                self.fatal(ExecutionError::WorkflowPanicked { message, last_op })
            }
        }
    }
}

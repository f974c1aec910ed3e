//! Steps: replay of a recorded step, a live attempt handed out to run,
//! its outcome checkpointed (success, retry with its delay, failure), and
//! the step context a body gets.

use super::*;

impl Interpreter {
    /// A seed unique to this execution, step and attempt.
    pub(super) fn step_seed(&self, op: &OpRef, attempt: u32) -> u64 {
        self.execution_seed ^ op.id.fingerprint().rotate_left(17) ^ u64::from(attempt)
    }

    /// Reports the outcome of the step body handed out with `handle`. A
    /// later poll checkpoints it: a success, a retry (if the step's
    /// strategy says so) or a failure. The outcome of a body whose context
    /// was abandoned (its batch ended without it) is dropped.
    pub fn step_finished(&mut self, handle: StepHandle, outcome: StepOutcome) {
        let ctx = handle.ctx;
        let live = self
            .contexts
            .get_mut(ctx as usize)
            .and_then(|c| c.step.take_running(handle.seq));
        let Some(live) = live else {
            if !self.dead(ctx) {
                self.misuse("step_finished for a step that is not running");
            }
            return;
        };
        self.in_flight -= 1;
        if self.dead(ctx) {
            return;
        }
        self.executed += 1;
        let mut outcome = outcome;
        if let Err(failure) = &mut outcome {
            if let Some(error) = failure.take_unavailable() {
                // Nothing is recorded: the invocation ends, and the
                // service's next one runs the body again.
                let op = self.live_op(ctx).cloned();
                return self.fatal(ExecutionError::Codec { op, error });
            }
        }
        // The attempt's START was deferred when its body was handed out
        // (`Request::Run`): unless it was sent meanwhile, it leads the
        // outcome's request. Taking the deferred updates here is what
        // `emit` would do, without a second vector.
        let mut updates = std::mem::take(&mut self.deferred);
        // Room for the outcome, exactly (most often the only update).
        updates.reserve_exact(1);
        let next = match self.live_op(ctx) {
            Some(op) => Ok(self.attempt_ended(ctx, &live, op, outcome, updates)),
            None => Err(updates),
        };
        match next {
            Ok(next) => self.apply(ctx, next),
            Err(updates) => {
                self.deferred = updates;
                self.fatal(ExecutionError::Internal(
                    "a running step has no operation reference".into(),
                ));
            }
        }
    }

    /// What follows the outcome of attempt `live` of step `op` (the
    /// context's last operation): its checkpoint after `updates`, and the
    /// answer or suspension after it.
    fn attempt_ended(
        &self,
        ctx: CtxId,
        live: &LiveStep,
        op: &OpRef,
        outcome: StepOutcome,
        mut updates: Vec<OperationUpdate>,
    ) -> Next {
        let outcome = match outcome {
            Ok(payload) if payload.len() > MAX_OPERATION_PAYLOAD => {
                Err(StepFailure::permanent(ErrorObject::new(
                    "PayloadTooLarge",
                    format!(
                        "the result of {op} is {} bytes, over the limit of {MAX_OPERATION_PAYLOAD} \
                         bytes per operation; return a smaller value (e.g. a reference to where \
                         the data is stored)",
                        payload.len()
                    ),
                )))
            }
            other => other,
        };
        if let Some((strategy, done)) = &live.condition {
            return self.checked(ctx, live.attempt, op, strategy, done, outcome, updates);
        }
        match outcome {
            Ok(payload) => {
                let mut u = update(op, OperationAction::Succeed);
                u.payload = Some(payload.clone());
                updates.push(u);
                Next::Checkpoint(updates, After::Resume(ctx, Response::Step(Ok(payload))))
            }
            Err(failure) => {
                let (error, source, retryable) = failure.into_parts();
                // What is recorded is what the workflow sees, now and on
                // every replay: cut to the service's limits first.
                let error = error.truncated();
                if retryable {
                    let retry = live.retry.as_ref();
                    self.failed_attempt(ctx, op, live.attempt, retry, error, source, updates)
                } else {
                    // The SDK's own failures of a result (too large, not
                    // encodable) would fail every attempt the same way.
                    let mut u = update(op, OperationAction::Fail);
                    u.error = Some(Box::new(error.clone()));
                    updates.push(u);
                    Next::Checkpoint(
                        updates,
                        After::Resume(ctx, Response::Step(Err(Box::new(error)))),
                    )
                }
            }
        }
    }

    /// A condition check ended: its new state is checkpointed with a
    /// SUCCEED when the condition is met, else with a RETRY (the wait
    /// strategy's delay, the state as the payload, no error) or, when the
    /// strategy gives up, a FAIL. A check that failed fails the operation
    /// (no retry: the wait strategy is for unmet conditions).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn checked(
        &self,
        ctx: CtxId,
        attempt: u32,
        op: &OpRef,
        strategy: &Arc<dyn RetryStrategy>,
        done: &AtomicBool,
        outcome: StepOutcome,
        mut updates: Vec<OperationUpdate>,
    ) -> Next {
        let fail = |error: ErrorObject, mut updates: Vec<OperationUpdate>| {
            let error = error.truncated();
            let mut u = update(op, OperationAction::Fail);
            u.error = Some(Box::new(error.clone()));
            updates.push(u);
            Next::Checkpoint(
                updates,
                After::Resume(ctx, Response::Step(Err(Box::new(error)))),
            )
        };
        let state = match outcome {
            Ok(state) => state,
            Err(failure) => return fail(failure.into_parts().0, updates),
        };
        if done.load(Ordering::Acquire) {
            let mut u = update(op, OperationAction::Succeed);
            u.payload = Some(state.clone());
            updates.push(u);
            return Next::Checkpoint(updates, After::Resume(ctx, Response::Step(Ok(state))));
        }
        let not_met = ErrorObject::new(
            "ConditionNotMet",
            format!("check {} of {op} found the condition not met", attempt),
        );
        let random = unit_random(self.step_seed(op, attempt));
        match strategy.next_delay(&FailedAttempt::new(&not_met, attempt, random)) {
            Some(delay) => {
                let mut u = update(op, OperationAction::Retry);
                u.step_options = Some(StepOptions {
                    next_attempt_delay_seconds: Some(whole_seconds(delay)),
                });
                u.payload = Some(state);
                updates.push(u);
                Next::Checkpoint(updates, After::Retried(ctx, op.id))
            }
            None => fail(
                ErrorObject::new(
                    "WaitForConditionExhausted",
                    format!(
                        "{op} checked the condition {} times without it being met, as many as \
                         its wait strategy allows",
                        attempt
                    ),
                ),
                updates,
            ),
        }
    }

    /// A failed attempt: asks the step's retry strategy, and checkpoints a
    /// RETRY (then suspends) or a FAIL (then resumes with the error).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn failed_attempt(
        &self,
        ctx: CtxId,
        op: &OpRef,
        attempt: u32,
        retry: Option<&Arc<dyn RetryStrategy>>,
        error: ErrorObject,
        source: Option<BoxError>,
        mut updates: Vec<OperationUpdate>,
    ) -> Next {
        // Jitter differs per execution, step and attempt, and is the same
        // for the same ones (it does not use the invocation's entropy).
        let mut failed =
            FailedAttempt::new(&error, attempt, unit_random(self.step_seed(op, attempt)));
        if let Some(source) = source.as_deref() {
            failed = failed.with_source(source);
        }
        let delay = match retry {
            Some(strategy) => strategy.next_delay(&failed),
            None => ExponentialBackoff::default().next_delay(&failed),
        };
        match delay {
            Some(delay) => {
                let mut u = update(op, OperationAction::Retry);
                u.step_options = Some(StepOptions {
                    next_attempt_delay_seconds: Some(whole_seconds(delay)),
                });
                u.error = Some(Box::new(error));
                updates.push(u);
                Next::Checkpoint(updates, After::Retried(ctx, op.id))
            }
            None => {
                let mut u = update(op, OperationAction::Fail);
                u.error = Some(Box::new(error.clone()));
                updates.push(u);
                Next::Checkpoint(
                    updates,
                    After::Resume(ctx, Response::Step(Err(Box::new(error)))),
                )
            }
        }
    }

    pub(super) fn step_context(&self, op: &OpRef, attempt: u32) -> StepContext {
        StepContext {
            id: op.id,
            name: op.name.clone(),
            attempt,
            execution_arn: self.execution_arn.clone(),
            now: self.now,
            seed: [
                self.entropy[0],
                self.entropy[1] ^ self.step_seed(op, attempt),
            ],
        }
    }

    pub(super) fn on_step(
        &mut self,
        ctx: CtxId,
        name: Option<Cow<'static, str>>,
        retry: Option<Arc<dyn RetryStrategy>>,
        semantics: StepSemantics,
        sub_type: Option<Arc<str>>,
    ) {
        let (sub_type, custom) = match sub_type {
            None => (SharedStr::from_static(crate::subtype::STEP), false),
            Some(custom) => (SharedStr::from(custom), true),
        };
        let at = self.next_op_in_place(ctx, OperationType::Step, sub_type, name);
        let Some(op) = self.contexts[ctx as usize].last_op.as_ref() else {
            return self.fatal(ExecutionError::Internal(
                "a step has no operation reference".into(),
            ));
        };
        // A custom subtype the service would reject: nothing is recorded.
        if custom {
            let invalid = op
                .sub_type
                .as_deref()
                .and_then(crate::subtype::invalid_custom);
            if let Some(reason) = invalid {
                let op = op.clone();
                return self.fatal(ExecutionError::InvalidConfig { op, reason });
            }
        }
        let at_most_once = semantics == StepSemantics::AtMostOncePerRetry;
        let recorded = at.map(|at| self.history.at(at));
        let replay_only = self.contexts[ctx as usize].replay_only;
        let next = if let Err(e) = self.check(op, recorded) {
            Next::fail(e)
        } else {
            match recorded {
                Some(r) if replay_only && !r.status.is_terminal() => {
                    Next::fail(Self::not_recorded(op, Some(r)))
                }
                None if replay_only => Next::fail(Self::not_recorded(op, None)),
                None => {
                    let op = op.clone();
                    self.execute(ctx, &op, 1, retry, at_most_once, true)
                }
                Some(recorded) => {
                    let details = recorded.step_details.as_deref();
                    let attempts = details.and_then(|d| d.attempt).unwrap_or(0);
                    let next = attempts.saturating_add(1);
                    match recorded.status {
                        OperationStatus::Succeeded => {
                            let payload = details
                                .and_then(|d| d.result.clone())
                                .unwrap_or_else(|| Payload::from("null"));
                            self.replayed += 1;
                            Next::Resume(Response::Step(Ok(payload)))
                        }
                        status @ (OperationStatus::Failed
                        | OperationStatus::Cancelled
                        | OperationStatus::TimedOut
                        | OperationStatus::Stopped) => {
                            let error = details.and_then(|d| d.error.as_ref());
                            self.replayed += 1;
                            let error = recorded_error(error, status, "StepFailed", "step");
                            Next::Resume(Response::Step(Err(Box::new(error))))
                        }
                        // An at-most-once attempt was interrupted: it counts
                        // as failed and never runs again silently.
                        OperationStatus::Started if at_most_once => {
                            let error = ErrorObject::new(
                                "StepInterrupted",
                                format!(
                                    "attempt {next} of {op} was started (its START was \
                                     recorded) but no outcome was recorded: the body may have \
                                     run in full, in part or not at all, so at-most-once \
                                     semantics count the attempt as failed"
                                ),
                            );
                            let retry = retry.as_ref();
                            self.failed_attempt(ctx, op, next, retry, error, None, Vec::new())
                        }
                        // An at-least-once attempt was interrupted: run it
                        // again, without a new START.
                        OperationStatus::Started => {
                            let op = op.clone();
                            self.execute(ctx, &op, next, retry, false, false)
                        }
                        OperationStatus::Ready => {
                            let op = op.clone();
                            self.execute(ctx, &op, next, retry, at_most_once, true)
                        }
                        OperationStatus::Pending => {
                            Next::Suspend(details.and_then(|d| d.next_attempt_timestamp))
                        }
                        OperationStatus::Unknown(name) => Next::fail(unknown_status(op, name)),
                    }
                }
            }
        };
        self.apply(ctx, next);
    }

    /// Prepares a live attempt of the step `op`. At most once: START first,
    /// acknowledged, then the body. At least once: START (if `send_start`)
    /// is deferred when the body is handed out, so that it travels with the
    /// outcome of a fast body, or alone while a slow one runs.
    pub(super) fn execute(
        &mut self,
        ctx: CtxId,
        op: &OpRef,
        attempt: u32,
        retry: Option<Arc<dyn RetryStrategy>>,
        at_most_once: bool,
        send_start: bool,
    ) -> Next {
        let live = LiveStep {
            seq: op.seq,
            attempt,
            send_start: send_start && !at_most_once,
            retry,
            condition: None,
        };
        if at_most_once && send_start {
            return Next::Checkpoint(
                vec![update(op, OperationAction::Start)],
                After::Started(ctx, Box::new(live)),
            );
        }
        let context = self.step_context(op, attempt);
        self.contexts[ctx as usize].step.set_live(live);
        Next::Resume(Response::Execute(Box::new(context)))
    }
}

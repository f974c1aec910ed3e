//! Child contexts: spawning a context (recorded or virtual), replaying a
//! finished one from its result or its children, closing it with its
//! result, and the workflow's own return.

use super::*;

impl Interpreter {
    /// Starts a context running `body` for the CONTEXT operation `op`.
    pub(super) fn spawn(
        &mut self,
        op: OpRef,
        owner: Owner,
        body: ContextBody,
        replay_only: bool,
    ) -> CtxId {
        let recorded_ahead = self.recorded(Some(op.id));
        let ids = IdGenerator::child(op.id);
        let ctx = self.spawn_with(op, owner, body, replay_only, ids);
        self.contexts[ctx as usize].recorded_ahead = recorded_ahead;
        ctx
    }

    pub(super) fn spawn_with(
        &mut self,
        op: OpRef,
        owner: Owner,
        body: ContextBody,
        replay_only: bool,
        ids: IdGenerator,
    ) -> CtxId {
        let parent = self.parent_of(owner);
        let inherited = parent.is_some_and(|p| self.contexts[p as usize].replay_only);
        let abandoned = parent.is_some_and(|p| self.contexts[p as usize].abandoned);
        let arn = self.execution_arn.clone();
        let context_op = Some(op.id);
        let coroutine =
            Coroutine::new(move |yielder| body(Workflow::new(yielder, arn, context_op)));
        let mut ctx = Ctx::new(coroutine, ids, owner);
        if let Some(observer) = self.observer.as_deref_mut() {
            let replayed = self.history.get(&op.id).is_some();
            observer.function_started(&op, replay_only, replayed);
            ctx.function_open = true;
            self.announce = true;
        }
        ctx.op = Some(op);
        ctx.replay_only = replay_only || inherited;
        ctx.abandoned = abandoned;
        let id = match self.free.pop() {
            Some(id) => {
                self.contexts[id as usize] = ctx;
                id
            }
            None => {
                self.contexts.push(ctx);
                (self.contexts.len() - 1) as CtxId
            }
        };
        if let Some(parent) = parent {
            self.contexts[parent as usize].children.push(id);
        }
        self.ready.push_back((id, Response::Start));
        id
    }

    /// Starts a virtual context (no CONTEXT operation) running `body` for
    /// `op`: its operations are hashed under `op`'s id and recorded as
    /// children of `parent`.
    pub(super) fn spawn_virtual(
        &mut self,
        op: OpRef,
        parent: Option<OperationId>,
        owner: Owner,
        body: ContextBody,
        replay_only: bool,
    ) -> CtxId {
        // Its operations are recorded under `parent`: when the history
        // this invocation started from holds nothing there, none of them is
        // recorded and looking ahead (hashing the next id) is skipped.
        let peeks = self.recorded(parent) > 0;
        let ids = IdGenerator::virtual_child(op.id, parent);
        let ahead = peeks && self.history.position(&ids.peek_id()).is_some();
        let ctx = self.spawn_with(op, owner, body, replay_only, ids);
        let c = &mut self.contexts[ctx as usize];
        c.is_virtual = true;
        c.peeks = peeks;
        c.recorded_ahead = u32::from(ahead);
        ctx
    }

    /// Abandons a context and everything it started: nothing more of them
    /// runs or is recorded.
    pub(super) fn abandon(&mut self, ctx: CtxId) {
        let mut stack = vec![ctx];
        while let Some(id) = stack.pop() {
            let children = std::mem::take(&mut self.contexts[id as usize].children);
            // A child's slot may have been released and taken by another
            // context since: only those that name `id` are its children.
            stack.extend(
                children.into_iter().filter(|&child| {
                    self.parent_of(self.contexts[child as usize].owner) == Some(id)
                }),
            );
            let c = &mut self.contexts[id as usize];
            if std::mem::take(&mut c.function_open) {
                if let (Some(observer), Some(op)) = (self.observer.as_deref_mut(), &c.op) {
                    observer.function_ended(op, FunctionOutcome::Incomplete, None);
                }
            }
            c.abandoned = true;
            c.coroutine = None;
            c.suspended = None;
            if let StepSlot::Running(_) = std::mem::replace(&mut c.step, StepSlot::Idle) {
                self.in_flight -= 1;
            }
        }
    }

    /// The context that started a context with this owner (none at the
    /// root): a slot listed among a context's `children` is its child only
    /// if its owner leads back to it (the slot may have been reused since).
    pub(super) fn parent_of(&self, owner: Owner) -> Option<CtxId> {
        match owner {
            Owner::Root => None,
            Owner::Child(parent) => Some(parent),
            Owner::Branch { batch, .. } => self.batches.get(batch).map(|b| b.owner),
        }
    }

    /// Context `ctx` has returned and nothing refers to it any more (its
    /// result went to whoever waited, or its batch counted it): its slot
    /// is free for the next context. A context that was abandoned is never
    /// released: a body of it may still be out, and its handle names it.
    pub(super) fn release(&mut self, ctx: CtxId) {
        let Some(c) = self.contexts.get_mut(ctx as usize) else {
            return;
        };
        if ctx == 0 || c.abandoned || c.coroutine.is_some() || !matches!(c.step, StepSlot::Idle) {
            return;
        }
        // What it holds is dropped now, not when the slot is taken.
        c.op = None;
        c.last_op = None;
        c.children = Vec::new();
        self.free.push(ctx);
    }

    pub(super) fn on_child(
        &mut self,
        ctx: CtxId,
        name: Option<Cow<'static, str>>,
        sub_type: Result<&'static str, Arc<str>>,
        body: ContextBody,
        is_virtual: bool,
    ) {
        // The SDK's own (`Ok`), or the code's, checked (`Err`).
        let (sub_type, invalid) = match sub_type {
            Ok(sdk) => (SharedStr::from_static(sdk), None),
            Err(custom) => {
                let invalid = crate::subtype::invalid_custom(&custom);
                (SharedStr::from(custom), invalid)
            }
        };
        let (op, at) = self.next_op(ctx, OperationType::Context, sub_type, name);
        self.set_last(ctx, op.clone());
        if let Some(reason) = invalid {
            return self.fatal(ExecutionError::InvalidConfig { op, reason });
        }
        let recorded = at.map(|at| self.history.at(at));
        if is_virtual {
            // Never recorded: a record at its id was written by other code.
            if let Some(recorded) = recorded {
                return self.fatal(Self::not_virtual(&op, recorded));
            }
            if let Err(e) = self.check(&op, None) {
                return self.fatal(e);
            }
            let parent = self.contexts[ctx as usize].ids.parent().copied();
            let replay_only = self.contexts[ctx as usize].replay_only;
            self.spawn_virtual(op, parent, Owner::Child(ctx), body, replay_only);
            return;
        }
        let replay_only = self.contexts[ctx as usize].replay_only;
        if let Err(e) = self.check(&op, recorded) {
            return self.fatal(e);
        }
        let Some(recorded) = recorded else {
            if replay_only {
                return self.fatal(Self::not_recorded(&op, None));
            }
            self.defer(update(&op, OperationAction::Start));
            self.spawn(op, Owner::Child(ctx), body, false);
            return;
        };
        let details = recorded.context_details.as_deref();
        match recorded.status {
            OperationStatus::Succeeded if details.and_then(|d| d.replay_children) == Some(true) => {
                self.spawn(op, Owner::Child(ctx), body, true);
            }
            OperationStatus::Succeeded => {
                let payload = details
                    .and_then(|d| d.result.clone())
                    .unwrap_or_else(|| Payload::from("null"));
                self.replayed += 1;
                self.ready.push_back((ctx, Response::Step(Ok(payload))));
            }
            OperationStatus::Failed => {
                let error = details.and_then(|d| d.error.clone()).unwrap_or_else(|| {
                    ErrorObject::new("ChildContextFailed", "the child context failed")
                });
                self.replayed += 1;
                self.ready
                    .push_back((ctx, Response::Step(Err(Box::new(error)))));
            }
            OperationStatus::Started if replay_only => {
                self.fatal(Self::not_recorded(&op, Some(recorded)))
            }
            OperationStatus::Started => {
                self.spawn(op, Owner::Child(ctx), body, false);
            }
            OperationStatus::Unknown(name) => self.fatal(unknown_status(&op, name)),
            status => self.fatal(ExecutionError::UnexpectedStatus { op, status }),
        }
    }

    /// The updates that close the CONTEXT `op` with `result`, and what the
    /// waiting side is told (the full result, even when it is too large to
    /// checkpoint).
    pub(super) fn close_context(
        op: &OpRef,
        result: RecordedOutcome,
        summary: Option<String>,
    ) -> (OperationUpdate, RecordedOutcome) {
        match result {
            Ok(payload) => {
                let mut u = update(op, OperationAction::Succeed);
                let too_large = crate::limits::too_large_for_a_context(payload.as_str());
                // Too large: the code's summary of it, or nothing.
                u.payload = Some(if too_large {
                    Payload::from(summary.unwrap_or_default())
                } else {
                    payload.clone()
                });
                u.context_options = Some(ContextOptions {
                    replay_children: Some(too_large),
                });
                (u, Ok(payload))
            }
            Err(error) => {
                let error = Box::new(error.truncated());
                let mut u = update(op, OperationAction::Fail);
                u.error = Some(error.clone());
                (u, Err(error))
            }
        }
    }

    pub(super) fn on_returned(
        &mut self,
        ctx: CtxId,
        result: WorkflowResult,
        summary: Option<String>,
    ) {
        let result = match result {
            Ok(payload) => Ok(payload),
            Err(Ended::Failed(error)) => Err(error),
            // Nothing is recorded: the invocation ends (AWS's SDKs let a
            // retryable serdes error escape a batch too).
            Err(Ended::Unavailable(error)) => {
                let op = self.contexts[ctx as usize].op.clone();
                return self.fatal(ExecutionError::Codec { op, error: *error });
            }
        };
        let c = &mut self.contexts[ctx as usize];
        c.coroutine = None;
        let replay_only = c.replay_only;
        let is_virtual = c.is_virtual;
        let owner = c.owner;
        let function_open = std::mem::take(&mut c.function_open);
        // A virtual context records nothing: its value (or error) goes
        // straight to whoever waits, as a replay will compute it again.
        let result = if is_virtual {
            result.map_err(|e| Box::new(e.truncated()))
        } else {
            result
        };
        if let (Some(observer), Some(op)) = (self.observer.as_deref_mut(), &c.op) {
            let (outcome, status, error) = match &result {
                Ok(_) => (FunctionOutcome::Succeeded, OperationStatus::Succeeded, None),
                Err(e) => (
                    FunctionOutcome::Failed,
                    OperationStatus::Failed,
                    Some(e.clone()),
                ),
            };
            if function_open {
                observer.function_ended(op, outcome, error.clone());
            }
            if is_virtual {
                observer.closed(&op.id, status, error);
            }
        }
        if is_virtual {
            match owner {
                Owner::Child(parent) => {
                    self.ready.push_back((parent, Response::Step(result)));
                    self.release(ctx);
                }
                // The batch releases it when it counts it.
                Owner::Branch { batch, index } => self.branch_done(batch, index, result),
                Owner::Root => {}
            }
            return;
        }
        // The context is over: its operation is taken, not copied.
        let op = c.op.take();
        match (owner, op) {
            (Owner::Root, _) => {
                let outcome = match result {
                    Ok(payload) => Outcome::Succeeded(payload),
                    Err(error) => Outcome::Failed(error.truncated()),
                };
                self.ending = Some(Ending::Outcome(outcome));
            }
            (Owner::Child(parent), _) if replay_only => {
                self.ready.push_back((parent, Response::Step(result)));
                self.release(ctx);
            }
            (Owner::Branch { batch, index }, _) if replay_only => {
                self.branch_done(batch, index, result)
            }
            (Owner::Child(parent), Some(op)) => {
                let (u, outcome) = Self::close_context(&op, result, summary);
                let after = After::Resume(parent, Response::Step(outcome));
                self.emit(vec![u], after, false);
                self.release(ctx);
            }
            (Owner::Branch { batch, index }, Some(op)) => {
                let (u, outcome) = Self::close_context(&op, result, summary);
                let after = After::BranchClosed {
                    batch,
                    index,
                    outcome,
                };
                self.emit(vec![u], after, false);
            }
            (_, None) => self.fatal(ExecutionError::Internal(
                "a child context has no operation".into(),
            )),
        }
    }
}

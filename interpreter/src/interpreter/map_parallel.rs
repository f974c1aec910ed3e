//! Map and parallel: admitting branches up to the concurrency limit,
//! starting each (recorded or virtual), counting outcomes against the
//! completion policy, and closing the batch with its result.

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::*;
use crate::coroutine::panic_message;

impl Interpreter {
    pub(super) fn on_batch(&mut self, ctx: CtxId, request: BatchRequest) {
        let BatchRequest {
            kind,
            name,
            names,
            bodies,
            max_concurrency,
            window,
            completion,
            nesting,
        } = request;
        let (op, at) = self.next_op(
            ctx,
            OperationType::Context,
            SharedStr::from_static(kind.sub_type()),
            name,
        );
        self.set_last(ctx, op.clone());
        let recorded = at.map(|at| self.history.at(at));
        let replay_only = self.contexts[ctx as usize].replay_only;
        if let Err(e) = self.check(&op, recorded) {
            return self.fatal(e);
        }
        let invalid = if max_concurrency == Some(0) {
            Some("max_concurrency must be at least 1".to_owned())
        } else {
            completion.invalid()
        };
        if let Some(reason) = invalid {
            return self.fatal(ExecutionError::InvalidConfig { op, reason });
        }
        let mut rebuild = None;
        match recorded {
            None if replay_only => return self.fatal(Self::not_recorded(&op, None)),
            None => self.defer(update(&op, OperationAction::Start)),
            Some(recorded) => {
                let details = recorded.context_details.as_deref();
                match recorded.status {
                    OperationStatus::Succeeded
                        if details.and_then(|d| d.replay_children) == Some(true) =>
                    {
                        let summary = details
                            .and_then(|d| d.result.as_ref())
                            .and_then(|p| serde_json::from_str::<BatchSummary>(p.as_str()).ok());
                        let parsed = summary.and_then(|s| {
                            let reason = CompletionReason::parse(&s.completion_reason)?;
                            let started = s.started()?;
                            Some(Rebuild {
                                reason,
                                total: s.total_count,
                                started,
                            })
                        });
                        match parsed {
                            Some(r) => rebuild = Some(r),
                            None => {
                                return self.fatal(ExecutionError::InvalidHistory(format!(
                                    "{op} is recorded with ReplayChildren but its summary \
                                     cannot be read"
                                )));
                            }
                        }
                    }
                    OperationStatus::Succeeded => {
                        let payload = details
                            .and_then(|d| d.result.clone())
                            .unwrap_or_else(|| Payload::from("null"));
                        self.replayed += 1;
                        let reply = BatchReply::Recorded(payload);
                        return self.ready.push_back((ctx, Response::Batch(reply)));
                    }
                    OperationStatus::Failed => {
                        let error = details.and_then(|d| d.error.clone()).unwrap_or_else(|| {
                            ErrorObject::new("BatchFailed", "the batch operation failed")
                        });
                        self.replayed += 1;
                        let reply = BatchReply::Failed(Box::new(error));
                        return self.ready.push_back((ctx, Response::Batch(reply)));
                    }
                    OperationStatus::Started if replay_only => {
                        return self.fatal(Self::not_recorded(&op, Some(recorded)));
                    }
                    OperationStatus::Started => {}
                    OperationStatus::Unknown(name) => {
                        return self.fatal(unknown_status(&op, name));
                    }
                    status => return self.fatal(ExecutionError::UnexpectedStatus { op, status }),
                }
            }
        }
        let n = names.len();
        // Without a `max_concurrency`, the window (at least 1 branch).
        let window = if max_concurrency.is_none() {
            window.max(1)
        } else {
            0
        };
        let limit = max_concurrency.unwrap_or(window);
        // Finished branches leave their slots to the next ones.
        self.contexts.reserve(n.min(limit));
        if at.is_none() {
            // A new batch: the STARTs of the branches it admits at once
            // are deferred together (one allocation, not one per doubling).
            self.deferred.reserve(n.min(limit));
        }
        let names: Vec<Option<SharedStr>> = names
            .into_iter()
            .map(|name| name.map(SharedStr::from))
            .collect();
        // Only a predicate reads them: the names are shared, not copied.
        let statuses = if completion.has_predicate() {
            names
                .iter()
                .enumerate()
                .map(|(i, name)| CompletionItem::new(i, name.clone()))
                .collect()
        } else {
            Vec::new()
        };
        self.batches.push(Batch {
            owner: ctx,
            op,
            kind,
            names,
            bodies,
            branches: (0..n).map(|_| Branch::NotStarted).collect(),
            next: 0,
            active: 0,
            succeeded: 0,
            failed: 0,
            max_concurrency: limit,
            window,
            policy: completion,
            statuses,
            rebuild,
            done: false,
            summary: None,
            nesting,
        });
        self.admit(self.batches.len() - 1);
    }

    /// Starts branches in index order while the batch's concurrency allows,
    /// and ends the batch when its policy says so.
    pub(super) fn admit(&mut self, b: usize) {
        loop {
            let batch = &self.batches[b];
            // A batch inside an abandoned branch starts nothing more.
            if batch.done || self.ending.is_some() || self.dead(batch.owner) {
                return;
            }
            let total = batch.branches.len();
            let (limit, admissible, reason) = match &batch.rebuild {
                Some(r) => {
                    let admissible = r.total.min(total);
                    let over = batch.next >= admissible && batch.active == 0;
                    (usize::MAX, admissible, over.then_some(r.reason))
                }
                None if batch.policy.has_predicate() => {
                    // The code's predicate: a panic in it is one in
                    // workflow code.
                    let asked = catch_unwind(AssertUnwindSafe(|| {
                        let b = batch;
                        b.policy.evaluate(total, b.succeeded, b.failed, &b.statuses)
                    }));
                    match asked {
                        Ok(reason) => (batch.max_concurrency, total, reason),
                        Err(panic) => {
                            let error = ExecutionError::WorkflowPanicked {
                                message: format!(
                                    "in the completion predicate: {}",
                                    panic_message(&*panic)
                                ),
                                last_op: Some(batch.op.clone()),
                            };
                            return self.fatal(error);
                        }
                    }
                }
                None => (
                    batch.max_concurrency,
                    total,
                    batch
                        .policy
                        .evaluate(total, batch.succeeded, batch.failed, &[]),
                ),
            };
            if let Some(reason) = reason {
                return self.finish_batch(b, reason);
            }
            if batch.next >= admissible || batch.active >= limit {
                return;
            }
            let index = batch.next;
            self.batches[b].next += 1;
            self.start_branch(b, index);
            self.note_status(b, index);
        }
    }

    /// Keeps branch `index`'s status for the batch's completion predicate
    /// (if it has one) as the branch now stands.
    #[inline]
    fn note_status(&mut self, b: usize, index: usize) {
        let Some(batch) = self.batches.get_mut(b).filter(|x| !x.statuses.is_empty()) else {
            return;
        };
        let (Some(item), Some(branch)) = (batch.statuses.get_mut(index), batch.branches.get(index))
        else {
            return;
        };
        item.set_status(match branch {
            Branch::NotStarted => None,
            Branch::Active(_) | Branch::Started => Some(BatchItemStatus::Started),
            Branch::Done(Ok(_)) => Some(BatchItemStatus::Succeeded),
            Branch::Done(Err(_)) => Some(BatchItemStatus::Failed),
        });
    }

    /// Nothing can go on: every batch whose window holds branches back
    /// (its active ones all wait) widens it and starts more. Whether any
    /// did.
    pub(super) fn widen_windows(&mut self) -> bool {
        let mut widened = false;
        for b in 0..self.batches.len() {
            let batch = &mut self.batches[b];
            let held_back = batch.window > 0
                && !batch.done
                && batch.rebuild.is_none()
                && batch.next < batch.branches.len()
                && batch.active >= batch.max_concurrency;
            if held_back {
                batch.max_concurrency = batch.max_concurrency.saturating_add(batch.window);
                let next = batch.next;
                self.admit(b);
                widened |= self
                    .batches
                    .get(b)
                    .is_some_and(|x| x.next != next || x.done);
            }
        }
        widened
    }

    pub(super) fn start_branch(&mut self, b: usize, index: usize) {
        let batch = &mut self.batches[b];
        let parent = batch.op.id;
        let id = IdGenerator::branch(&parent, index as u64);
        // A nested branch's record, looked up once.
        let at = (batch.nesting == Nesting::Nested)
            .then(|| self.history.position(&id))
            .flatten();
        // Each name is used once: taken, not copied. A default name the
        // record holds is shared with it (when a map replays, one
        // allocation less per branch); otherwise it is written anew.
        let name = batch.names[index]
            .take()
            .or_else(|| {
                let recorded = self.history.at(at?).name.as_ref()?;
                batch
                    .kind
                    .is_default_branch_name(recorded.as_bytes(), index)
                    .then(|| recorded.clone())
            })
            .unwrap_or_else(|| batch.kind.default_branch_name(index));
        let op = OpRef {
            seq: index as u64,
            id,
            op_type: OperationType::Context,
            sub_type: Some(SharedStr::from_static(batch.kind.branch_sub_type())),
            name: Some(name),
            parent: Some(parent),
        };
        let body = batch.bodies.take(index);
        let started_earlier = batch
            .rebuild
            .as_ref()
            .map(|r| r.started.binary_search(&index).is_ok());
        let owner_ctx = batch.owner;
        if batch.nesting == Nesting::Flat {
            return self.start_flat_branch(b, index, op, body, started_earlier);
        }
        let recorded = at.map(|at| self.history.at(at));
        if let Err(e) = self.check(&op, recorded) {
            return self.fatal(e);
        }
        if let Some(observer) = self.observer.as_deref_mut() {
            observer.reached(&op, recorded);
        }
        let owner = Owner::Branch { batch: b, index };
        let replay_only = self.contexts[owner_ctx as usize].replay_only;
        let Some(body) = body else {
            return self.fatal(ExecutionError::Internal("a branch started twice".into()));
        };
        match started_earlier {
            // Recorded as started and abandoned: nothing to rebuild.
            Some(true) => {
                self.batches[b].branches[index] = Branch::Started;
                return;
            }
            // Recorded as finished: it must have finished.
            Some(false) if !recorded.is_some_and(|r| r.status.is_terminal()) => {
                return self.fatal(Self::not_recorded(&op, recorded));
            }
            _ => {}
        }
        let recorded_outcome = match recorded {
            None if replay_only => return self.fatal(Self::not_recorded(&op, None)),
            None => {
                self.defer(update(&op, OperationAction::Start));
                None
            }
            Some(r) => {
                let details = r.context_details.as_deref();
                match r.status {
                    OperationStatus::Succeeded
                        if details.and_then(|d| d.replay_children) == Some(true) =>
                    {
                        let ctx = self.spawn(op, owner, body, true);
                        self.batches[b].branches[index] = Branch::Active(ctx);
                        self.batches[b].active += 1;
                        return;
                    }
                    OperationStatus::Succeeded => Some(Ok(details
                        .and_then(|d| d.result.clone())
                        .unwrap_or_else(|| Payload::from("null")))),
                    OperationStatus::Failed => Some(Err(Box::new(
                        details.and_then(|d| d.error.clone()).unwrap_or_else(|| {
                            ErrorObject::new("BranchFailed", "the branch failed")
                        }),
                    ))),
                    OperationStatus::Started if replay_only => {
                        return self.fatal(Self::not_recorded(&op, Some(r)));
                    }
                    OperationStatus::Started => None,
                    OperationStatus::Unknown(name) => return self.fatal(unknown_status(&op, name)),
                    status => return self.fatal(ExecutionError::UnexpectedStatus { op, status }),
                }
            }
        };
        match recorded_outcome {
            // Finished in an earlier invocation: counted here, and the loop
            // in `admit` goes on (no recursion, however many there are).
            Some(outcome) => {
                self.replayed += 1;
                let batch = &mut self.batches[b];
                match outcome {
                    Ok(_) => batch.succeeded += 1,
                    Err(_) => batch.failed += 1,
                }
                batch.branches[index] = Branch::Done(outcome);
            }
            None => {
                let ctx = self.spawn(op, owner, body, false);
                let batch = &mut self.batches[b];
                batch.branches[index] = Branch::Active(ctx);
                batch.active += 1;
            }
        }
    }

    /// Starts branch `index` of a flat batch: a virtual context whose
    /// operations are recorded as children of the batch operation. It
    /// records nothing of its own, so it always runs (its operations
    /// replay from their records), also to rebuild a result too large to
    /// have been checkpointed; only a branch recorded as abandoned
    /// (started, unfinished) is not run again.
    pub(super) fn start_flat_branch(
        &mut self,
        b: usize,
        index: usize,
        op: OpRef,
        body: Option<ContextBody>,
        started_earlier: Option<bool>,
    ) {
        if let Some(recorded) = self.history.get(&op.id) {
            return self.fatal(Self::not_virtual(&op, recorded));
        }
        if let Err(e) = self.check(&op, None) {
            return self.fatal(e);
        }
        let Some(body) = body else {
            return self.fatal(ExecutionError::Internal("a branch started twice".into()));
        };
        if started_earlier == Some(true) {
            self.batches[b].branches[index] = Branch::Started;
            return;
        }
        if let Some(observer) = self.observer.as_deref_mut() {
            observer.reached(&op, None);
        }
        let batch = &self.batches[b];
        let parent = Some(batch.op.id);
        let replay_only =
            started_earlier.is_some() || self.contexts[batch.owner as usize].replay_only;
        let owner = Owner::Branch { batch: b, index };
        let ctx = self.spawn_virtual(op, parent, owner, body, replay_only);
        let batch = &mut self.batches[b];
        batch.branches[index] = Branch::Active(ctx);
        batch.active += 1;
    }

    /// A branch ended (its end recorded, or replayed).
    pub(super) fn branch_done(&mut self, b: usize, index: usize, outcome: RecordedOutcome) {
        let Some(batch) = self.batches.get_mut(b) else {
            return;
        };
        if batch.done || !matches!(batch.branches[index], Branch::Active(_)) {
            return; // abandoned: the batch ended without it
        }
        let owner = batch.owner;
        if self.dead(owner) {
            return; // the batch itself is in an abandoned branch
        }
        let batch = &mut self.batches[b];
        batch.active -= 1;
        match outcome {
            Ok(_) => batch.succeeded += 1,
            Err(_) => batch.failed += 1,
        }
        let branch = std::mem::replace(&mut batch.branches[index], Branch::Done(outcome));
        // Until now the batch could have abandoned it by its id.
        if let Branch::Active(ctx) = branch {
            self.release(ctx);
        }
        self.note_status(b, index);
        self.admit(b);
    }

    pub(super) fn finish_batch(&mut self, b: usize, reason: CompletionReason) {
        let batch = &mut self.batches[b];
        batch.done = true;
        batch.bodies = Bodies::Built(Vec::new());
        batch.names = Vec::new();
        batch.statuses = Vec::new();
        let branches = std::mem::take(&mut batch.branches);
        let rebuilding = batch.rebuild.is_some();
        let (owner, kind, admitted) = (batch.owner, batch.kind, batch.next);
        let mut items = Vec::with_capacity(branches.len());
        let (mut started, mut completed) = (Vec::new(), Vec::new());
        let (mut succeeded, mut failed) = (0, 0);
        for (index, branch) in branches.into_iter().enumerate() {
            let item = match branch {
                // Branches start in index order: the rest never started
                // either. Like AWS's SDKs, the result holds the branches
                // that started.
                Branch::NotStarted => break,
                Branch::Active(ctx) => {
                    self.abandon(ctx);
                    started.push(index);
                    RawItem {
                        status: BatchItemStatus::Started,
                        result: None,
                        error: None,
                    }
                }
                Branch::Started => {
                    started.push(index);
                    RawItem {
                        status: BatchItemStatus::Started,
                        result: None,
                        error: None,
                    }
                }
                Branch::Done(Ok(payload)) => {
                    completed.push(index);
                    succeeded += 1;
                    RawItem {
                        status: BatchItemStatus::Succeeded,
                        result: Some(payload),
                        error: None,
                    }
                }
                Branch::Done(Err(error)) => {
                    completed.push(index);
                    failed += 1;
                    RawItem {
                        status: BatchItemStatus::Failed,
                        result: None,
                        error: Some(*error),
                    }
                }
            };
            items.push(item);
        }
        let raw = RawBatch { items, reason };
        if rebuilding {
            self.replayed += 1;
            self.ready
                .push_back((owner, Response::Batch(BatchReply::Rebuilt(raw))));
            return;
        }
        let started_count = started.len();
        let (started_indexes, completed_indexes) = if started.len() <= completed.len() {
            (Some(started), None)
        } else {
            (None, Some(completed))
        };
        self.batches[b].summary = Some(BatchSummary {
            kind: kind.summary_type().to_owned(),
            total_count: admitted,
            completion_reason: reason.as_str().to_owned(),
            started_indexes,
            completed_indexes,
            started_count,
            success_count: succeeded,
            failure_count: failed,
            status: reason.batch_status(failed > 0).as_str().to_owned(),
            summary: None,
        });
        self.contexts[owner as usize].closing = Some(b);
        self.ready
            .push_back((owner, Response::Batch(BatchReply::Live(raw))));
    }

    pub(super) fn on_close_batch(
        &mut self,
        ctx: CtxId,
        encoded: Result<Payload, Box<ErrorObject>>,
        text: Option<String>,
    ) {
        let Some(b) = self.contexts[ctx as usize].closing.take() else {
            return self.fatal(ExecutionError::Internal(
                "a batch result was sent for no batch".into(),
            ));
        };
        let batch = &mut self.batches[b];
        let op = batch.op.clone();
        let summary = batch
            .summary
            .take()
            .map(|s| BatchSummary { summary: text, ..s });
        let (u, response) = match encoded {
            Ok(payload) => {
                let too_large = crate::limits::too_large_for_a_context(payload.as_str());
                let mut u = update(&op, OperationAction::Succeed);
                u.context_options = Some(ContextOptions {
                    replay_children: Some(too_large),
                });
                if too_large {
                    let text = summary
                        .and_then(|s| serde_json::to_string(&s).ok())
                        .unwrap_or_default();
                    u.payload = Some(Payload::from(text));
                    (u, Response::Continue)
                } else {
                    u.payload = Some(payload.clone());
                    (u, Response::Step(Ok(payload)))
                }
            }
            Err(error) => {
                let error = error.truncated();
                let mut u = update(&op, OperationAction::Fail);
                u.error = Some(Box::new(error.clone()));
                (u, Response::Step(Err(Box::new(error))))
            }
        };
        self.emit(vec![u], After::Resume(ctx, response), false);
    }
}

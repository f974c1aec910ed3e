//! The determinism rules: matching each durable call to what the history
//! recorded at its position (id, type, subtype, name), and the errors that
//! say how a code change broke replay.

use super::*;

impl Interpreter {
    /// Checks what the service would reject or this SDK cannot replay
    /// before an operation is used: its name, and a recorded type this
    /// version does not know (before comparing it with the request). A
    /// recorded status it does not know is handled where statuses are.
    #[allow(clippy::result_large_err)]
    pub(super) fn check(
        &self,
        op: &OpRef,
        recorded: Option<&Operation>,
    ) -> Result<(), ExecutionError> {
        // The common case, every replayed operation: what the history
        // recorded here is what is requested. Its name was accepted by the
        // service, so it needs no check of its own.
        // (No let chain: the crates' rust-version is 1.85.)
        if recorded
            .is_some_and(|r| !matches!(r.op_type, OperationType::Unknown(_)) && Self::same(r, op))
        {
            return Ok(());
        }
        if let Some(name) = op.name.as_deref() {
            let reason = if name.is_empty() {
                Some("the name is empty".to_owned())
            } else if name.len() > MAX_NAME_LEN {
                Some(format!("the name is {} bytes long", name.len()))
            } else {
                name.chars()
                    .find(|c| !(' '..='~').contains(c))
                    .map(|c| format!("the name contains {c:?}"))
            };
            if let Some(reason) = reason {
                return Err(ExecutionError::InvalidName {
                    op: op.clone(),
                    reason,
                });
            }
        }
        if let Some(recorded) = recorded {
            if let OperationType::Unknown(name) = recorded.op_type {
                return Err(ExecutionError::UnknownOperation {
                    op: op.clone(),
                    what: "type",
                    name: name.to_string(),
                });
            }
            self.matches(recorded, op)?;
        }
        Ok(())
    }

    /// The next id of context `ctx`: the id, its position in the context
    /// and where history records it. Keeps the context's count of recorded
    /// operations ahead. (The parent is read by the caller: returned too,
    /// the tuple would be over 128 bytes, a `memcpy` per operation.)
    #[inline]
    fn advance_ids(&mut self, ctx: CtxId) -> (OperationId, u64, Option<usize>) {
        let c = &mut self.contexts[ctx as usize];
        let (id, seq) = c.ids.next_id();
        // Looked up once, here: the position of its record, if any.
        let recorded = self.history.position(&id);
        if c.is_virtual {
            c.recorded_ahead =
                u32::from(c.peeks && self.history.position(&c.ids.peek_id()).is_some());
        } else if recorded.is_some() {
            c.recorded_ahead = c.recorded_ahead.saturating_sub(1);
        }
        (id, seq, recorded)
    }

    /// The next operation of context `ctx`, and where history records it.
    #[inline]
    pub(super) fn next_op(
        &mut self,
        ctx: CtxId,
        op_type: OperationType,
        sub_type: SharedStr,
        name: Option<Cow<'static, str>>,
    ) -> (OpRef, Option<usize>) {
        let (id, seq, recorded) = self.advance_ids(ctx);
        let parent = self.contexts[ctx as usize].ids.parent().copied();
        let op = OpRef {
            seq,
            id,
            op_type,
            sub_type: Some(sub_type),
            name: name.map(SharedStr::from),
            parent,
        };
        if let Some(observer) = self.observer.as_deref_mut() {
            observer.reached(&op, recorded.map(|at| self.history.at(at)));
        }
        (op, recorded)
    }

    /// Like [`Interpreter::next_op`] followed by [`Interpreter::set_last`],
    /// for the operation replayed most often (a step): the reference is
    /// written straight into the context's last-operation slot, where the
    /// caller reads it, instead of being built, returned and moved there
    /// (192 bytes, copied through `memcpy`, on every replayed step).
    pub(super) fn next_op_in_place(
        &mut self,
        ctx: CtxId,
        op_type: OperationType,
        sub_type: SharedStr,
        name: Option<Cow<'static, str>>,
    ) -> Option<usize> {
        let (id, seq, recorded) = self.advance_ids(ctx);
        let c = &mut self.contexts[ctx as usize];
        let parent = c.ids.parent().copied();
        let sub_type = Some(sub_type);
        let name = name.map(SharedStr::from);
        match &mut c.last_op {
            Some(last) => {
                last.seq = seq;
                last.id = id;
                last.op_type = op_type;
                last.sub_type = sub_type;
                last.name = name;
                last.parent = parent;
            }
            None => {
                c.last_op = Some(OpRef {
                    seq,
                    id,
                    op_type,
                    sub_type,
                    name,
                    parent,
                })
            }
        }
        if let (Some(observer), Some(op)) = (self.observer.as_deref_mut(), c.last_op.as_ref()) {
            observer.reached(op, recorded.map(|at| self.history.at(at)));
        }
        recorded
    }

    /// Remembers `op` as the context's last operation, for error messages.
    #[inline]
    pub(super) fn set_last(&mut self, ctx: CtxId, op: OpRef) {
        if let Some(c) = self.contexts.get_mut(ctx as usize) {
            match &mut c.last_op {
                // Field by field: moving the whole record (two operation
                // ids) would copy it through memcpy, once per operation.
                Some(last) => {
                    last.seq = op.seq;
                    last.id = op.id;
                    last.op_type = op.op_type;
                    last.sub_type = op.sub_type;
                    last.name = op.name;
                    last.parent = op.parent;
                }
                None => c.last_op = Some(op),
            }
        }
    }

    /// Whether the recorded operation has the requested type, subtype,
    /// name and parent.
    #[inline]
    fn same(recorded: &Operation, op: &OpRef) -> bool {
        /// Equal strings; the subtypes, interned on both sides, compare by
        /// address without a call to `memcmp`.
        fn same_str(a: Option<&str>, b: Option<&str>) -> bool {
            match (a, b) {
                (Some(a), Some(b)) => {
                    a.len() == b.len() && (std::ptr::eq(a.as_ptr(), b.as_ptr()) || a == b)
                }
                (None, None) => true,
                _ => false,
            }
        }
        recorded.op_type == op.op_type
            && same_str(recorded.sub_type.as_deref(), op.sub_type.as_deref())
            && same_str(recorded.name.as_deref(), op.name.as_deref())
            && recorded.parent_id == op.parent
    }

    /// Checks that the recorded operation is the one requested.
    #[allow(clippy::result_large_err)]
    pub(super) fn matches(&self, recorded: &Operation, op: &OpRef) -> Result<(), ExecutionError> {
        if Self::same(recorded, op) {
            return Ok(());
        }
        let recorded_ref = Self::recorded_ref(op.seq, recorded);
        let parent = |p: Option<&OperationId>| match p {
            Some(p) => format!(" in context {p}"),
            None => String::new(),
        };
        Err(ExecutionError::NonDeterministic {
            seq: op.seq,
            id: op.id,
            recorded: format!(
                "{}{}",
                recorded_ref.describe(),
                parent(recorded.parent_id.as_ref())
            ),
            requested: format!("{}{}", op.describe(), parent(op.parent.as_ref())),
        })
    }

    /// The recorded operation as an [`OpRef`] at position `seq`, for
    /// error messages.
    pub(super) fn recorded_ref(seq: u64, recorded: &Operation) -> OpRef {
        OpRef {
            seq,
            id: recorded.id,
            op_type: recorded.op_type,
            sub_type: recorded.sub_type.clone(),
            name: recorded.name.clone(),
            parent: recorded.parent_id,
        }
    }

    /// A virtual context (or flat branch) whose id holds a record: the
    /// history was written by code that recorded a context there.
    pub(super) fn not_virtual(op: &OpRef, recorded: &Operation) -> ExecutionError {
        ExecutionError::NonDeterministic {
            seq: op.seq,
            id: op.id,
            recorded: Self::recorded_ref(op.seq, recorded).describe(),
            requested: format!("{} that records nothing (virtual)", op.describe()),
        }
    }

    /// New work in a context that may only replay (see `Ctx::replay_only`).
    pub(super) fn not_recorded(op: &OpRef, recorded: Option<&Operation>) -> ExecutionError {
        ExecutionError::NonDeterministic {
            seq: op.seq,
            id: op.id,
            recorded: match recorded {
                Some(r) => format!("it unfinished (status {})", r.status),
                None => "nothing".to_owned(),
            },
            requested: format!(
                "{} while rebuilding a result too large to have been checkpointed from its \
                 recorded operations (the code must make the same calls as when it ran)",
                op.describe()
            ),
        }
    }
}

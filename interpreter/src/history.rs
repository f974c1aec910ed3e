//! The interpreter's view of the checkpointed operations.

use crate::model::{IdMap, Operation, OperationId, OperationType};

/// An open-addressing index from id to position: 4 bytes a slot, so that
/// the index of a large history stays in cache.
///
/// A slot holds the position + 1 in its low [`POS_BITS`] bits and, while
/// every position fits there (histories below 8,388,608 operations), 8
/// more bits of the id's fingerprint above them: a probe compares an
/// operation's id only when those bits match, so a collision does not
/// read a record elsewhere in the history (at 25,000 operations, a cache
/// miss each). A larger index stores positions alone and compares every
/// probed id.
#[derive(Debug, Clone, Default)]
struct Index {
    /// Position + 1 of an operation (and its tag); 0 marks an empty slot.
    slots: Vec<u32>,
    /// The bits of a slot that hold its tag: `!POS_MASK` while every
    /// position fits in [`POS_BITS`], else none.
    tags: u32,
    /// Each indexed position's [`fp32`], so that growing the index reads
    /// this array instead of every operation's id again.
    fps: Vec<u32>,
}

/// The bits of a slot that hold the position + 1, when tagged.
const POS_BITS: u32 = 24;
const POS_MASK: u32 = (1 << POS_BITS) - 1;

/// The 32 bits of an id's fingerprint the index uses: the low ones pick
/// the first slot, the top 8 are the tag (independent of the slot while
/// the index is tagged: it then has at most 2^24 slots).
fn fp32(id: &OperationId) -> u32 {
    (id.fingerprint() >> 32) as u32
}

/// The tag bits of an index of `len` slots: positions stay below `len /
/// 2` (the index grows before), so tags fit while that is below
/// [`POS_MASK`].
fn tag_bits(len: usize) -> u32 {
    if len / 2 < POS_MASK as usize {
        !POS_MASK
    } else {
        0
    }
}

impl Index {
    /// An empty index with room for `n` operations.
    fn with_capacity(n: usize) -> Self {
        let len = (n.max(4) * 2).next_power_of_two();
        Index {
            slots: vec![0; len],
            tags: tag_bits(len),
            fps: Vec::with_capacity(n),
        }
    }

    /// The tag bits of a slot for fingerprint `fp` (zero when untagged),
    /// and the mask that takes them out of a slot.
    fn tag(&self, fp: u32) -> (u32, u32) {
        (fp & self.tags, self.tags)
    }

    /// The position of `id` in `ops`, if indexed.
    fn get(&self, id: &OperationId, ops: &[Operation]) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let fp = fp32(id);
        let (tag, tags) = self.tag(fp);
        let mut i = fp as usize & mask;
        loop {
            match self.slots[i] {
                0 => return None,
                slot if slot & tags == tag => {
                    let at = (slot & !tags) as usize - 1;
                    if ops[at].id == *id {
                        return Some(at);
                    }
                }
                _ => {}
            }
            i = (i + 1) & mask;
        }
    }

    /// Indexes `id` at position `at` (the next one: every position before
    /// it is indexed; the operation need not be in `ops` yet) unless an
    /// operation with this id is indexed already (then changes nothing
    /// and returns its position): the lookup and the insertion in one
    /// probe. Grows the index first when it is half full.
    fn add(&mut self, at: usize, id: &OperationId, ops: &[Operation]) -> Option<usize> {
        debug_assert_eq!(at, self.fps.len(), "positions are indexed in order");
        if (self.fps.len() + 1) * 2 > self.slots.len() {
            self.grow((self.slots.len() * 2).max(8));
        }
        let mask = self.slots.len() - 1;
        let fp = fp32(id);
        let (tag, tags) = self.tag(fp);
        let mut i = fp as usize & mask;
        loop {
            match self.slots[i] {
                0 => {
                    // `at + 1` fits below the tag: see `with_capacity`.
                    self.slots[i] = (at as u32 + 1) | tag;
                    self.fps.push(fp);
                    return None;
                }
                slot if slot & tags == tag && ops[(slot & !tags) as usize - 1].id == *id => {
                    return Some((slot & !tags) as usize - 1);
                }
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Gives the index `len` slots (a power of two) and places every
    /// indexed position again, from `fps` alone (the ids are distinct: no
    /// comparison).
    fn grow(&mut self, len: usize) {
        self.slots = vec![0; len];
        self.tags = tag_bits(len);
        let mask = len - 1;
        for (at, &fp) in self.fps.iter().enumerate() {
            let (tag, _) = self.tag(fp);
            let mut i = fp as usize & mask;
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = (at as u32 + 1) | tag;
        }
    }
}

/// How many operations each context held when the history was built: the
/// interpreter replays a context until it has reached them all.
#[derive(Debug, Clone, Default)]
struct Recorded {
    /// Operations of the root context (the EXECUTION operation aside).
    in_root: u32,
    /// Operations per CONTEXT operation, by its id.
    per_context: IdMap<u32>,
}

impl Recorded {
    /// Counts `op` (in the pass that indexes it: a history of 25,000
    /// operations does not fit in cache, so a second pass would read every
    /// record from memory again).
    fn count(&mut self, op: &Operation) {
        match op.parent_id {
            Some(parent) => *self.per_context.entry(parent).or_insert(0) += 1,
            None if op.op_type != OperationType::Execution => self.in_root += 1,
            None => {}
        }
    }

    /// Takes back [`Recorded::count`] of `op` (replaced by a later record
    /// with its id).
    fn uncount(&mut self, op: &Operation) {
        match op.parent_id {
            Some(parent) => {
                if let Some(n) = self.per_context.get_mut(&parent) {
                    *n = n.saturating_sub(1);
                }
            }
            None if op.op_type != OperationType::Execution => {
                self.in_root = self.in_root.saturating_sub(1);
            }
            None => {}
        }
    }
}

/// The operations of one execution, indexed by id.
///
/// Built from the invocation's operations, then kept up to date with the
/// deltas that checkpoint responses carry. A later operation with an id
/// already present replaces the earlier one, except that a terminal status
/// is final: once an id is recorded `SUCCEEDED`, `FAILED`, `CANCELLED`,
/// `TIMED_OUT` or `STOPPED`, later records of it are ignored. The service
/// never reopens a finished operation, so a later record that would (a
/// duplicate id in a malformed history, a stale page) must not make a
/// completed step run again.
#[derive(Debug, Clone, Default)]
pub struct History {
    ops: Vec<Operation>,
    index: Index,
    execution: Option<usize>,
    recorded: Recorded,
}

impl History {
    /// Indexes `operations` (keeping the vector; no copy). The vector's
    /// spare capacity is kept for the pages [`History::append`] adds, and
    /// the index sized for it (up to 64 times the operations given): a
    /// caller that knows how many operations its later pages hold sizes
    /// the history once.
    pub fn new(operations: Vec<Operation>) -> Self {
        let room = operations.capacity().min(operations.len().max(16) * 64);
        let mut index = Index::with_capacity(room);
        let mut execution = None;
        let mut recorded = Recorded::default();
        for (at, op) in operations.iter().enumerate() {
            if index.add(at, &op.id, &operations).is_some() {
                // A duplicate id: resolved by the rules of `merge`.
                let mut history = History::default();
                history.append(operations);
                return history;
            }
            recorded.count(op);
            if execution.is_none() && op.op_type == OperationType::Execution {
                execution = Some(at);
            }
        }
        History {
            ops: operations,
            index,
            execution,
            recorded,
        }
    }

    /// Adds the operations of a further page of the state the history is
    /// built from (as [`History::merge`] does, and counted as recorded,
    /// as those [`History::new`] was given are). Each page is indexed as
    /// it comes, while its operations are in cache, instead of in a pass
    /// over the whole history at the end (25,000 operations do not fit in
    /// cache).
    pub fn append(&mut self, operations: impl IntoIterator<Item = Operation>) {
        self.append_in_place().extend(operations);
    }

    /// Lends the history's vector of operations to something that
    /// appends a page of the state to it (a service's `get_state_into`):
    /// what was appended is indexed and counted as by
    /// [`History::append`] when the returned guard is dropped, without
    /// another copy of the page. Operations already in the history must
    /// not be changed through it (removing some, or inserting some before
    /// the end, is detected: the history is then indexed again).
    ///
    /// ```
    /// use durable_yield_interpreter::History;
    /// use durable_yield_interpreter::model::{Operation, OperationId, OperationStatus, OperationType};
    ///
    /// let op = |id: &str| {
    ///     let id = OperationId::new(id).unwrap();
    ///     Operation::new(id, OperationType::Step, OperationStatus::Succeeded)
    /// };
    /// let mut history = History::new(vec![op("a")]);
    /// history.append_in_place().extend([op("b"), op("a")]);
    /// assert_eq!(history.len(), 2);
    /// assert!(history.get(&OperationId::new("b").unwrap()).is_some());
    /// ```
    pub fn append_in_place(&mut self) -> Appending<'_> {
        let from = self.ops.len();
        let last = self.ops.last().map(|op| op.id);
        Appending {
            history: self,
            from,
            last,
        }
    }

    /// Indexes the operations appended at `from` and after (see
    /// [`History::append_in_place`]): new ids in place (moved down over
    /// the duplicates before them), duplicates merged into their earlier
    /// record by the rules of [`History::merge`]. `last` is the id the
    /// operation before `from` had when the vector was lent.
    fn index_appended(&mut self, from: usize, last: Option<OperationId>) {
        let before = from
            .checked_sub(1)
            .map(|at| self.ops.get(at).map(|op| op.id));
        if from > self.ops.len() || self.index.fps.len() != from || before.flatten() != last {
            // Operations were removed or inserted: index them all again.
            let ops = std::mem::take(&mut self.ops);
            *self = History::new(ops);
            return;
        }
        let mut kept = from;
        for at in from..self.ops.len() {
            let is_execution = self.ops[at].op_type == OperationType::Execution;
            let id = self.ops[at].id;
            let position = match self.index.add(kept, &id, &self.ops) {
                None => {
                    if kept != at {
                        self.ops.swap(kept, at);
                    }
                    self.recorded.count(&self.ops[kept]);
                    kept += 1;
                    kept - 1
                }
                Some(earlier) => {
                    if self.ops[earlier].status.is_terminal() {
                        continue;
                    }
                    self.recorded.uncount(&self.ops[earlier]);
                    self.recorded.count(&self.ops[at]);
                    // The later record takes the earlier's place; the
                    // earlier one, now at `at`, is cut off below.
                    self.ops.swap(earlier, at);
                    earlier
                }
            };
            if is_execution && self.execution.is_none() {
                self.execution = Some(position);
            }
        }
        self.ops.truncate(kept);
    }

    /// Adds or replaces operations (those of a checkpoint response: not
    /// counted as recorded).
    pub fn merge(&mut self, operations: impl IntoIterator<Item = Operation>) {
        for op in operations {
            let is_execution = op.op_type == OperationType::Execution;
            let at = match self.index.add(self.ops.len(), &op.id, &self.ops) {
                None => {
                    self.ops.push(op);
                    self.ops.len() - 1
                }
                Some(earlier) => {
                    let kept = &mut self.ops[earlier];
                    if kept.status.is_terminal() {
                        continue;
                    }
                    *kept = op;
                    earlier
                }
            };
            if is_execution && self.execution.is_none() {
                self.execution = Some(at);
            }
        }
    }

    /// The operation with this id.
    pub fn get(&self, id: &OperationId) -> Option<&Operation> {
        self.index.get(id, &self.ops).map(|at| &self.ops[at])
    }

    /// Where the operation with this id is in [`History::operations`].
    pub fn position(&self, id: &OperationId) -> Option<usize> {
        self.index.get(id, &self.ops)
    }

    /// How many operations the context `parent` (the root: `None`) held
    /// when the history was built (operations merged since do not count;
    /// the EXECUTION operation never does).
    pub(crate) fn recorded_in(&self, parent: Option<&OperationId>) -> u32 {
        match parent {
            None => self.recorded.in_root,
            Some(p) => self.recorded.per_context.get(p).copied().unwrap_or(0),
        }
    }

    /// The operation at `position` (from [`History::position`]).
    pub(crate) fn at(&self, position: usize) -> &Operation {
        &self.ops[position]
    }

    /// The EXECUTION operation, which carries the input.
    pub fn execution(&self) -> Option<&Operation> {
        self.execution.map(|at| &self.ops[at])
    }

    /// All operations, in the order they were first seen.
    pub fn operations(&self) -> &[Operation] {
        &self.ops
    }

    /// The number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether there are no operations.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// The vector of a [`History`] lent by [`History::append_in_place`]:
/// what is appended to it is indexed when this guard is dropped.
#[derive(Debug)]
pub struct Appending<'a> {
    history: &'a mut History,
    from: usize,
    last: Option<OperationId>,
}

impl std::ops::Deref for Appending<'_> {
    type Target = Vec<Operation>;

    fn deref(&self) -> &Vec<Operation> {
        &self.history.ops
    }
}

impl std::ops::DerefMut for Appending<'_> {
    fn deref_mut(&mut self) -> &mut Vec<Operation> {
        &mut self.history.ops
    }
}

impl Drop for Appending<'_> {
    fn drop(&mut self) {
        self.history.index_appended(self.from, self.last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::OperationStatus;

    fn op(id: &str, t: OperationType, s: OperationStatus) -> Operation {
        Operation::new(OperationId::new(id).unwrap(), t, s)
    }

    #[test]
    fn later_duplicates_replace_earlier_ones() {
        let h = History::new(vec![
            op("e", OperationType::Execution, OperationStatus::Started),
            op("a", OperationType::Step, OperationStatus::Started),
            op("a", OperationType::Step, OperationStatus::Pending),
            op("a", OperationType::Step, OperationStatus::Succeeded),
        ]);
        assert_eq!(h.len(), 2);
        let a = OperationId::new("a").unwrap();
        assert_eq!(h.get(&a).unwrap().status, OperationStatus::Succeeded);
        assert_eq!(h.execution().unwrap().id.as_str(), "e");
    }

    #[test]
    fn a_terminal_record_is_never_undone() {
        let a = OperationId::new("a").unwrap();
        let h = History::new(vec![
            op("a", OperationType::Step, OperationStatus::Succeeded),
            op("a", OperationType::Step, OperationStatus::Started),
            op("a", OperationType::Step, OperationStatus::Failed),
        ]);
        assert_eq!(h.get(&a).unwrap().status, OperationStatus::Succeeded);
        let mut h = History::new(vec![op("a", OperationType::Step, OperationStatus::Started)]);
        h.merge(vec![op("a", OperationType::Step, OperationStatus::Failed)]);
        h.merge(vec![op("a", OperationType::Step, OperationStatus::Pending)]);
        assert_eq!(h.get(&a).unwrap().status, OperationStatus::Failed);
    }

    #[test]
    fn the_index_finds_every_id_after_growing() {
        let mut h = History::default();
        let mut ids = crate::id::IdGenerator::root();
        let all: Vec<_> = (0..1000).map(|_| ids.next_id().0).collect();
        for id in &all {
            h.merge(vec![Operation::new(
                *id,
                OperationType::Step,
                OperationStatus::Started,
            )]);
        }
        for (i, id) in ["short", "short2", "x"].iter().enumerate() {
            h.merge(vec![op(id, OperationType::Wait, OperationStatus::Started)]);
            assert_eq!(h.len(), 1001 + i);
        }
        assert!(all.iter().all(|id| h.get(id).is_some_and(|o| o.id == *id)));
        assert!(h.get(&OperationId::new("short").unwrap()).is_some());
        assert!(h.get(&OperationId::new("missing").unwrap()).is_none());
        let rebuilt = History::new(h.operations().to_vec());
        assert!(all.iter().all(|id| rebuilt.get(id).is_some()));
    }

    /// Tagged slots (the default) and untagged ones (histories of 2^23
    /// operations and more, too large to build here: the same index,
    /// forced) find the same operations and none that are missing.
    #[test]
    fn tagged_and_untagged_indexes_agree() {
        let mut ids = crate::id::IdGenerator::root();
        let n = 5000;
        let ops: Vec<_> = (0..n)
            .map(|_| {
                Operation::new(
                    ids.next_id().0,
                    OperationType::Step,
                    OperationStatus::Started,
                )
            })
            .collect();
        let missing: Vec<_> = (0..n).map(|_| ids.next_id().0).collect();
        for tagged in [true, false] {
            let mut index = Index::with_capacity(n);
            assert_eq!(index.tags, !POS_MASK);
            if !tagged {
                index.tags = 0;
            }
            for at in 0..n {
                assert_eq!(
                    index.add(at, &ops[at].id, &ops),
                    None,
                    "{} is new",
                    ops[at].id
                );
            }
            for at in 0..n {
                assert_eq!(index.get(&ops[at].id, &ops), Some(at));
            }
            assert_eq!(index.add(n, &ops[7].id, &ops), Some(7), "indexed already");
            assert!(missing.iter().all(|id| index.get(id, &ops).is_none()));
            let tags = index
                .slots
                .iter()
                .map(|s| s >> POS_BITS)
                .collect::<std::collections::HashSet<_>>();
            assert_eq!(tags.len() > 200, tagged, "tags spread over 256 values");
        }
    }

    /// The counts of recorded operations per context are the history's,
    /// duplicates merged, and do not change with later merges.
    #[test]
    fn recorded_counts_per_context() {
        let child = |id: &str, parent: &str| {
            let mut o = op(id, OperationType::Step, OperationStatus::Succeeded);
            o.parent_id = Some(OperationId::new(parent).unwrap());
            o
        };
        let c = OperationId::new("c").unwrap();
        for duplicate in [false, true] {
            let mut ops = vec![
                op("e", OperationType::Execution, OperationStatus::Started),
                op("c", OperationType::Context, OperationStatus::Started),
                child("c1", "c"),
                child("c2", "c"),
                op("s", OperationType::Step, OperationStatus::Succeeded),
            ];
            if duplicate {
                ops.push(child("c2", "c"));
            }
            let mut h = History::new(ops);
            assert_eq!(h.recorded_in(None), 2);
            assert_eq!(h.recorded_in(Some(&c)), 2);
            assert_eq!(h.recorded_in(Some(&OperationId::new("s").unwrap())), 0);
            h.merge(vec![child("c3", "c")]);
            assert_eq!(h.recorded_in(Some(&c)), 2);
        }
    }

    /// A history built page by page (`append`) is the history of the pages
    /// joined: the same operations in the same order, the same
    /// duplicates resolved, the same counts and EXECUTION operation.
    #[test]
    fn pages_appended_make_the_history_of_their_join() {
        let mut ids = crate::id::IdGenerator::root();
        let c = OperationId::new("c").unwrap();
        let mut all = vec![op("c", OperationType::Context, OperationStatus::Started)];
        for i in 0..3000 {
            let mut o = Operation::new(
                ids.next_id().0,
                OperationType::Step,
                OperationStatus::Started,
            );
            if i % 3 == 0 {
                o.parent_id = Some(c);
            }
            all.push(o);
        }
        all.insert(
            1500,
            op("e", OperationType::Execution, OperationStatus::Started),
        );
        // Duplicates across pages: one finished later, one after finishing
        // (ignored), one moved to another context.
        let mut finished = all[10].clone();
        finished.status = OperationStatus::Succeeded;
        all.push(finished);
        let mut undone = all[10].clone();
        undone.status = OperationStatus::Failed;
        all.push(undone);
        let mut moved = all[4].clone();
        moved.parent_id = None;
        all.push(moved);

        let joined = History::new(all.clone());
        let key = |h: &History| {
            h.operations()
                .iter()
                .map(|o| (o.id, o.status, o.parent_id))
                .collect::<Vec<_>>()
        };
        // Appended in place, the pages make the same history.
        let mut in_place = History::new(all[..1000].to_vec());
        for page in all[1000..].chunks(1000) {
            in_place.append_in_place().extend_from_slice(page);
        }
        assert_eq!(key(&in_place), key(&joined));
        assert_eq!(
            in_place.execution().map(|e| e.id),
            joined.execution().map(|e| e.id)
        );
        for parent in [None, Some(&c)] {
            assert_eq!(in_place.recorded_in(parent), joined.recorded_in(parent));
        }
        assert!(
            all.iter()
                .all(|o| in_place.get(&o.id).is_some_and(|p| p.id == o.id))
        );

        let mut paged = History::new(all[..1000].to_vec());
        for page in all[1000..].chunks(1000) {
            paged.append(page.to_vec());
        }
        assert_eq!(key(&paged), key(&joined));
        assert_eq!(paged.len(), 3002);
        assert_eq!(paged.operations()[10].status, OperationStatus::Succeeded);
        assert_eq!(paged.operations()[4].parent_id, None);
        assert_eq!(
            paged.execution().map(|e| e.id),
            joined.execution().map(|e| e.id)
        );
        assert_eq!(paged.execution().unwrap().id.as_str(), "e");
        for parent in [None, Some(&c)] {
            assert_eq!(paged.recorded_in(parent), joined.recorded_in(parent));
        }
        assert_eq!(paged.recorded_in(Some(&c)), 999);
        assert_eq!(paged.recorded_in(None), 3001 - 999);
        assert!(
            all.iter()
                .all(|o| paged.get(&o.id).is_some_and(|p| p.id == o.id))
        );
    }

    /// A borrower that removes operations instead of only appending gets
    /// the history indexed again, not a stale index.
    #[test]
    fn operations_removed_through_the_lent_vector_are_indexed_again() {
        let mut h = History::new(vec![
            op("a", OperationType::Step, OperationStatus::Started),
            op("b", OperationType::Step, OperationStatus::Started),
        ]);
        {
            let mut ops = h.append_in_place();
            ops.remove(0);
            ops.push(op("c", OperationType::Step, OperationStatus::Started));
            ops.push(op("b", OperationType::Step, OperationStatus::Succeeded));
        }
        assert_eq!(h.len(), 2);
        assert!(h.get(&OperationId::new("a").unwrap()).is_none());
        let b = h.get(&OperationId::new("b").unwrap()).unwrap();
        assert_eq!(b.status, OperationStatus::Succeeded);
        assert_eq!(h.position(&OperationId::new("c").unwrap()), Some(1));
        assert_eq!(h.recorded_in(None), 2);
    }

    #[test]
    fn merge_adds_and_replaces() {
        let mut h = History::new(vec![op("a", OperationType::Wait, OperationStatus::Started)]);
        assert!(h.execution().is_none());
        h.merge(vec![
            op("a", OperationType::Wait, OperationStatus::Succeeded),
            op("b", OperationType::Step, OperationStatus::Started),
        ]);
        assert_eq!(h.len(), 2);
        assert_eq!(h.operations()[0].status, OperationStatus::Succeeded);
        assert_eq!(h.operations()[1].id.as_str(), "b");
    }
}

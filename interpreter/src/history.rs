//! The interpreter's view of the checkpointed operations.

use crate::model::{Operation, OperationId, OperationType};

/// An open-addressing index from id to position: 4 bytes a slot, so that
/// the index of a large history stays in cache.
#[derive(Debug, Clone, Default)]
struct Index {
    /// Position + 1 of an operation; 0 marks an empty slot.
    slots: Vec<u32>,
}

impl Index {
    fn with_capacity(n: usize) -> Self {
        Index {
            slots: vec![0; (n.max(4) * 2).next_power_of_two()],
        }
    }

    fn start(&self, id: &OperationId) -> usize {
        (id.fingerprint() >> 32) as usize & (self.slots.len() - 1)
    }

    /// The position of `id` in `ops`, if indexed.
    fn get(&self, id: &OperationId, ops: &[Operation]) -> Option<usize> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.start(id);
        loop {
            match self.slots[i] {
                0 => return None,
                slot if ops[slot as usize - 1].id == *id => return Some(slot as usize - 1),
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Indexes `ops[at]`, whose id must not be indexed yet.
    fn insert(&mut self, at: usize, ops: &[Operation]) {
        if (at + 1) * 2 > self.slots.len() {
            *self = Index::with_capacity(at + 1);
            for i in 0..at {
                let _ = self.place_new(i, ops);
            }
        }
        let _ = self.place_new(at, ops);
    }

    /// Indexes `ops[at]` unless an operation with its id is indexed
    /// already (then changes nothing and returns false): the lookup and
    /// the insertion in one probe. The index must have room.
    fn place_new(&mut self, at: usize, ops: &[Operation]) -> bool {
        let mask = self.slots.len() - 1;
        let id = &ops[at].id;
        let mut i = self.start(id);
        loop {
            match self.slots[i] {
                0 => {
                    self.slots[i] = at as u32 + 1;
                    return true;
                }
                slot if ops[slot as usize - 1].id == *id => return false,
                _ => i = (i + 1) & mask,
            }
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
}

impl History {
    /// Indexes `operations` (keeping the vector; no copy).
    pub fn new(operations: Vec<Operation>) -> Self {
        let mut index = Index::with_capacity(operations.len());
        let mut execution = None;
        for (at, op) in operations.iter().enumerate() {
            if !index.place_new(at, &operations) {
                // A duplicate id: resolved by the rules of `merge`.
                let mut history = History::default();
                history.merge(operations);
                return history;
            }
            if execution.is_none() && op.op_type == OperationType::Execution {
                execution = Some(at);
            }
        }
        History {
            ops: operations,
            index,
            execution,
        }
    }

    /// Adds or replaces operations.
    pub fn merge(&mut self, operations: impl IntoIterator<Item = Operation>) {
        for op in operations {
            let is_execution = op.op_type == OperationType::Execution;
            let at = match self.index.get(&op.id, &self.ops) {
                Some(at) if self.ops[at].status.is_terminal() => continue,
                Some(at) => {
                    self.ops[at] = op;
                    at
                }
                None => {
                    let at = self.ops.len();
                    self.ops.push(op);
                    self.index.insert(at, &self.ops);
                    at
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

//! The local service's index of operations by id: an execution's, and
//! those a checkpoint batch touched while it is validated.

use std::hash::BuildHasher;

use hashbrown::HashTable;

use crate::model::{IdHasher, Operation, OperationId};

/// Where each of the service's operations is, by id: a table of positions
/// and id hashes, 16 bytes an entry, the ids themselves staying in the
/// operations. (A map keyed by [`OperationId`] held each 65-byte id
/// inline: 80 bytes an entry, a 4 MB table at 50,000 operations, a cache
/// miss on every lookup of a large execution.) Growing the table rehashes
/// from the stored hashes, without reading an operation.
#[derive(Debug, Default, Clone)]
pub(super) struct OpIndex {
    table: HashTable<Entry>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    hash: u64,
    at: usize,
}

fn hash(id: &OperationId) -> u64 {
    std::hash::BuildHasherDefault::<IdHasher>::default().hash_one(id)
}

impl OpIndex {
    /// An empty index with room for `n` operations.
    pub(super) fn with_capacity(n: usize) -> Self {
        OpIndex {
            table: HashTable::with_capacity(n),
        }
    }

    /// The position in `ops` of the operation with this id.
    pub(super) fn get(&self, id: &OperationId, ops: &[Operation]) -> Option<usize> {
        let h = hash(id);
        self.table
            .find(h, |e| {
                e.hash == h && ops.get(e.at).is_some_and(|op| op.id == *id)
            })
            .map(|e| e.at)
    }

    /// Records that the operation with this id, not indexed yet, is at
    /// position `at`.
    pub(super) fn insert(&mut self, id: &OperationId, at: usize) {
        let h = hash(id);
        self.table
            .insert_unique(h, Entry { hash: h, at }, |e| e.hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{OperationStatus, OperationType};

    #[test]
    fn finds_every_operation_after_growing_and_nothing_else() {
        let mut ops = Vec::new();
        let mut index = OpIndex::default();
        for n in 1..=5_000u64 {
            let id = durable_yield_interpreter::id::operation_id(None, n);
            index.insert(&id, ops.len());
            ops.push(Operation::new(
                id,
                OperationType::Step,
                OperationStatus::Started,
            ));
        }
        let short = OperationId::new("exec-1").expect("an id");
        index.insert(&short, ops.len());
        ops.push(Operation::new(
            short,
            OperationType::Execution,
            OperationStatus::Started,
        ));
        for (at, op) in ops.iter().enumerate() {
            assert_eq!(index.get(&op.id, &ops), Some(at), "{}", op.id);
        }
        let missing = durable_yield_interpreter::id::operation_id(None, 5_001);
        assert_eq!(index.get(&missing, &ops), None);
        assert_eq!(
            index.get(&OperationId::new("exec-2").expect("an id"), &ops),
            None
        );
        // A position past the operations (never inserted by the service)
        // is not an answer, and does not panic.
        assert_eq!(index.get(&ops[0].id, &ops[1..]), None);
    }
}

//! The interpreter's view of the checkpointed operations.

use rustc_hash::FxHashMap;

use crate::model::{Operation, OperationId, OperationType};

/// The operations of one execution, indexed by id.
///
/// Built from the invocation's operations, then kept up to date with the
/// deltas that checkpoint responses carry. A later operation with an id
/// already present replaces the earlier one.
#[derive(Debug, Clone, Default)]
pub struct History {
    ops: Vec<Operation>,
    index: FxHashMap<OperationId, usize>,
    execution: Option<usize>,
}

impl History {
    /// Indexes `operations`.
    pub fn new(operations: Vec<Operation>) -> Self {
        let mut history = History {
            ops: Vec::with_capacity(operations.len()),
            index: FxHashMap::with_capacity_and_hasher(operations.len(), Default::default()),
            execution: None,
        };
        history.merge(operations);
        history
    }

    /// Adds or replaces operations.
    pub fn merge(&mut self, operations: impl IntoIterator<Item = Operation>) {
        for op in operations {
            let is_execution = op.op_type == OperationType::Execution;
            let at = match self.index.get(&op.id) {
                Some(&at) => {
                    self.ops[at] = op;
                    at
                }
                None => {
                    let at = self.ops.len();
                    self.index.insert(op.id, at);
                    self.ops.push(op);
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
        self.index.get(id).map(|&at| &self.ops[at])
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

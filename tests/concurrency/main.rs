//! Child contexts, map and parallel on the local runner: ids and parent
//! ids, replay without re-running, ReplayChildren, completion policies,
//! concurrency and suspension.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use durable_yield::model::{Operation, OperationStatus as S, OperationType as T};
use durable_yield::{
    ADMISSION_WINDOW, BatchItemStatus, BatchResult, BatchStatus, Branch, ChildConfig,
    CompletionPolicy, CompletionReason, ExecutionStatus, LocalRunner, MapConfig, ParallelConfig,
    StepError, Workflow,
};
use durable_yield_tests::Counter;
use durable_yield_tests::Ids;

pub(crate) fn context_result(op: &Operation) -> Option<&str> {
    op.context_details
        .as_ref()
        .and_then(|d| d.result.as_ref())
        .map(|p| p.as_str())
}

pub(crate) fn replay_children(op: &Operation) -> Option<bool> {
    op.context_details.as_ref().and_then(|d| d.replay_children)
}

pub(crate) fn find<'a>(ops: &'a [Operation], name: &str) -> &'a Operation {
    ops.iter()
        .find(|o| o.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no operation named {name:?}"))
}

mod batches;
mod children;
mod completion;
mod replays;
mod subtypes;
mod summaries;

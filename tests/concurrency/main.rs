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

/// The summary a batch too large to checkpoint recorded (`ReplayChildren`).
pub(crate) fn batch_summary(ops: &[Operation], name: &str) -> serde_json::Value {
    let op = find(ops, name);
    assert_eq!(replay_children(op), Some(true), "{name} is not summarized");
    serde_json::from_str(context_result(op).unwrap_or("")).expect("a JSON summary")
}

/// Runs `v1` until it waits, then `v2` (the code changed while the
/// execution was in flight): the error the execution failed with, which
/// must be `NonDeterministicExecution`.
pub(crate) async fn changed_in_flight<W1, W2>(v1: &W1, v2: &W2) -> durable_yield::model::ErrorObject
where
    W1: durable_yield::WorkflowFn<(), u32>,
    W2: durable_yield::WorkflowFn<(), u32>,
{
    let execution = LocalRunner::new().start(&()).unwrap();
    execution.invoke(v1).await;
    assert!(execution.advance_time(), "the first version waits");
    execution.invoke(v2).await;
    let run = execution.finish::<u32>().unwrap();
    assert_eq!(run.status, ExecutionStatus::Failed);
    let error = run.error.expect("an error");
    assert_eq!(
        error.error_type.as_deref(),
        Some("NonDeterministicExecution"),
        "{error:?}"
    );
    error
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

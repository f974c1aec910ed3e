//! Shared helpers for durable-yield's integration tests.
#![warn(missing_docs)]

pub mod emulator;
pub mod flaky;
pub mod fuzzing;
pub mod otlp;

pub use flaky::Flaky;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use durable_yield::engine::{CheckpointResponse, DurableService, InvocationSummary, ServiceError};
use durable_yield::model::{
    ExecutionState, InvocationInput, Operation, OperationStatus, OperationType, OperationUpdate,
};

/// Counts how often something ran; clones share the count.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicU32>);

impl Counter {
    /// A counter at zero.
    pub fn new() -> Self {
        Counter::default()
    }
    /// Counts one and returns the new count.
    pub fn hit(&self) -> u32 {
        self.0.fetch_add(1, Ordering::SeqCst) + 1
    }
    /// The count.
    pub fn get(&self) -> u32 {
        self.0.load(Ordering::SeqCst)
    }
}

/// `(type, name, status)` of every operation, for compact assertions.
pub fn shape(ops: &[Operation]) -> Vec<(OperationType, Option<&str>, OperationStatus)> {
    ops.iter()
        .map(|op| (op.op_type, op.name.as_deref(), op.status))
        .collect()
}

/// The recorded result payload of a step operation.
pub fn step_result(op: &Operation) -> Option<&str> {
    op.step_details
        .as_ref()
        .and_then(|d| d.result.as_ref())
        .map(|p| p.as_str())
}

/// Invokes `execution` (moving its virtual clock to each due timer) until
/// it ends, or fails after `limit` invocations.
pub async fn drive<I, O, W>(
    execution: &durable_yield::LocalExecution,
    workflow: &W,
    limit: u32,
) -> Result<(), String>
where
    I: serde::de::DeserializeOwned,
    O: serde::Serialize + 'static,
    W: durable_yield::WorkflowFn<I, O>,
{
    for _ in 0..limit {
        if execution.status() != durable_yield::ExecutionStatus::Running {
            return Ok(());
        }
        execution.advance_time();
        execution.invoke(workflow).await;
    }
    Err(format!("still running after {limit} invocations"))
}

/// A service that accepts every checkpoint and knows no pages.
pub struct AcceptingService;

impl DurableService for AcceptingService {
    async fn checkpoint(
        &self,
        _: &str,
        token: &str,
        _: Vec<OperationUpdate>,
    ) -> Result<CheckpointResponse, ServiceError> {
        Ok(CheckpointResponse::new(
            Some(format!("{token}+")),
            Vec::new(),
        ))
    }
    async fn get_state(&self, _: &str, _: &str, _: &str) -> Result<ExecutionState, ServiceError> {
        Err(ServiceError::Rejected("no pages".into()))
    }
}

/// A service that accepts every checkpoint, knows no pages, and keeps the
/// updates it is sent (clones share them).
#[derive(Debug, Default, Clone)]
pub struct RecordingService(pub Arc<std::sync::Mutex<Vec<OperationUpdate>>>);

impl DurableService for RecordingService {
    async fn checkpoint(
        &self,
        arn: &str,
        token: &str,
        updates: Vec<OperationUpdate>,
    ) -> Result<CheckpointResponse, ServiceError> {
        if let Ok(mut sent) = self.0.lock() {
            sent.extend(updates.iter().cloned());
        }
        AcceptingService.checkpoint(arn, token, updates).await
    }
    async fn get_state(
        &self,
        arn: &str,
        token: &str,
        marker: &str,
    ) -> Result<ExecutionState, ServiceError> {
        AcceptingService.get_state(arn, token, marker).await
    }
}

/// Runs one invocation of `workflow` over a recorded (possibly edited)
/// history of the execution `arn`, against [`AcceptingService`].
pub async fn replay_history<I, O, W>(
    workflow: &W,
    arn: &str,
    operations: &[Operation],
) -> InvocationSummary
where
    I: serde::de::DeserializeOwned,
    O: serde::Serialize + 'static,
    W: durable_yield::WorkflowFn<I, O>,
{
    let envelope = serde_json::json!({
        "DurableExecutionArn": arn,
        "CheckpointToken": "t",
        "InitialExecutionState": { "Operations": operations },
    });
    let input: InvocationInput = serde_json::from_value(envelope).expect("an envelope");
    durable_yield::engine::run_invocation(workflow, input, &AcceptingService)
        .await
        .expect("the accepting service never fails an invocation")
}

/// The envelope of an execution's first invocation, as the service sends
/// it: the EXECUTION operation alone (id `e1`), started at
/// 2026-11-26T21:00:00Z with `input` as its `InputPayload`.
pub fn first_invocation(arn: &str, input: &str) -> InvocationInput {
    let envelope = serde_json::json!({
        "DurableExecutionArn": arn,
        "CheckpointToken": "t",
        "InitialExecutionState": {"Operations": [{
            "Id": "e1", "Type": "EXECUTION", "Status": "STARTED",
            "StartTimestamp": 1_795_755_600_000_i64,
            "ExecutionDetails": {"InputPayload": input}
        }]}
    });
    serde_json::from_value(envelope).expect("an envelope")
}

/// A boxed, sendable future: the return type of workflow functions kept
/// in tables.
pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'static>>;

/// The ids of one context's calls, in call order, as the SDK hands them
/// out (`operation_id(parent, 1)`, `operation_id(parent, 2)`, ...): for
/// tests that predict where calls are recorded.
#[derive(Debug, Clone)]
pub struct Ids {
    parent: Option<durable_yield::model::OperationId>,
    counter: u64,
}

impl Ids {
    /// The ids of the root context's calls.
    pub fn root() -> Self {
        Ids {
            parent: None,
            counter: 0,
        }
    }

    /// The ids of the calls in the context (or branch) whose id is `parent`.
    pub fn child(parent: durable_yield::model::OperationId) -> Self {
        Ids {
            parent: Some(parent),
            counter: 0,
        }
    }

    /// The id of the map or parallel `parent`'s `index`-th branch.
    pub fn branch(
        parent: &durable_yield::model::OperationId,
        index: u64,
    ) -> durable_yield::model::OperationId {
        durable_yield::id::branch_id(parent, index)
    }

    /// The next call's id and its 1-based position.
    pub fn next_id(&mut self) -> (durable_yield::model::OperationId, u64) {
        self.counter += 1;
        (
            durable_yield::id::operation_id(self.parent.as_ref(), self.counter),
            self.counter,
        )
    }
}

/// Collects what a `tracing-subscriber` layer writes (the JSON log lines
/// of `durable_yield::logging`), for a test to read back.
#[derive(Clone, Default)]
pub struct LogBuffer(pub Arc<std::sync::Mutex<Vec<u8>>>);

impl LogBuffer {
    /// What was written, as text.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> LogBuffer {
        self.clone()
    }
}

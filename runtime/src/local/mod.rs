//! The local runner: the durable execution service, played in process.
//!
//! [`LocalRunner`] runs a workflow to completion without AWS. It keeps the
//! execution's operations, applies every checkpoint with the service's
//! transition rules (rejecting invalid ones, as the service would), keeps a
//! virtual clock that jumps straight to the next timer (a one-hour wait
//! costs no wall time), and invokes the workflow again and again until it
//! succeeds or fails. It drives the very code path the Lambda handler uses
//! ([`run_invocation`](crate::engine::run_invocation)), so it doubles as the test harness for your own
//! workflows:
//!
//! ```
//! use std::time::Duration;
//! use durable_yield::{LocalRunner, StepError, Workflow};
//!
//! async fn double(mut wf: Workflow, n: u64) -> Result<u64, StepError> {
//!     let doubled: u64 = wf.step("double", move |_| async move { Ok(n * 2) }).await?;
//!     wf.wait("nap", Duration::from_secs(3600)).await;
//!     Ok(doubled)
//! }
//!
//! # tokio_test_block_on(async {
//! let run = LocalRunner::new().run(&double, &21).await.unwrap();
//! assert_eq!(run.result, Some(42));
//! assert_eq!(run.invocations, 2); // the wait suspended the first one
//! assert_eq!(run.elapsed, Duration::from_secs(3600)); // virtual time
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::WorkflowFn;
use crate::driver::{
    CheckpointBatching, InvocationError, InvocationSummary, run_invocation_traced,
};
use crate::model::{
    ErrorObject, ExecutionDetails, ExecutionState, IdMap, InvocationInput, Millis, Operation,
    OperationId, OperationStatus, OperationType,
};
use crate::plugin::Plugins;
use crate::service::ServiceError;

mod answers;
mod execution;
mod op_index;
mod rules;
mod service;
mod timeline;

pub use answers::CallbackAnswer;
pub use execution::{CrashPoint, LocalExecution};

use answers::Answer;
use service::{Closed, ExecState, LocalService};
use std::collections::HashMap;
pub use timeline::{Timeline, TimelineEvent};

/// 2026-01-01T00:00:00Z, where the virtual clock starts by default.
pub const DEFAULT_START_TIME: Millis = 1_767_225_600_000;

/// The largest payload the service accepts (PROTOCOL.md §8).
pub const MAX_PAYLOAD_CHARS: usize = 6_291_456;

/// How the local execution stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ExecutionStatus {
    /// Not finished.
    Running,
    /// Finished with a result.
    Succeeded,
    /// Finished with an error.
    Failed,
    /// Still going on when its time ran out
    /// ([`LocalRunner::execution_timeout`]).
    TimedOut,
}

impl fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExecutionStatus::Running => "RUNNING",
            ExecutionStatus::Succeeded => "SUCCEEDED",
            ExecutionStatus::Failed => "FAILED",
            ExecutionStatus::TimedOut => "TIMED_OUT",
        })
    }
}

/// A problem with the local run itself (not a failed execution, which is
/// a normal [`LocalRun`] with status `Failed`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LocalError {
    /// The input could not be encoded as JSON.
    #[error("the workflow input could not be encoded as JSON: {0}")]
    Input(String),
    /// The execution did not finish within the invocation budget.
    #[error(
        "the execution did not finish within {0} invocations: raise the budget with \
         LocalRunner::max_invocations, or look for a wait or retry loop that never ends"
    )]
    TooManyInvocations(u32),
    /// The execution waits for callbacks that nothing will answer (no
    /// timer is left either).
    #[error(
        "the execution waits for {0}, and nothing will answer: answer it with \
         LocalRunner::answer_callback, or drive the execution with LocalRunner::start and \
         LocalExecution::send_callback_success"
    )]
    Blocked(String),
    /// No callback of this execution has this id, or it is not waiting
    /// for an answer any more.
    #[error("{0}")]
    UnknownCallback(String),
    /// The execution succeeded but its result does not decode into the
    /// requested type.
    #[error("the execution result could not be decoded: {0}")]
    Result(String),
}

/// The end of a local run.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LocalRun<O> {
    /// `Succeeded` or `Failed`.
    pub status: ExecutionStatus,
    /// The decoded result, when it succeeded.
    pub result: Option<O>,
    /// The error, when it failed.
    pub error: Option<ErrorObject>,
    /// Every operation, in the order they were created.
    pub operations: Vec<Operation>,
    /// How many times the workflow was invoked.
    pub invocations: u32,
    /// Virtual time from start to end.
    pub elapsed: Duration,
    /// What happened, in order.
    pub timeline: Timeline,
    /// The execution's ARN.
    pub arn: String,
    /// The functions the execution invoked (chained invokes), in order,
    /// each with its own run when it was a workflow.
    pub invoked: Vec<InvokedFunction>,
}

/// A function a local execution invoked.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct InvokedFunction {
    /// The chained invoke's operation.
    pub operation_id: OperationId,
    /// The name it was invoked by.
    pub function_name: String,
    /// Its input (JSON text).
    pub input: String,
    /// Its own execution, when it is a registered workflow.
    pub run: Option<Box<LocalRun<serde_json::Value>>>,
}

/// The outcome of a registered function: its result (JSON text) or its
/// error, the virtual time it took, and its run.
type FunctionRun = (
    Result<String, ErrorObject>,
    Millis,
    Option<Box<LocalRun<serde_json::Value>>>,
);

/// What an invoked function runs with: the invoking execution's virtual
/// time, its runner's plugins and trace headers, and the trace header the
/// invoke's START carried.
#[derive(Clone)]
pub(crate) struct InvokeEnv {
    pub(crate) start: Millis,
    pub(crate) plugins: Plugins,
    pub(crate) trace_headers: bool,
    pub(crate) trace_header: Option<String>,
}

/// A function chained invokes can call, type-erased.
pub(crate) type LocalFunction = Arc<
    dyn Fn(
            String,
            InvokeEnv,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = FunctionRun> + Send>>
        + Send
        + Sync,
>;

impl<O> LocalRun<O> {
    /// The result, or the error the execution failed with.
    pub fn into_result(self) -> Result<O, ErrorObject> {
        match (self.result, self.error) {
            (Some(r), _) => Ok(r),
            (None, Some(e)) => Err(e),
            (None, None) => Err(ErrorObject::new("NoResult", "the execution has no result")),
        }
    }

    /// The operations with this name, in order.
    pub fn operations_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Operation> {
        self.operations
            .iter()
            .filter(move |op| op.name.as_deref() == Some(name))
    }

    /// The first operation with this name.
    pub fn operation(&self, name: &str) -> Option<&Operation> {
        self.operations
            .iter()
            .find(|op| op.name.as_deref() == Some(name))
    }

    /// The run as an execution history in the service's shape, for the
    /// `durable-yield timeline` tool and anything else that reads
    /// `GetDurableExecutionHistory` output:
    /// `std::fs::write("history.json", run.history().to_json())`.
    pub fn history(&self) -> crate::history::ExecutionHistory {
        self.timeline
            .to_history_with(&self.arn, &self.operations, &self.invoked)
    }
}

/// Runs workflows in process, on a virtual clock.
#[derive(Clone)]
pub struct LocalRunner {
    start_time: Millis,
    max_invocations: u32,
    max_failed_invocations: u32,
    page_size: usize,
    batching: CheckpointBatching,
    execution_name: Option<String>,
    answer_rules: Vec<(String, CallbackAnswer)>,
    functions: HashMap<String, LocalFunction>,
    plugins: Plugins,
    trace_headers: bool,
    /// The `Root` of the trace headers, when an invoke's START named it.
    trace_root: Option<String>,
    execution_timeout: Option<Duration>,
}

impl fmt::Debug for LocalFunctionNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

struct LocalFunctionNames<'a>(&'a HashMap<String, LocalFunction>);

impl Default for LocalRunner {
    fn default() -> Self {
        LocalRunner::new()
    }
}

impl fmt::Debug for LocalRunner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalRunner")
            .field("start_time", &self.start_time)
            .field("max_invocations", &self.max_invocations)
            .field("page_size", &self.page_size)
            .field("batching", &self.batching)
            .field("execution_name", &self.execution_name)
            .field("functions", &LocalFunctionNames(&self.functions))
            .field("plugins", &self.plugins)
            .finish_non_exhaustive()
    }
}

impl LocalRunner {
    /// A runner whose clock starts at [`DEFAULT_START_TIME`], that gives up
    /// after 10,000 invocations and retries a failed invocation 5 times
    /// (as the service does).
    pub fn new() -> Self {
        LocalRunner {
            start_time: DEFAULT_START_TIME,
            max_invocations: 10_000,
            max_failed_invocations: 5,
            page_size: 1000,
            batching: CheckpointBatching::default(),
            execution_name: None,
            answer_rules: Vec::new(),
            functions: HashMap::new(),
            plugins: Plugins::default(),
            trace_headers: false,
            trace_root: None,
            execution_timeout: None,
        }
    }

    /// Gives each execution `timeout` (of virtual time), as a function's
    /// `DurableConfig.ExecutionTimeout` does: an execution still going on
    /// when it runs out ends `TIMED_OUT` (an `ExecutionTimedOut` event, the
    /// error `Execution timed out after N seconds.`), without another
    /// invocation. None by default.
    pub fn execution_timeout(mut self, timeout: Duration) -> Self {
        self.execution_timeout = Some(timeout);
        self
    }

    /// Invokes with a request id and an X-Ray trace header, as Lambda does
    /// with tracing on: the same `Root` for every invocation of an
    /// execution, a new `Parent` (the invocation's segment) for each,
    /// `Sampled=1`. Plugins see it (`InvocationStart::trace_header`):
    /// `OtelPlugin` then puts the execution on that trace and parents its
    /// `Workflow` span to the segment, as on Lambda, instead of deriving
    /// both. Off by default.
    pub fn lambda_trace_headers(mut self) -> Self {
        self.trace_headers = true;
        self
    }

    /// Registers a lifecycle [`Plugin`](crate::plugin::Plugin): it
    /// receives the hooks of every invocation of the executions this runner
    /// starts, after the plugins registered before it (as on Lambda:
    /// [`DurableHandler::plugin`](crate::lambda::DurableHandler::plugin)).
    ///
    /// # Panics
    ///
    /// If a plugin registered before it is in one of its exclusive groups
    /// ([`Plugin::exclusive_groups`](crate::plugin::Plugin::exclusive_groups):
    /// two `OtelPlugin`s, say), with a message that names both;
    /// [`LocalRunner::try_plugin`] returns that as an error instead.
    #[track_caller]
    pub fn plugin(mut self, plugin: impl crate::plugin::Plugin) -> Self {
        self.plugins.push(plugin);
        self
    }

    /// Registers a plugin shared with a
    /// [`PluginCatalog`](crate::plugin::PluginCatalog)
    /// ([`add_shared`](crate::plugin::PluginCatalog::add_shared)): naming
    /// it in [`LocalRunner::plugins_named`] as well then registers it
    /// once, with a warning, as on Lambda.
    ///
    /// # Panics
    ///
    /// As [`LocalRunner::plugin`].
    #[track_caller]
    pub fn plugin_shared<P: crate::plugin::Plugin>(mut self, plugin: std::sync::Arc<P>) -> Self {
        self.plugins.push_shared(plugin);
        self
    }

    /// Registers a lifecycle [`Plugin`](crate::plugin::Plugin) as
    /// [`LocalRunner::plugin`] does, or says why not and leaves the runner
    /// as it was: a plugin registered before it is in one of its exclusive
    /// groups.
    pub fn try_plugin(
        &mut self,
        plugin: impl crate::plugin::Plugin,
    ) -> Result<&mut Self, crate::plugin::PluginConflict> {
        self.plugins.try_push(plugin)?;
        Ok(self)
    }

    /// Registers the plugins `names` names from `catalog`, in the format
    /// of `DURABLE_EXECUTION_PLUGINS` (`"otel, metrics"`), after those
    /// registered before: what `DurableHandler::plugins_from_env` does on
    /// Lambda with that variable's value, to try a deployment's
    /// configuration locally (see [`crate::plugin::PluginCatalog`]).
    ///
    /// # Errors
    ///
    /// [`crate::plugin::PluginLoadError`], registering none of them, when
    /// `names` is malformed or names a plugin twice, names one the catalog
    /// lacks, or one that shares an exclusive group with another.
    pub fn plugins_named(
        mut self,
        catalog: &crate::plugin::PluginCatalog,
        names: &str,
    ) -> Result<Self, crate::plugin::PluginLoadError> {
        catalog.register(&mut self.plugins, names)?;
        Ok(self)
    }

    /// Registers a durable function that chained invokes of `name` call:
    /// each invoke runs `workflow` as its own local execution (on its own
    /// virtual clock, whose elapsed time the invoking execution waits),
    /// visible in [`LocalRun::invoked`]. This runner's plugins listen to it
    /// too; with [`LocalRunner::lambda_trace_headers`], its invocations get
    /// headers on the trace the invoke's START carried
    /// (`ChainedInvokeOptions.XAmznTraceId`), as Lambda's would.
    pub fn register_workflow<I, O, W>(mut self, name: impl Into<String>, workflow: W) -> Self
    where
        I: DeserializeOwned + 'static,
        O: Serialize + 'static,
        W: WorkflowFn<I, O>,
    {
        let workflow = Arc::new(workflow);
        let function: LocalFunction = Arc::new(move |input: String, env: InvokeEnv| {
            let workflow = workflow.clone();
            Box::pin(async move {
                // A Lambda function reads its event as JSON: an input that
                // is not (a tagged or binary codec's payload) fails the
                // invoked execution, as the function would, not as null.
                let value: serde_json::Value = match serde_json::from_str(&input) {
                    Ok(value) => value,
                    Err(e) => {
                        let error = ErrorObject::new(
                            "InvalidInput",
                            format!(
                                "the input is not JSON ({e}): a chained invoke's input is the \
                                 invoked function's event; encode it with an untagged text codec \
                                 (InvokeConfig::payload_codec)"
                            ),
                        );
                        return (Err(error), 0, None);
                    }
                };
                let start = env.start;
                let mut runner = LocalRunner::new().start_time(start);
                runner.plugins = env.plugins;
                runner.trace_headers = env.trace_headers;
                runner.trace_root = env.trace_header.as_deref().and_then(trace_root);
                let execution = match runner.start(&value) {
                    Ok(e) => e,
                    Err(e) => {
                        let error = ErrorObject::new("InvalidInput", e.to_string());
                        return (Err(error), 0, None);
                    }
                };
                for _ in 0..runner.max_invocations {
                    if execution.status() != ExecutionStatus::Running {
                        break;
                    }
                    execution.advance_time();
                    execution.invoke(&*workflow).await;
                }
                let elapsed = execution.now() - start;
                match execution.finish::<serde_json::Value>() {
                    Ok(run) => {
                        let result = match (&run.result, &run.error) {
                            (Some(v), _) => Ok(v.to_string()),
                            (None, Some(e)) => Err(e.clone()),
                            (None, None) => Err(ErrorObject::new(
                                "ChainedInvoke.Timeout",
                                "the invoked execution did not finish",
                            )),
                        };
                        (result, elapsed, Some(Box::new(run)))
                    }
                    Err(e) => (
                        Err(ErrorObject::new("InvalidOutput", e.to_string())),
                        elapsed,
                        None,
                    ),
                }
            })
        });
        self.functions.insert(name.into(), function);
        self
    }

    /// Registers a plain (not durable) function that chained invokes of
    /// `name` call: JSON in, JSON out or an error, taking no virtual time.
    pub fn register_function<F>(mut self, name: impl Into<String>, function: F) -> Self
    where
        F: Fn(serde_json::Value) -> Result<serde_json::Value, ErrorObject> + Send + Sync + 'static,
    {
        let function = Arc::new(function);
        let erased: LocalFunction = Arc::new(move |input: String, _env: InvokeEnv| {
            let function = function.clone();
            Box::pin(async move {
                let value = serde_json::from_str(&input).unwrap_or(serde_json::Value::Null);
                (function(value).map(|v| v.to_string()), 0, None)
            })
        });
        self.functions.insert(name.into(), erased);
        self
    }

    /// Answers every callback named `name`, when it starts (or
    /// [`CallbackAnswer::after`] a virtual delay): a test stands in for
    /// the person or system that would answer, without threads or sleeps.
    ///
    /// ```
    /// use std::time::Duration;
    /// use durable_yield::local::CallbackAnswer;
    /// use durable_yield::{LocalRunner, StepError, Workflow};
    ///
    /// async fn approve(mut wf: Workflow, _: ()) -> Result<bool, StepError> {
    ///     let approval = wf.create_callback::<bool>("approval").await;
    ///     Ok(wf.callback_result(&approval).await?)
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let run = LocalRunner::new()
    ///     .answer_callback("approval", CallbackAnswer::success(&true).after(Duration::from_secs(7200)))
    ///     .run(&approve, &())
    ///     .await
    ///     .unwrap();
    /// assert_eq!(run.result, Some(true));
    /// assert_eq!(run.elapsed, Duration::from_secs(7200));
    /// # });
    /// ```
    pub fn answer_callback(mut self, name: impl Into<String>, answer: CallbackAnswer) -> Self {
        self.answer_rules.push((name.into(), answer));
        self
    }

    /// Names the executions this runner starts (1 to 64 characters of
    /// `[A-Za-z0-9_-]`), as `X-Amz-Durable-Execution-Name` does on AWS.
    /// By default every execution gets a new unique name. Either way each
    /// execution gets a unique id, the last segment of its ARN, so two
    /// executions never share an ARN (or an idempotency key).
    pub fn execution_name(mut self, name: impl Into<String>) -> Self {
        self.execution_name = Some(name.into());
        self
    }

    /// Groups checkpoint updates into requests as `batching` says (the
    /// Lambda handler takes the same setting).
    pub fn batching(mut self, batching: CheckpointBatching) -> Self {
        self.batching = batching;
        self
    }

    /// Starts the virtual clock at `epoch_ms`.
    pub fn start_time(mut self, epoch_ms: Millis) -> Self {
        self.start_time = epoch_ms;
        self
    }

    /// Gives up (with [`LocalError::TooManyInvocations`]) after `n` invocations.
    pub fn max_invocations(mut self, n: u32) -> Self {
        self.max_invocations = n.max(1);
        self
    }

    /// Fails the execution (`InvocationFailed`) after `n` consecutive
    /// failed invocations (crashes, transient codec or service errors);
    /// 5 by default, as AWS's emulator gives up after 5. A test that makes
    /// many invocations fail on purpose raises it.
    pub fn max_failed_invocations(mut self, n: u32) -> Self {
        self.max_failed_invocations = n.max(1);
        self
    }

    /// Sends at most `n` operations in the invocation envelope; the rest
    /// are paged in with `GetDurableExecutionState`, as the service does
    /// for large histories.
    pub fn page_size(mut self, n: usize) -> Self {
        self.page_size = n.max(1);
        self
    }

    /// Creates an execution with `input` and no invocation yet, for driving
    /// invocation by invocation.
    pub fn start<I: Serialize + ?Sized>(&self, input: &I) -> Result<LocalExecution, LocalError> {
        let input = serde_json::to_string(input).map_err(|e| LocalError::Input(e.to_string()))?;
        let unique = unique_id();
        let name = match &self.execution_name {
            Some(name) => name.clone(),
            None => format!("local-{}", &unique[..12]),
        };
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(LocalError::Input(format!(
                "invalid execution name {name:?}: it must be 1 to 64 characters of [A-Za-z0-9_-]"
            )));
        }
        let id = OperationId::new(&unique).map_err(|e| LocalError::Input(e.to_string()))?;
        let mut execution = Operation::new(id, OperationType::Execution, OperationStatus::Started);
        execution.start_timestamp = Some(self.start_time);
        execution.execution_details = Some(Arc::new(fields!(ExecutionDetails {
            input_payload: Some(input.into()),
        })));
        let mut index = op_index::OpIndex::default();
        index.insert(&id, 0);
        let state = ExecState {
            arn: format!(
                "arn:aws:lambda:local:000000000000:function:local:$LATEST/durable-execution/{name}/{unique}"
            ),
            ops: vec![execution],
            index,
            start: self.start_time,
            timeout: self.execution_timeout,
            now: self.start_time,
            token: None,
            token_seq: 0,
            closed: None,
            invocations: 0,
            failed_invocations: 0,
            idle_pendings: 0,
            updated: Vec::new(),
            timeline: timeline::Log::new(self.start_time),
            checkpoint_requests: 0,
            crashes: Vec::new(),
            crashed: false,
            callbacks: IdMap::default(),
            callback_ids: std::collections::HashMap::new(),
            answer_rules: self.answer_rules.clone(),
            scheduled: Vec::new(),
            functions: self.functions.keys().cloned().collect(),
            pending_invokes: Vec::new(),
            invoke_results: Vec::new(),
            invoked: Vec::new(),
            pages: None,
        };
        Ok(LocalExecution {
            state: Arc::new(Mutex::new(state)),
            functions: Arc::new(self.functions.clone()),
            page_size: self.page_size,
            max_failed_invocations: self.max_failed_invocations,
            batching: self.batching.clone(),
            plugins: self.plugins.clone(),
            trace_headers: self.trace_headers,
            trace_root: self.trace_root.clone(),
        })
    }

    /// Runs `workflow` on `input` to completion.
    pub async fn run<I, O, W>(&self, workflow: &W, input: &I) -> Result<LocalRun<O>, LocalError>
    where
        I: Serialize + DeserializeOwned,
        O: Serialize + DeserializeOwned + 'static,
        W: WorkflowFn<I, O> + ?Sized,
    {
        let execution = self.start(input)?;
        loop {
            if execution.status() != ExecutionStatus::Running {
                return execution.into_run();
            }
            if execution.invocations() >= self.max_invocations {
                return Err(LocalError::TooManyInvocations(self.max_invocations));
            }
            if !execution.advance_time() && execution.invocations() > 0 {
                if let Some(waiting) = execution.blocked_on() {
                    return Err(LocalError::Blocked(waiting));
                }
            }
            execution.invoke(workflow).await;
        }
    }
}

/// The function a chained invoke names: a name, `name:qualifier`, or an
/// ARN (`arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]`).
pub(crate) fn resolve_function(name: &str) -> String {
    let name = match name.split_once(":function:") {
        Some((_, rest)) => rest,
        None => name,
    };
    name.split(':').next().unwrap_or(name).to_owned()
}

/// A fresh id for a local execution: 32 random hex characters.
fn unique_id() -> String {
    format!("{:032x}", crate::service::os_entropy())
}

/// The `Root=` value of an X-Ray trace header.
fn trace_root(header: &str) -> Option<String> {
    header
        .split(';')
        .find_map(|part| part.trim().strip_prefix("Root="))
        .map(str::to_owned)
}

//! Lifecycle plugins: hooks into invocations, operations and step attempts,
//! for metrics, tracing exporters and audit logs.
//!
//! A [`Plugin`] is registered on the Lambda handler
//! ([`DurableHandler::plugin`](crate::lambda::DurableHandler::plugin)) or on
//! the [`LocalRunner`](crate::LocalRunner::plugin). At the start of every
//! invocation each plugin is asked, in registration order, for the
//! [`InvocationHooks`] of that invocation; those then receive every hook of
//! the invocation, also in registration order.
//!
//! # Order
//!
//! For one invocation:
//!
//! 1. [`Plugin::prepare`] (awaited, for fetching what codecs need), then
//!    [`Plugin::invocation`] (creates the invocation's hooks) and
//!    [`InvocationHooks::on_invocation_start`]: after the envelope is read
//!    and every page of the history loaded, before any workflow code runs.
//! 2. While the workflow runs, for each operation it reaches:
//!    [`InvocationHooks::on_operation_start`] when the workflow reaches an
//!    unfinished operation (new work, or work an earlier invocation started
//!    and that goes on: a wait still running, a step waiting for its next
//!    attempt); for a step, [`InvocationHooks::on_attempt_start`] just before
//!    its body runs and [`InvocationHooks::on_attempt_end`] as soon as it
//!    returned (or panicked); [`InvocationHooks::on_operation_end`] the
//!    first time the operation's outcome is known in this invocation: an
//!    end decided here once the service's answer to its checkpoint is merged
//!    (so [`OperationEvent::record`] holds the recorded end, its result and
//!    timestamps), an end the service decided (a wait that is over) when
//!    its answer arrives. [`InvocationHooks::on_function_start`] and
//!    [`InvocationHooks::on_function_end`] wrap each run of user code: a
//!    step body's attempt (after `on_attempt_start`, before
//!    `on_attempt_end`), and the code of a context (a child context, a map
//!    item, a parallel branch, a wait-for-callback) each time an invocation
//!    runs it, ending `INCOMPLETE` if it is still unfinished when the
//!    invocation ends (or its batch ended without it); at most one start
//!    and one end per run. [`InvocationHooks::on_operation_change`] follows
//!    each checkpoint answer that carried operations, once they are merged.
//!    An operation that finished before this invocation began is reported
//!    (ended, `replayed == true`) only if it changed since the last
//!    invocation: the service lists it (`UpdatedOperationIds`: a wait whose
//!    timer fired, a callback that was answered), or it is a wait, callback
//!    or chained invoke the service finished after the SDK last wrote to the
//!    history (AWS's emulator leaves answered callbacks out of the list);
//!    others replay silently. Each operation is reported started and ended
//!    at most once per invocation. Before a new chained invoke's START is
//!    sent, [`InvocationHooks::trace_header`] may give it the caller's
//!    trace header. [`InvocationHooks::scope`] is asked once for the
//!    workflow's code (after `on_invocation_start`), once for each step
//!    attempt and once for the code of each context that runs (both after
//!    their `on_function_start`, which comes before that code runs): the
//!    [`Scope`] it returns is entered around every poll of that code (see
//!    [Scopes](#scopes)).
//! 3. [`InvocationHooks::on_invocation_end`]: after the outcome is final
//!    (every checkpoint sent), just before the response is returned, also
//!    when the invocation failed and the service will retry it.
//!
//! The same hooks fire on replay invocations, and on the local runner as on
//! Lambda.
//!
//! # Isolation
//!
//! A hook that returns an error or panics never changes the execution's
//! outcome or its history, nor what another plugin receives: each call is
//! isolated (a panic is caught), and the first failure of each plugin in an
//! invocation is logged (`warn`), later ones counted and logged once at the
//! end of the invocation. A plugin whose hook failed still receives every
//! later hook, [`InvocationHooks::on_invocation_start`] included; only one
//! whose instance could not be created ([`Plugin::invocation`] failed) gets
//! nothing in that invocation, as AWS's SDKs skip a plugin whose
//! `create_plugin` fails. Hooks run one plugin after another, on the task
//! that drives the invocation (which also runs the workflow's code and its
//! step bodies), between workflow steps: keep them short (hand heavy work,
//! like exporting, to a background task).
//!
//! # Exclusive groups
//!
//! Plugins that must not run together (two views of the same traces) say
//! so with [`Plugin::exclusive_groups`]: a plugin is refused when one
//! registered before it shares a group, at registration, before any
//! invocation (as AWS's SDKs refuse a second plugin of one
//! `exclusive_group` at cold start): the builders' `plugin` panics with a
//! message that names both plugins and the group, their `try_plugin`
//! returns it as a [`PluginConflict`]. Both views of
//! `durable_yield::otel::OtelPlugin` (feature `otel`) are in
//! [`OTEL_VIEW_GROUP`].
//!
//! # Scopes
//!
//! A plugin can make something current while user code runs, the way
//! AWS's OpenTelemetry plugins make an operation's span the active
//! OpenTelemetry context (so that the spans user code starts nest under it
//! and its log lines carry its trace and span ids): it answers
//! [`InvocationHooks::scope`] with a [`Scope`]. Every poll of the code (a
//! step body is a future, polled as often as it needs, between other
//! bodies' polls) runs inside the scope ([`Scope::run`]), on the thread
//! that polls it; scopes of several plugins nest in registration order
//! (the first outermost). The
//! workflow's scope covers the code of the workflow (it runs between
//! durable operations) and of its contexts; a context's scope is entered
//! inside it around each resumption of that context's code (a child
//! context, a map item, a parallel branch, a wait-for-callback); an
//! attempt's scope covers its step body (or wait-for-condition check).
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use durable_yield::plugin::{HookResult, InvocationHooks, InvocationStart, OperationEvent, Plugin};
//! use durable_yield::{BoxError, LocalRunner, StepError, Workflow};
//!
//! /// Counts operations that ended, per invocation.
//! #[derive(Default)]
//! struct Counter(Arc<Mutex<Vec<usize>>>);
//!
//! struct Counting(Arc<Mutex<Vec<usize>>>, usize);
//!
//! impl Plugin for Counter {
//!     fn invocation(&self, _: &InvocationStart<'_>) -> Result<Box<dyn InvocationHooks>, BoxError> {
//!         Ok(Box::new(Counting(self.0.clone(), 0)))
//!     }
//! }
//!
//! impl InvocationHooks for Counting {
//!     fn on_operation_end(&mut self, _: &OperationEvent<'_>) -> HookResult {
//!         self.1 += 1;
//!         Ok(())
//!     }
//!     fn on_invocation_end(&mut self, _: &durable_yield::plugin::InvocationEnd<'_>) -> HookResult {
//!         self.0.lock().unwrap().push(self.1);
//!         Ok(())
//!     }
//! }
//!
//! async fn two_steps(mut wf: Workflow, _: ()) -> Result<u32, StepError> {
//!     let a: u32 = wf.step("a", |_| async { Ok(1) }).await?;
//!     wf.wait("pause", std::time::Duration::from_secs(5)).await;
//!     let b: u32 = wf.step("b", |_| async { Ok(2) }).await?;
//!     Ok(a + b)
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let counter = Counter::default();
//! let ended = counter.0.clone();
//! let run = LocalRunner::new().plugin(counter).run(&two_steps, &()).await.unwrap();
//! assert_eq!(run.result, Some(3));
//! // First invocation: step a. Second: the wait (its timer fired) and step b.
//! assert_eq!(*ended.lock().unwrap(), vec![1, 2]);
//! # });
//! ```

use std::collections::HashMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use futures_util::future::BoxFuture;

use crate::BoxError;
use crate::model::{
    ErrorObject, Millis, Operation, OperationId, OperationStatus, OperationType, Payload,
};
pub use durable_yield_interpreter::FunctionOutcome;

mod catalog;
mod groups;
mod scope;

pub use catalog::{PLUGINS_ENV, PluginCatalog, PluginLoadError};
pub use groups::{OTEL_VIEW_GROUP, PluginConflict};
use scope::ContextScopes;
pub(crate) use scope::within;
pub use scope::{Scope, UserCode};

/// What a hook returns: an error is logged, never acted upon.
pub type HookResult = Result<(), BoxError>;

/// A lifecycle plugin: builds the hooks of each invocation.
pub trait Plugin: Send + Sync + 'static {
    /// Runs before anything else of the invocation, once every page of the
    /// history is loaded, and the invocation waits for it: for work that
    /// must be done before workflow code replays and cannot be done
    /// synchronously inside a codec, such as fetching the keys the
    /// recorded payloads name (`durable_yield::kms::KmsKeyring`, feature
    /// `kms`).
    /// Plugins prepare one after another, in registration order.
    ///
    /// An error fails the invocation (nothing is checkpointed), so that
    /// the service invokes the function again: return one only for
    /// failures worth retrying (the network, a throttle). Does nothing by
    /// default.
    fn prepare<'a>(&'a self, operations: &'a [Operation]) -> BoxFuture<'a, Result<(), BoxError>> {
        let _ = operations;
        Box::pin(std::future::ready(Ok(())))
    }

    /// Creates the plugin's instance for one invocation (as AWS's SDKs'
    /// `create_plugin`): called before the workflow runs, it returns the
    /// hooks that receive this invocation, starting with
    /// [`InvocationHooks::on_invocation_start`]. An error (or a panic)
    /// skips the plugin for this invocation (logged); keep it to building
    /// the instance, and do the work of the start in
    /// `on_invocation_start`, whose failure does not.
    fn invocation(&self, start: &InvocationStart<'_>)
    -> Result<Box<dyn InvocationHooks>, BoxError>;

    /// The plugin's name in log lines. Its type name by default.
    fn name(&self) -> &str {
        std::any::type_name::<Self>()
    }

    /// The exclusive groups the plugin belongs to: of the plugins
    /// registered on one handler or runner, at most one belongs to each
    /// group, so that competing instrumentation (two views of the same
    /// traces, say) is refused when it is registered, before any
    /// invocation, as AWS's SDKs refuse plugins of one `exclusive_group`.
    /// `durable_yield::otel::OtelPlugin` (feature `otel`) belongs to
    /// [`OTEL_VIEW_GROUP`], whichever view it shows. Read whenever a plugin
    /// is registered on the same handler or runner: keep it constant. None
    /// by default.
    ///
    /// ```
    /// use durable_yield::plugin::{InvocationHooks, InvocationStart, Plugin};
    /// use durable_yield::{BoxError, LocalRunner};
    ///
    /// struct Metrics(&'static str);
    /// struct Hooks;
    /// impl InvocationHooks for Hooks {}
    /// impl Plugin for Metrics {
    ///     fn invocation(&self, _: &InvocationStart<'_>) -> Result<Box<dyn InvocationHooks>, BoxError> {
    ///         Ok(Box::new(Hooks))
    ///     }
    ///     fn exclusive_groups(&self) -> &[&str] {
    ///         &["my-metrics"]
    ///     }
    /// }
    ///
    /// let mut runner = LocalRunner::new();
    /// runner.try_plugin(Metrics("a")).unwrap();
    /// let refused = runner.try_plugin(Metrics("b")).err().unwrap();
    /// assert_eq!(refused.group(), "my-metrics");
    /// ```
    fn exclusive_groups(&self) -> &[&str] {
        &[]
    }
}

/// The hooks of one invocation (see the [module docs](self) for when each
/// fires). Every method does nothing by default.
pub trait InvocationHooks: Send {
    /// The invocation starts: called once, right after
    /// [`Plugin::invocation`] created these hooks, before any workflow code
    /// runs. A failure is logged; the hooks still receive the rest of the
    /// invocation.
    fn on_invocation_start(&mut self, start: &InvocationStart<'_>) -> HookResult {
        let _ = start;
        Ok(())
    }
    /// The service's answer to a checkpoint changed operations: called
    /// once per answer that carried operations, after they were merged,
    /// with those operations ([`OperationChange::updated`]) and the whole
    /// history as the invocation now knows it
    /// ([`OperationChange::operations`], which holds every updated one).
    fn on_operation_change(&mut self, change: &OperationChange<'_>) -> HookResult {
        let _ = change;
        Ok(())
    }
    /// User code starts running for an operation: a step body (each
    /// attempt; also a wait-for-condition check), or the code of a context
    /// (a child context, a map item, a parallel branch, a
    /// wait-for-callback), once per invocation that runs it. Called on the
    /// task that runs the code, just before it runs.
    fn on_function_start(&mut self, event: &FunctionEvent<'_>) -> HookResult {
        let _ = event;
        Ok(())
    }
    /// User code stopped running for an operation
    /// ([`FunctionEvent::outcome`]: it returned a value, an error, or, for
    /// a context, stopped unfinished at the end of the invocation). Called
    /// once for each [`InvocationHooks::on_function_start`].
    fn on_function_end(&mut self, event: &FunctionEvent<'_>) -> HookResult {
        let _ = event;
        Ok(())
    }
    /// The workflow reached an unfinished operation.
    fn on_operation_start(&mut self, event: &OperationEvent<'_>) -> HookResult {
        let _ = event;
        Ok(())
    }

    /// An operation's outcome became known in this invocation.
    fn on_operation_end(&mut self, event: &OperationEvent<'_>) -> HookResult {
        let _ = event;
        Ok(())
    }

    /// A step attempt (or a wait-for-condition check) is about to run.
    fn on_attempt_start(&mut self, event: &AttemptEvent<'_>) -> HookResult {
        let _ = event;
        Ok(())
    }

    /// A step attempt returned or panicked ([`AttemptEvent::outcome`]).
    fn on_attempt_end(&mut self, event: &AttemptEvent<'_>) -> HookResult {
        let _ = event;
        Ok(())
    }

    /// The invocation is over; its outcome is final.
    fn on_invocation_end(&mut self, event: &InvocationEnd<'_>) -> HookResult {
        let _ = event;
        Ok(())
    }

    /// A chained invoke is about to be started: the X-Ray trace header
    /// (`Root=1-…;Parent=…;Sampled=…`) its START carries
    /// (`ChainedInvokeOptions.XAmznTraceId`), so that the target execution
    /// joins the caller's trace. Called after
    /// [`on_operation_start`](Self::on_operation_start) for the invoke, for
    /// new STARTs only; the first plugin that answers wins. `None` by
    /// default.
    fn trace_header(&mut self, invoke: &ChainedInvokeStart<'_>) -> Option<String> {
        let _ = invoke;
        None
    }

    /// What to make current while `code` runs (see [Scopes](self#scopes)):
    /// asked once for the workflow's code, right after
    /// [`on_invocation_start`](Self::on_invocation_start), and once per
    /// step attempt and per context's code, right after its
    /// [`on_function_start`](Self::on_function_start). `None` (the
    /// default) enters nothing. A panic counts as `None`.
    fn scope(&mut self, code: UserCode<'_>) -> Option<Arc<dyn Scope>> {
        let _ = code;
        None
    }
}

/// A chained invoke about to be started ([`InvocationHooks::trace_header`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ChainedInvokeStart<'a> {
    /// The caller's execution ARN.
    pub execution_arn: &'a str,
    /// The invoke's operation id.
    pub id: &'a OperationId,
    /// The context it runs in (none at the top level).
    pub parent_id: Option<&'a OperationId>,
    /// The function it invokes.
    pub function_name: &'a str,
}

/// The start of an invocation.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct InvocationStart<'a> {
    /// The execution's ARN.
    pub execution_arn: &'a str,
    /// The Lambda request id (none on the local runner).
    pub request_id: Option<&'a str>,
    /// The X-Ray trace header Lambda passed (`Root=1-…;Parent=…;Sampled=…`),
    /// if any: the trace the durable service keeps for the execution.
    pub trace_header: Option<&'a str>,
    /// Whether this is the execution's first invocation (the history holds
    /// nothing but the EXECUTION operation).
    pub first_invocation: bool,
    /// When the execution started (epoch ms), as the service recorded it.
    pub execution_started_at: Option<Millis>,
    /// The execution's input as the service recorded it (the EXECUTION
    /// operation's `InputPayload`: JSON unless the execution was started
    /// otherwise; `serde_json::from_str` it to read it), as AWS's SDKs hand
    /// it to plugins (`execution_input`, `executionInput`). None when the
    /// execution was started without one.
    pub execution_input: Option<&'a Payload>,
    /// The history the invocation starts from, every page loaded.
    pub operations: &'a [Operation],
    /// The operations the service changed since the last invocation.
    pub updated_operation_ids: &'a [String],
    /// The runtime's clock (epoch ms; the virtual clock on the local
    /// runner).
    pub at: Millis,
    /// The same instant as `at`, at the clock's full resolution (the
    /// system clock's on Lambda; the local runner's virtual clock has
    /// milliseconds).
    pub time: SystemTime,
}

/// How an invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InvocationEndStatus {
    /// The execution succeeded.
    Succeeded,
    /// The execution failed.
    Failed,
    /// The execution waits; the service invokes the function again.
    Pending,
    /// The invocation itself failed (a service call did not go through):
    /// the service retries it.
    Retry,
}

impl InvocationEndStatus {
    /// `SUCCEEDED`, `FAILED`, `PENDING` or `RETRY`.
    pub fn as_str(self) -> &'static str {
        match self {
            InvocationEndStatus::Succeeded => "SUCCEEDED",
            InvocationEndStatus::Failed => "FAILED",
            InvocationEndStatus::Pending => "PENDING",
            InvocationEndStatus::Retry => "RETRY",
        }
    }

    /// Whether the execution is over (succeeded or failed).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            InvocationEndStatus::Succeeded | InvocationEndStatus::Failed
        )
    }
}

impl fmt::Display for InvocationEndStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The end of an invocation.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct InvocationEnd<'a> {
    /// The execution's ARN.
    pub execution_arn: &'a str,
    /// How it ended.
    pub status: InvocationEndStatus,
    /// The execution's error (`Failed`), or why the invocation failed
    /// (`Retry`).
    pub error: Option<&'a ErrorObject>,
    /// The execution's result (`Succeeded`), as returned to the service
    /// (empty when a result too large for the response was checkpointed).
    pub result: Option<&'a Payload>,
    /// The Lambda request id (none on the local runner).
    pub request_id: Option<&'a str>,
    /// Whether this was the execution's first invocation.
    pub first_invocation: bool,
    /// When the execution started (epoch ms), as the service recorded it.
    pub execution_started_at: Option<Millis>,
    /// The execution's input, as in [`InvocationStart::execution_input`].
    pub execution_input: Option<&'a Payload>,
    /// The history as the invocation ends, every checkpoint merged.
    pub operations: &'a [Operation],
    /// The runtime's clock (epoch ms).
    pub at: Millis,
    /// The same instant as `at`, at the clock's full resolution (the
    /// system clock's on Lambda; the local runner's virtual clock has
    /// milliseconds).
    pub time: SystemTime,
}

/// An operation started or ended.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OperationEvent<'a> {
    /// The operation id.
    pub id: &'a OperationId,
    /// The id of the context it belongs to (none at the root).
    pub parent_id: Option<&'a OperationId>,
    /// Its name.
    pub name: Option<&'a str>,
    /// Its type.
    pub op_type: OperationType,
    /// Its subtype (`Step`, `Wait`, `RunInChildContext`, `Map`, ...).
    pub sub_type: Option<&'a str>,
    /// Whether an earlier invocation started it (start), or it finished
    /// before this invocation began (end).
    pub replayed: bool,
    /// Its status: `STARTED` when new, as recorded when replayed, terminal
    /// at the end.
    pub status: OperationStatus,
    /// The error it ended with.
    pub error: Option<&'a ErrorObject>,
    /// The result it ended with, as checkpointed (the serialized value), if
    /// it succeeded with one.
    pub result: Option<&'a Payload>,
    /// For a step or a wait-for-condition: the attempt that ended (at the
    /// end), or the attempt about to run (at the start), from 1.
    pub attempt: Option<u32>,
    /// Its record in the history as the invocation knows it, if any (start
    /// and end timestamps, details). At an end, the record with the end
    /// (unless the invocation failed before the service answered, or the
    /// end was held back by `CheckpointBatching::max_delay` and sent at the end).
    pub record: Option<&'a Operation>,
    /// The runtime's clock (epoch ms).
    pub at: Millis,
    /// The same instant as `at`, at the clock's full resolution (the
    /// system clock's on Lambda; the local runner's virtual clock has
    /// milliseconds).
    pub time: SystemTime,
}

/// The service's answer to a checkpoint changed operations.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OperationChange<'a> {
    /// The execution's ARN.
    pub execution_arn: &'a str,
    /// The operations the answer carried (new or changed), as merged.
    pub updated: &'a [Operation],
    /// Every operation the invocation knows of, the updated ones included.
    pub operations: &'a [Operation],
    /// The runtime's clock (epoch ms).
    pub at: Millis,
    /// The same instant as `at`, at the clock's full resolution (the
    /// system clock's on Lambda; the local runner's virtual clock has
    /// milliseconds).
    pub time: SystemTime,
}

/// User code started or stopped running for an operation.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FunctionEvent<'a> {
    /// The operation id, as checkpointed.
    pub id: &'a OperationId,
    /// The id of the context it belongs to, as checkpointed (none at the
    /// root).
    pub parent_id: Option<&'a OperationId>,
    /// Its name.
    pub name: Option<&'a str>,
    /// Its type: `STEP` for a step body or a check, `CONTEXT` for a
    /// context's code.
    pub op_type: OperationType,
    /// Its subtype (`Step`, `WaitForCondition`, `RunInChildContext`,
    /// `MapIteration`, `ParallelBranch`, `WaitForCallback`, or a step's or
    /// child context's own: `StepConfig::sub_type`, `ChildConfig::sub_type`).
    pub sub_type: Option<&'a str>,
    /// The attempt of a step body or check, from 1 (none for a context).
    pub attempt: Option<u32>,
    /// Whether the context's code runs to rebuild a result too large to
    /// have been checkpointed (`ReplayChildren`): everything in it
    /// replays, nothing is recorded.
    pub replay_children: bool,
    /// Whether an earlier invocation recorded the context (it runs again
    /// to go on). Always false for a step body: see `attempt`.
    pub replayed: bool,
    /// How it stopped (none at the start).
    pub outcome: Option<FunctionOutcome>,
    /// The error it failed with.
    pub error: Option<&'a ErrorObject>,
    /// The runtime's clock (epoch ms).
    pub at: Millis,
    /// The same instant as `at`, at the clock's full resolution (the
    /// system clock's on Lambda; the local runner's virtual clock has
    /// milliseconds).
    pub time: SystemTime,
}

/// A step attempt started or ended.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AttemptEvent<'a> {
    /// The step's operation id.
    pub id: &'a OperationId,
    /// The id of the context it runs in (none at the root).
    pub parent_id: Option<&'a OperationId>,
    /// The step's name.
    pub name: Option<&'a str>,
    /// `Step`, `WaitForCondition` for a check, or the step's own
    /// (`StepConfig::sub_type`).
    pub sub_type: &'a str,
    /// The attempt, from 1.
    pub attempt: u32,
    /// How it ended (none at the start).
    pub outcome: Option<AttemptOutcome>,
    /// The error it failed with.
    pub error: Option<&'a ErrorObject>,
    /// The runtime's clock (epoch ms).
    pub at: Millis,
    /// The same instant as `at`, at the clock's full resolution (the
    /// system clock's on Lambda; the local runner's virtual clock has
    /// milliseconds).
    pub time: SystemTime,
}

/// How a step attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// The body returned a value.
    Succeeded,
    /// The body returned an error or panicked.
    Failed,
}

impl AttemptOutcome {
    /// `SUCCEEDED` or `FAILED`.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Succeeded => "SUCCEEDED",
            AttemptOutcome::Failed => "FAILED",
        }
    }
}

/// The plugins registered on a runtime.
#[derive(Clone, Default)]
pub(crate) struct Plugins(Vec<Arc<dyn Plugin>>);

impl fmt::Debug for Plugins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|p| p.name()))
            .finish()
    }
}

impl Plugins {
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Lets every plugin prepare the invocation; the first error (as
    /// `plugin name: error`) fails it.
    pub(crate) async fn prepare(&self, operations: &[Operation]) -> Result<(), String> {
        for plugin in &self.0 {
            if let Err(error) = plugin.prepare(operations).await {
                return Err(format!(
                    "plugin {} could not prepare the invocation: {error}",
                    plugin.name()
                ));
            }
        }
        Ok(())
    }

    /// Calls every plugin's invocation-start hook.
    pub(crate) fn start(&self, start: &InvocationStart<'_>) -> Active {
        let mut hooks = Vec::with_capacity(self.0.len());
        for plugin in &self.0 {
            let name = plugin.name();
            match catch_unwind(AssertUnwindSafe(|| plugin.invocation(start))) {
                Ok(Ok(h)) => hooks.push(Hooked {
                    plugin: plugin.clone(),
                    hooks: h,
                    failures: 0,
                }),
                Ok(Err(error)) => tracing::warn!(
                    plugin = name,
                    %error,
                    "a plugin failed at invocation start; it is skipped for this invocation"
                ),
                Err(panic) => tracing::warn!(
                    plugin = name,
                    panic = %durable_yield_interpreter::__private::panic_message(panic.as_ref()),
                    "a plugin panicked at invocation start; it is skipped for this invocation"
                ),
            }
        }
        Active {
            hooks,
            contexts: ContextScopes::default(),
        }
    }
}

struct Hooked {
    plugin: Arc<dyn Plugin>,
    hooks: Box<dyn InvocationHooks>,
    failures: u32,
}

/// The hooks of one invocation.
pub(crate) struct Active {
    hooks: Vec<Hooked>,
    contexts: ContextScopes,
}

impl Active {
    pub(crate) fn none() -> Self {
        Active {
            hooks: Vec::new(),
            contexts: ContextScopes::default(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.hooks.is_empty()
    }

    /// Asks the plugins, in order, for a chained invoke's trace header;
    /// the first answer wins (a panic counts as none).
    pub(crate) fn trace_header(&mut self, invoke: &ChainedInvokeStart<'_>) -> Option<String> {
        self.hooks.iter_mut().find_map(|h| {
            catch_unwind(AssertUnwindSafe(|| h.hooks.trace_header(invoke)))
                .ok()
                .flatten()
        })
    }

    /// Calls `hook` on every plugin in order, catching errors and panics.
    pub(crate) fn each(
        &mut self,
        hook: &'static str,
        mut call: impl FnMut(&mut dyn InvocationHooks) -> HookResult,
    ) {
        for h in &mut self.hooks {
            let failure = match catch_unwind(AssertUnwindSafe(|| call(h.hooks.as_mut()))) {
                Ok(Ok(())) => continue,
                Ok(Err(error)) => error.to_string(),
                Err(panic) => format!(
                    "panicked: {}",
                    durable_yield_interpreter::__private::panic_message(panic.as_ref())
                ),
            };
            h.failures += 1;
            if h.failures == 1 {
                tracing::warn!(
                    plugin = h.plugin.name(),
                    hook,
                    error = %failure,
                    "a plugin hook failed; the execution goes on (later failures of this plugin \
                     in this invocation are counted)"
                );
            }
        }
    }

    /// Logs how often each plugin failed after its first failure.
    pub(crate) fn report(&self) {
        for h in &self.hooks {
            if h.failures > 1 {
                tracing::warn!(
                    plugin = h.plugin.name(),
                    failures = h.failures,
                    "a plugin's hooks failed several times in this invocation"
                );
            }
        }
    }
}

//! One workflow per conformance requirement, doing what the requirement's
//! `handler` and `invocations` describe, in durable-yield's API. Shared by
//! the local runs (`cases.rs`) and the `conformance` function of
//! `examples/functions` (run against AWS's emulator). One file per suite;
//! `serdes.rs` holds the custom serdes several suites use.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use durable_yield::codecs::{Codec, CodecError, PayloadContext};
use durable_yield::retry::{ExponentialBackoff, FixedDelay, Jitter, NoRetry};
use durable_yield::{
    BatchResult, Branch, CallbackConfig, CallbackError, ChildConfig, CompletionPolicy, Condition,
    ConditionConfig, InvokeConfig, InvokeError, MapConfig, Nesting, ParallelConfig,
    RetryStrategyExt, StepConfig, StepContext, StepError, StepFailure, StepSemantics, WaitConfig,
    WaitForCallbackConfig, Workflow,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

mod callback;
mod child;
mod condition;
mod invoke;
mod map;
mod parallel;
mod plugin;
mod serdes;
mod step;
mod wait;
mod wait_for_callback;

pub use self::child::interrupted_child;
pub use self::plugin::{function_of, plugins_of};
// The Lambda functions of `examples/functions` register these.
pub use self::invoke::{ECHO, FAIL, SIZE, target_echo, target_fail, target_size};
#[allow(unused_imports)]
pub use self::plugin::plugins_of_function;
use self::{
    callback::*, child::*, condition::*, invoke::*, map::*, parallel::*, plugin::*, serdes::*,
    step::*, wait::*, wait_for_callback::*,
};

/// What a workflow returns.
pub type Outcome = Result<Value, durable_yield::BoxError>;

/// What one run writes to standard output, in order, as records: the
/// SDK's JSON log lines (the test routes its `JsonLogLayer` here) and the
/// plugins' records. A line is read as AWS's runner reads a line of a
/// function's CloudWatch log: a JSON object is a record of its fields, any
/// other line a record whose `message` is the line.
#[derive(Clone, Default)]
pub struct LogSink(Arc<Mutex<Vec<Value>>>);

impl LogSink {
    /// Writes one line.
    pub fn write_line(&self, line: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(record_of_line(line));
    }
    /// The records written so far.
    pub fn records(&self) -> Vec<Value> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A log line as a record (see [`LogSink`]).
pub fn record_of_line(line: &str) -> Value {
    match serde_json::from_str::<Value>(line.trim()) {
        Ok(record @ Value::Object(_)) => record,
        _ => json!({ "message": line.trim_end() }),
    }
}

/// The records of the execution `arn`, as AWS's runner fetches an
/// execution's log lines from CloudWatch (a filter on the records'
/// `durableExecutionArn` or `executionArn` field): a line without the
/// execution's ARN is not found.
pub fn records_of(records: &[Value], arn: &str) -> Vec<Value> {
    records
        .iter()
        .filter(|r| r["durableExecutionArn"] == arn || r["executionArn"] == arn)
        .cloned()
        .collect()
}

/// The sink of the requirement being run (they run one at a time).
static CURRENT: Mutex<Option<LogSink>> = Mutex::new(None);

/// Makes `sink` the one [`print_line`] writes to.
pub fn use_sink(sink: &LogSink) {
    *CURRENT.lock().unwrap_or_else(|p| p.into_inner()) = Some(sink.clone());
}

/// Writes `line` to standard output, as a Lambda function writes a log
/// line, or to the sink a test set with [`use_sink`].
pub fn print_line(line: &str) {
    let sink = CURRENT.lock().unwrap_or_else(|p| p.into_inner()).clone();
    match sink {
        Some(sink) => sink.write_line(line),
        None => println!("{line}"),
    }
}

/// Set by a body where the process must die (1-17, 1-18, 3-12): on AWS's
/// emulator the `conformance-crash` function then drops the invocation,
/// as if its sandbox had died; the local runs kill the invocation then
/// (`cases.rs`).
pub static DIE: AtomicBool = AtomicBool::new(false);

/// The process dies here (see [`DIE`]); the body waits for it.
async fn die_here() {
    DIE.store(true, Ordering::SeqCst);
    std::future::pending::<()>().await;
}

/// Counts the runs of a body, per execution (on the emulator one process
/// runs several executions at once).
pub(super) struct RunCounter(Mutex<Vec<(String, u32)>>);

impl RunCounter {
    pub(super) const fn new() -> Self {
        RunCounter(Mutex::new(Vec::new()))
    }
    /// Counts one run of the body in execution `arn`.
    pub(super) fn ran(&self, arn: &str) {
        let mut runs = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match runs.iter_mut().find(|(a, _)| a == arn) {
            Some((_, n)) => *n += 1,
            None => runs.push((arn.to_owned(), 1)),
        }
    }
    /// How many times the body ran in execution `arn`.
    pub(super) fn runs(&self, arn: &str) -> u32 {
        let runs = self.0.lock().unwrap_or_else(|p| p.into_inner());
        runs.iter().find(|(a, _)| a == arn).map_or(0, |(_, n)| *n)
    }
}

/// The workflow of each requirement: [`covers`] and [`workflow`] from one
/// list.
macro_rules! requirements {
    ($($id:literal => $workflow:ident),* $(,)?) => {
        /// Whether a workflow here covers requirement `id`.
        pub fn covers(id: &str) -> bool {
            matches!(id, $($id)|*)
        }

        /// Runs the workflow of requirement `id`.
        pub async fn workflow(id: &str, wf: Workflow, input: Value) -> Outcome {
            match id {
                $($id => $workflow(wf, input).await,)*
                other => Err(format!("no workflow for requirement {other}").into()),
            }
        }
    };
}

requirements! {
    "1-1" => step_basic,
    "1-2" => step_named,
    "1-3" => sequential_steps,
    "1-4" => complex_object,
    "1-5" => null_result,
    "1-6" => custom_serdes,
    "1-7" => step_logger,
    "1-8" => step_then_wait,
    "1-9" => replay_skips_step,
    "1-10" => replay_rethrows,
    "1-11" => retry_then_succeed,
    "1-12" => retry_exhausted,
    "1-13" => default_retry,
    "1-14" => custom_backoff,
    "1-15" => retry_transient,
    "1-16" => no_retry_transient,
    "1-17" => at_most_once_no_retry,
    "1-18" => at_most_once_retry,
    "1-19" => fails_permanently,
    "1-20" => error_caught,
    "2-1" => wait_basic,
    "2-2" => wait_named,
    "2-3" => two_waits,
    "2-4" => wait_minute,
    "2-5" => wait_hour,
    "3-1" => child_basic,
    "3-2" => child_named,
    "3-3" => child_two_steps,
    "3-4" => child_fails,
    "3-5" => child_failure_caught,
    "3-6" => nested_children,
    "3-7" => child_step_retried,
    "3-8" => child_step_exhausted,
    "3-9" => child_then_wait,
    "3-10" => child_step_and_wait,
    "3-11" => child_large_result,
    "3-12" => interrupted_child,
    "3-13" => child_wait_only,
    "3-14" => child_custom_serdes,
    "3-15" => child_error_without_step,
    "3-16" => child_null,
    "3-17" => child_logs_only,
    "3-18" => child_then_more,
    "4-1" => callback_basic,
    "4-2" => callback_approval,
    "4-3" => callback_timeout,
    "4-4" => callback_heartbeat_timeout,
    "4-5" => callback_kept_alive,
    "4-6" => callback_basic,
    "4-7" => callback_then_step,
    "4-8" => callback_timeout_then_step,
    "4-9" => callback_then_wait,
    "4-10" => callback_then_wait,
    "4-11" => callback_timeout_during_wait,
    "4-12" => callback_then_wait_after,
    "4-13" => callback_failure_caught,
    "4-14" => callback_timeout_caught,
    "4-15" => callback_with_date,
    "4-16" => callback_as_number,
    "4-17" => callbacks_one_after_another,
    "4-18" => callbacks_awaited_in_order,
    "4-19" => callbacks_awaited_in_reverse,
    "7-1" => wfc_basic,
    "7-2" => wfc_approval,
    "7-3" => wfc_unnamed,
    "7-4" => wfc_basic,
    "7-5" => wfc_timeout,
    "7-6" => wfc_failure_caught,
    "7-7" => wfc_submitter_fails,
    "7-8" => wfc_in_child,
    "7-9" => wfc_two,
    "7-10" => wfc_after_wait_and_step,
    "7-11" => wfc_object,
    "7-12" => wfc_heartbeat_timeout,
    "7-13" => wfc_kept_alive,
    "7-14" => wfc_timeout_caught,
    "7-15" => wfc_basic,
    "6-1" => condition_counter,
    "6-2" => condition_met_at_once,
    "6-3" => condition_named,
    "6-4" => condition_from_five,
    "6-5" => condition_fixed_delay,
    "6-6" => condition_exhausted,
    "6-7" => condition_check_fails,
    "6-8" => condition_check_fails_caught,
    "6-9" => condition_object_state,
    "6-10" => condition_null_state,
    "6-11" => condition_custom_serdes,
    "6-12" => condition_then_step,
    "6-13" => two_conditions,
    "9-1" => map_greetings,
    "9-2" => map_doubles_unnamed,
    "9-3" => map_item_plus_index,
    "9-4" => map_empty,
    "9-5" => map_fail_fast,
    "9-6" => map_rethrows,
    "9-7" => map_min_successful,
    "9-8" => map_one_failure_tolerated,
    "9-9" => map_failures_exceed_count,
    "9-10" => map_failures_exceed_percentage,
    "9-11" => map_concurrent,
    "9-12" => map_flat,
    "9-13" => map_named_items,
    "9-14" => map_item_codec,
    "9-15" => map_wait_in_item,
    "9-16" => map_large_results,
    "9-17" => map_then_wait,
    "9-18" => map_failure_then_wait,
    "9-19" => map_batch_codec,
    "9-20" => map_batch_codec_then_wait,
    "8-1" => parallel_steps,
    "8-2" => parallel_unnamed,
    "8-3" => parallel_named_branches,
    "8-4" => parallel_mixed_types,
    "8-5" => parallel_empty,
    "8-6" => parallel_fail_fast,
    "8-7" => parallel_rethrows,
    "8-8" => parallel_min_successful,
    "8-9" => parallel_one_failure_tolerated,
    "8-10" => parallel_failures_exceed_count,
    "8-11" => parallel_concurrent,
    "8-12" => parallel_flat,
    "8-13" => parallel_failures_exceed_percentage,
    "8-14" => parallel_wait_in_branch,
    "8-15" => parallel_item_codec,
    "8-16" => parallel_all_fail_tolerated,
    "8-17" => parallel_min_successful_missed,
    "8-18" => parallel_tolerance_first,
    "8-19" => parallel_zero_concurrency,
    "8-20" => parallel_accessors,
    "8-21" => parallel_nested,
    "8-22" => parallel_percentage_at_limit,
    "5-1" => invoke_echo,
    "5-2" => invoke_named,
    "5-3" => invoke_echo,
    "5-4" => invoke_echo,
    "5-5" => invoke_fails,
    "5-6" => invoke_fails_caught,
    "5-7" => invoke_large,
    "5-8" => invoke_tenant,
    "5-9" => invoke_then_wait,
    "5-10" => invoke_fails_then_wait,
    "5-11" => step_then_invoke,
    "5-12" => invoke_then_step,
    "5-13" => invoke_in_child,
    "5-14" => two_invokes,
    "5-15" => invoke_payload_codec,
    "5-16" => invoke_result_codec,
    "10-1" => plugin_greet,
    "10-2" => plugin_greet,
    "10-3" => retry_then_succeed,
    "10-4" => plugin_greet,
    "10-5" => plugin_greet,
    "10-6" => wait_basic,
    "10-7" => fails_permanently,
}

/// A value as text: a string as it is, anything else as JSON.
pub fn text(input: &Value) -> String {
    match input {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn greeting(input: &Value) -> String {
    format!("Hello, {}!", text(input))
}

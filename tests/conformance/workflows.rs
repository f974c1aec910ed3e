//! One workflow per conformance requirement, doing what the requirement's
//! `handler` and `invocations` describe, in durable-yield's API. Shared by
//! the local runs (`cases.rs`) and the `conformance` function of
//! `examples/functions` (run against AWS's emulator).

use std::sync::atomic::{AtomicU32, Ordering};
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

/// What a workflow returns.
pub type Outcome = Result<Value, durable_yield::BoxError>;

/// Whether a workflow here covers requirement `id`.
pub fn covers(id: &str) -> bool {
    IDS.contains(&id)
}

const IDS: &[&str] = &[
    "1-1", "1-2", "1-3", "1-4", "1-5", "1-6", "1-7", "1-8", "1-9", "1-10", "1-11", "1-12", "1-13",
    "1-14", "1-15", "1-16", "1-17", "1-18", "1-19", "1-20", "2-1", "2-2", "2-3", "2-4", "2-5",
    "3-1", "3-2", "3-3", "3-4", "3-5", "3-6", "3-7", "3-8", "3-9", "3-10", "3-11", "3-12", "3-13",
    "3-14", "3-15", "3-16", "3-17", "3-18", "4-1", "4-2", "4-3", "4-4", "4-5", "4-6", "4-7", "4-8",
    "4-9", "4-10", "4-11", "4-12", "4-13", "4-14", "4-15", "4-16", "4-17", "4-18", "4-19", "7-1",
    "7-2", "7-3", "7-4", "7-5", "7-6", "7-7", "7-8", "7-9", "7-10", "7-11", "7-12", "7-13", "7-14",
    "7-15", "6-1", "6-2", "6-3", "6-4", "6-5", "6-6", "6-7", "6-8", "6-9", "6-10", "6-11", "6-12",
    "6-13", "9-1", "9-2", "9-3", "9-4", "9-5", "9-6", "9-7", "9-8", "9-9", "9-10", "9-11", "9-12",
    "9-13", "9-14", "9-15", "9-16", "9-17", "9-18", "9-19", "9-20", "8-1", "8-2", "8-3", "8-4",
    "8-5", "8-6", "8-7", "8-8", "8-9", "8-10", "8-11", "8-12", "8-13", "8-14", "8-15", "8-16",
    "8-17", "8-18", "8-19", "8-20", "8-21", "8-22", "5-1", "5-2", "5-3", "5-4", "5-5", "5-6",
    "5-7", "5-8", "5-9", "5-10", "5-11", "5-12", "5-13", "5-14", "5-15", "5-16", "10-1", "10-2",
    "10-3", "10-4", "10-5", "10-6", "10-7",
];

/// Where a run's plugins and step bodies write the JSON log records AWS's
/// plugin requirements read (instead of stdout), in order.
#[derive(Clone, Default)]
pub struct LogSink(Arc<Mutex<Vec<Value>>>);

impl LogSink {
    /// Writes a record.
    pub fn write(&self, record: Value) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(record);
    }
    /// The records written so far.
    pub fn records(&self) -> Vec<Value> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The sink of the requirement being run (they run one at a time).
static CURRENT: Mutex<Option<LogSink>> = Mutex::new(None);

/// Makes `sink` the one the bodies' log lines go to.
pub fn use_sink(sink: &LogSink) {
    *CURRENT.lock().unwrap_or_else(|p| p.into_inner()) = Some(sink.clone());
}

/// Writes a `message` record to the current sink, as a body's logger
/// writes a line.
fn log_line(message: impl Into<String>) {
    let sink = CURRENT.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if let Some(sink) = sink {
        sink.write(json!({ "message": message.into() }));
    }
}

/// Runs the workflow of requirement `id`.
pub async fn workflow(id: &str, wf: Workflow, input: Value) -> Outcome {
    match id {
        "1-1" => step_basic(wf, input).await,
        "1-2" => step_named(wf, input).await,
        "1-3" => sequential_steps(wf, input).await,
        "1-4" => complex_object(wf, input).await,
        "1-5" => null_result(wf, input).await,
        "1-6" => custom_serdes(wf, input).await,
        "1-7" => step_logger(wf, input).await,
        "1-8" => step_then_wait(wf, input).await,
        "1-9" => replay_skips_step(wf, input).await,
        "1-10" => replay_rethrows(wf, input).await,
        "1-11" => retry_then_succeed(wf, input).await,
        "1-12" => retry_exhausted(wf, input).await,
        "1-13" => default_retry(wf, input).await,
        "1-14" => custom_backoff(wf, input).await,
        "1-15" => retry_transient(wf, input).await,
        "1-16" => no_retry_transient(wf, input).await,
        "1-17" => at_most_once_no_retry(wf, input).await,
        "1-18" => at_most_once_retry(wf, input).await,
        "1-19" => fails_permanently(wf, input).await,
        "1-20" => error_caught(wf, input).await,
        "2-1" => wait_basic(wf, input).await,
        "2-2" => wait_named(wf, input).await,
        "2-3" => two_waits(wf, input).await,
        "2-4" => wait_minute(wf, input).await,
        "2-5" => wait_hour(wf, input).await,
        "3-1" => child_basic(wf, input).await,
        "3-2" => child_named(wf, input).await,
        "3-3" => child_two_steps(wf, input).await,
        "3-4" => child_fails(wf, input).await,
        "3-5" => child_failure_caught(wf, input).await,
        "3-6" => nested_children(wf, input).await,
        "3-7" => child_step_retried(wf, input).await,
        "3-8" => child_step_exhausted(wf, input).await,
        "3-9" => child_then_wait(wf, input).await,
        "3-10" => child_step_and_wait(wf, input).await,
        "3-11" => child_large_result(wf, input).await,
        "3-12" => interrupted_child(wf, input).await,
        "3-13" => child_wait_only(wf, input).await,
        "3-14" => child_custom_serdes(wf, input).await,
        "3-15" => child_error_without_step(wf, input).await,
        "3-16" => child_null(wf, input).await,
        "3-17" => child_logs_only(wf, input).await,
        "3-18" => child_then_more(wf, input).await,
        "4-1" => callback_basic(wf, input).await,
        "4-2" => callback_approval(wf, input).await,
        "4-3" => callback_timeout(wf, input).await,
        "4-4" => callback_heartbeat_timeout(wf, input).await,
        "4-5" => callback_kept_alive(wf, input).await,
        "4-6" => callback_basic(wf, input).await,
        "4-7" => callback_then_step(wf, input).await,
        "4-8" => callback_timeout_then_step(wf, input).await,
        "4-9" => callback_then_wait(wf, input).await,
        "4-10" => callback_then_wait(wf, input).await,
        "4-11" => callback_timeout_during_wait(wf, input).await,
        "4-12" => callback_then_wait_after(wf, input).await,
        "4-13" => callback_failure_caught(wf, input).await,
        "4-14" => callback_timeout_caught(wf, input).await,
        "4-15" => callback_with_date(wf, input).await,
        "4-16" => callback_as_number(wf, input).await,
        "4-17" => callbacks_one_after_another(wf, input).await,
        "4-18" => callbacks_awaited_in_order(wf, input).await,
        "4-19" => callbacks_awaited_in_reverse(wf, input).await,
        "7-1" => wfc_basic(wf, input).await,
        "7-2" => wfc_approval(wf, input).await,
        "7-3" => wfc_unnamed(wf, input).await,
        "7-4" => wfc_basic(wf, input).await,
        "7-5" => wfc_timeout(wf, input).await,
        "7-6" => wfc_failure_caught(wf, input).await,
        "7-7" => wfc_submitter_fails(wf, input).await,
        "7-8" => wfc_in_child(wf, input).await,
        "7-9" => wfc_two(wf, input).await,
        "7-10" => wfc_after_wait_and_step(wf, input).await,
        "7-11" => wfc_object(wf, input).await,
        "7-12" => wfc_heartbeat_timeout(wf, input).await,
        "7-13" => wfc_kept_alive(wf, input).await,
        "7-14" => wfc_timeout_caught(wf, input).await,
        "7-15" => wfc_basic(wf, input).await,
        "6-1" => condition_counter(wf, input).await,
        "6-2" => condition_met_at_once(wf, input).await,
        "6-3" => condition_named(wf, input).await,
        "6-4" => condition_from_five(wf, input).await,
        "6-5" => condition_fixed_delay(wf, input).await,
        "6-6" => condition_exhausted(wf, input).await,
        "6-7" => condition_check_fails(wf, input).await,
        "6-8" => condition_check_fails_caught(wf, input).await,
        "6-9" => condition_object_state(wf, input).await,
        "6-10" => condition_null_state(wf, input).await,
        "6-11" => condition_custom_serdes(wf, input).await,
        "6-12" => condition_then_step(wf, input).await,
        "6-13" => two_conditions(wf, input).await,
        "9-1" => map_greetings(wf, input).await,
        "9-2" => map_doubles_unnamed(wf, input).await,
        "9-3" => map_item_plus_index(wf, input).await,
        "9-4" => map_empty(wf, input).await,
        "9-5" => map_fail_fast(wf, input).await,
        "9-6" => map_rethrows(wf, input).await,
        "9-7" => map_min_successful(wf, input).await,
        "9-8" => map_one_failure_tolerated(wf, input).await,
        "9-9" => map_failures_exceed_count(wf, input).await,
        "9-10" => map_failures_exceed_percentage(wf, input).await,
        "9-11" => map_concurrent(wf, input).await,
        "9-12" => map_flat(wf, input).await,
        "9-13" => map_named_items(wf, input).await,
        "9-14" => map_item_codec(wf, input).await,
        "9-15" => map_wait_in_item(wf, input).await,
        "9-16" => map_large_results(wf, input).await,
        "9-17" => map_then_wait(wf, input).await,
        "9-18" => map_failure_then_wait(wf, input).await,
        "9-19" => map_batch_codec(wf, input).await,
        "9-20" => map_batch_codec_then_wait(wf, input).await,
        "8-1" => parallel_steps(wf, input).await,
        "8-2" => parallel_unnamed(wf, input).await,
        "8-3" => parallel_named_branches(wf, input).await,
        "8-4" => parallel_mixed_types(wf, input).await,
        "8-5" => parallel_empty(wf, input).await,
        "8-6" => parallel_fail_fast(wf, input).await,
        "8-7" => parallel_rethrows(wf, input).await,
        "8-8" => parallel_min_successful(wf, input).await,
        "8-9" => parallel_one_failure_tolerated(wf, input).await,
        "8-10" => parallel_failures_exceed_count(wf, input).await,
        "8-11" => parallel_concurrent(wf, input).await,
        "8-12" => parallel_flat(wf, input).await,
        "8-13" => parallel_failures_exceed_percentage(wf, input).await,
        "8-14" => parallel_wait_in_branch(wf, input).await,
        "8-15" => parallel_item_codec(wf, input).await,
        "8-16" => parallel_all_fail_tolerated(wf, input).await,
        "8-17" => parallel_min_successful_missed(wf, input).await,
        "8-18" => parallel_tolerance_first(wf, input).await,
        "8-19" => parallel_zero_concurrency(wf, input).await,
        "8-20" => parallel_accessors(wf, input).await,
        "8-21" => parallel_nested(wf, input).await,
        "8-22" => parallel_percentage_at_limit(wf, input).await,
        "5-1" => invoke_echo(wf, input).await,
        "5-2" => invoke_named(wf, input).await,
        "5-3" => invoke_echo(wf, input).await,
        "5-4" => invoke_echo(wf, input).await,
        "5-5" => invoke_fails(wf, input).await,
        "5-6" => invoke_fails_caught(wf, input).await,
        "5-7" => invoke_large(wf, input).await,
        "5-8" => invoke_tenant(wf, input).await,
        "5-9" => invoke_then_wait(wf, input).await,
        "5-10" => invoke_fails_then_wait(wf, input).await,
        "5-11" => step_then_invoke(wf, input).await,
        "5-12" => invoke_then_step(wf, input).await,
        "5-13" => invoke_in_child(wf, input).await,
        "5-14" => two_invokes(wf, input).await,
        "5-15" => invoke_payload_codec(wf, input).await,
        "5-16" => invoke_result_codec(wf, input).await,
        "10-1" => plugin_greet(wf, input).await,
        "10-2" => plugin_greet(wf, input).await,
        "10-3" => retry_then_succeed(wf, input).await,
        "10-4" => plugin_greet(wf, input).await,
        "10-5" => plugin_greet(wf, input).await,
        "10-6" => wait_basic(wf, input).await,
        "10-7" => fails_permanently(wf, input).await,
        other => Err(format!("no workflow for requirement {other}").into()),
    }
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

// ---- step (1-x)

async fn step_basic(mut wf: Workflow, input: Value) -> Outcome {
    let greeting = greeting(&input);
    let out: String = wf
        .step_with(StepConfig::new(), move |_| async move { Ok(greeting) })
        .await?;
    Ok(json!(out))
}

async fn step_named(mut wf: Workflow, input: Value) -> Outcome {
    let greeting = greeting(&input);
    let out: String = wf
        .step("custom_step_name", move |_| async move { Ok(greeting) })
        .await?;
    Ok(json!(out))
}

async fn sequential_steps(mut wf: Workflow, _: Value) -> Outcome {
    let first: String = wf
        .step("step_one", |_| async { Ok("first".to_owned()) })
        .await?;
    let second: String = wf
        .step(
            "step_two",
            move |_| async move { Ok(format!("{first}_second")) },
        )
        .await?;
    Ok(json!(second))
}

async fn complex_object(mut wf: Workflow, input: Value) -> Outcome {
    let out: Value = wf
        .step("build_response", move |_| async move {
            let tags = input.get("tags").cloned().unwrap_or(json!([]));
            let count = tags.as_array().map_or(0, Vec::len);
            Ok(json!({
                "user": {"name": input.get("name").cloned().unwrap_or(Value::Null), "tags": tags},
                "count": count,
            }))
        })
        .await?;
    Ok(out)
}

async fn null_result(mut wf: Workflow, _: Value) -> Outcome {
    let () = wf.step("do_nothing", |_| async { Ok(()) }).await?;
    Ok(Value::Null)
}

/// `value` with every string in upper case.
fn upper(value: Value) -> Value {
    match value {
        Value::String(s) => Value::String(s.to_uppercase()),
        Value::Array(items) => Value::Array(items.into_iter().map(upper).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, upper(v))).collect()),
        other => other,
    }
}

async fn custom_serdes(mut wf: Workflow, input: Value) -> Outcome {
    let out: String = wf
        .step_with(
            StepConfig::named("return_input").codec(UPPERCASE),
            move |_| async move { Ok(text(&input)) },
        )
        .await?;
    Ok(json!(out))
}

async fn step_logger(mut wf: Workflow, input: Value) -> Outcome {
    let name = text(&input);
    let out: String = wf
        .step("greet", move |_ctx: StepContext| async move {
            log_line(format!("Greeting step started for: {name}"));
            let greeting = format!("Hello, {name}!");
            log_line(format!("Greeting step completed with: {greeting}"));
            Ok(greeting)
        })
        .await?;
    Ok(json!(out))
}

async fn step_then_wait(mut wf: Workflow, _: Value) -> Outcome {
    let out: String = wf
        .step("compute", |_| async { Ok("computed".to_owned()) })
        .await?;
    wf.wait(WaitConfig::new(), Duration::from_secs(2)).await;
    Ok(json!(out))
}

/// How many times the body of 1-9's step ran (it must run once).
static CACHED_RUNS: AtomicU32 = AtomicU32::new(0);

async fn replay_skips_step(mut wf: Workflow, _: Value) -> Outcome {
    let out: String = wf
        .step("cache", |_| async {
            CACHED_RUNS.fetch_add(1, Ordering::SeqCst);
            Ok("cached_value".to_owned())
        })
        .await?;
    wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
    if CACHED_RUNS.load(Ordering::SeqCst) != 1 {
        return Err("the succeeded step ran again on replay".into());
    }
    Ok(json!(out))
}

async fn replay_rethrows(mut wf: Workflow, _: Value) -> Outcome {
    let failed: Result<String, StepError> = wf
        .step_with(StepConfig::named("fails").retry(NoRetry), |_| async {
            Err(StepFailure::new("Error", "step executed and failed"))
        })
        .await;
    let caught = failed.is_err();
    wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
    Ok(json!({ "caught": caught }))
}

async fn retry_then_succeed(mut wf: Workflow, _: Value) -> Outcome {
    let out: String = wf
        .step_with(
            StepConfig::named("unreliable").retry(FixedDelay::new(Duration::from_secs(1), 3)),
            |ctx| async move {
                if ctx.attempt() == 1 {
                    Err(StepFailure::new("Error", "first attempt fails"))
                } else {
                    Ok("Operation succeeded".to_owned())
                }
            },
        )
        .await?;
    Ok(json!(out))
}

async fn retry_exhausted(mut wf: Workflow, _: Value) -> Outcome {
    let out: String = wf
        .step_with(
            StepConfig::named("always_fail").retry(FixedDelay::new(Duration::from_secs(1), 4)),
            |_| async { Err(StepFailure::new("Error", "always fails")) },
        )
        .await?;
    Ok(json!(out))
}

async fn default_retry(mut wf: Workflow, _: Value) -> Outcome {
    let out: String = wf
        .step("unreliable", |ctx| async move {
            if ctx.attempt() < 3 {
                Err(StepFailure::new("Error", "fails twice"))
            } else {
                Ok("third time".to_owned())
            }
        })
        .await?;
    Ok(json!(out))
}

async fn custom_backoff(mut wf: Workflow, _: Value) -> Outcome {
    let strategy = ExponentialBackoff::new()
        .max_attempts(5)
        .initial_delay(Duration::from_secs(2))
        .backoff_rate(3.0)
        .jitter(Jitter::None);
    let out: String = wf
        .step_with(
            StepConfig::named("flaky").retry(strategy),
            |ctx| async move {
                if ctx.attempt() < 3 {
                    Err(StepFailure::new("Error", "fails twice"))
                } else {
                    Ok("done".to_owned())
                }
            },
        )
        .await?;
    Ok(json!(out))
}

/// A transient failure, retried by 1-15's strategy and not by 1-16's.
#[derive(Debug)]
struct TransientError;

impl std::fmt::Display for TransientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the service is briefly unavailable")
    }
}

impl std::error::Error for TransientError {}

async fn retry_transient(mut wf: Workflow, _: Value) -> Outcome {
    let strategy = FixedDelay::new(Duration::from_secs(1), 3).only_error_types(["TransientError"]);
    let out: String = wf
        .step_with(
            StepConfig::named("transient").retry(strategy),
            |ctx| async move {
                if ctx.attempt() == 1 {
                    Err(StepFailure::from_error(TransientError))
                } else {
                    Ok("recovered".to_owned())
                }
            },
        )
        .await?;
    Ok(json!(out))
}

async fn no_retry_transient(mut wf: Workflow, _: Value) -> Outcome {
    let strategy = FixedDelay::new(Duration::from_secs(1), 3)
        .only_if(|e| e.error_type.as_deref() != Some("TransientError"));
    let out: String = wf
        .step_with(StepConfig::named("transient").retry(strategy), |_| async {
            Err(StepFailure::from_error(TransientError))
        })
        .await?;
    Ok(json!(out))
}

/// A step run at most once per attempt that writes the input as its log
/// line; its first attempt never ends (the process dies in it, see
/// `crashing` in `cases.rs`), a later one returns `result`.
async fn at_most_once(
    wf: &mut Workflow,
    input: &Value,
    retry: impl durable_yield::RetryStrategy,
    result: &'static str,
) -> Outcome {
    let logged = text(input);
    let out: String = wf
        .step_with(
            StepConfig::named("at_most_once_flaky_step")
                .semantics(StepSemantics::AtMostOncePerRetry)
                .retry(retry),
            move |ctx| async move {
                log_line(logged);
                if ctx.attempt() == 1 {
                    std::future::pending::<()>().await;
                }
                Ok(result.to_owned())
            },
        )
        .await?;
    Ok(json!(out))
}

async fn at_most_once_no_retry(mut wf: Workflow, input: Value) -> Outcome {
    at_most_once(&mut wf, &input, NoRetry, "never recorded").await
}

async fn at_most_once_retry(mut wf: Workflow, input: Value) -> Outcome {
    let retry = FixedDelay::new(Duration::from_secs(1), 3);
    at_most_once(&mut wf, &input, retry, "succeeded on second attempt").await
}

async fn fails_permanently(mut wf: Workflow, _: Value) -> Outcome {
    let out: String = wf
        .step_with(StepConfig::named("failing").retry(NoRetry), |_| async {
            Err(StepFailure::new("Error", "always fails"))
        })
        .await?;
    Ok(json!(out))
}

async fn error_caught(mut wf: Workflow, _: Value) -> Outcome {
    let failed: Result<String, StepError> = wf
        .step_with(StepConfig::named("failing").retry(NoRetry), |_| async {
            Err(StepFailure::new("Error", "always fails"))
        })
        .await;
    let fallback = match failed {
        Ok(v) => v,
        Err(_) => "fallback".to_owned(),
    };
    let out: String = wf
        .step("recover", move |_| async move {
            Ok(format!("{fallback}_result"))
        })
        .await?;
    Ok(json!(out))
}

// ---- wait (2-x)

async fn wait_basic(mut wf: Workflow, _: Value) -> Outcome {
    wf.wait(WaitConfig::new(), Duration::from_secs(2)).await;
    Ok(Value::Null)
}

async fn wait_named(mut wf: Workflow, _: Value) -> Outcome {
    wf.wait("custom_wait_name", Duration::from_secs(2)).await;
    Ok(Value::Null)
}

async fn two_waits(mut wf: Workflow, _: Value) -> Outcome {
    wf.wait("wait-1", Duration::from_secs(2)).await;
    wf.wait("wait-2", Duration::from_secs(2)).await;
    Ok(json!({ "completedWaits": 2 }))
}

async fn wait_minute(mut wf: Workflow, _: Value) -> Outcome {
    wf.wait(WaitConfig::new(), Duration::from_secs(60)).await;
    Ok(Value::Null)
}

async fn wait_hour(mut wf: Workflow, _: Value) -> Outcome {
    wf.wait(WaitConfig::new(), Duration::from_secs(60 * 60))
        .await;
    Ok(Value::Null)
}

// ---- child contexts (3-x)

/// A step returning `value`.
async fn echo(wf: &mut Workflow, name: &'static str, value: String) -> Result<String, StepError> {
    wf.step(name, move |_| async move { Ok(value) }).await
}

async fn child_basic(mut wf: Workflow, input: Value) -> Outcome {
    let value = text(&input);
    let out: String = wf
        .child_with(ChildConfig::new(), move |mut wf| async move {
            echo(&mut wf, "echo", value).await
        })
        .await?;
    Ok(json!(out))
}

async fn child_named(mut wf: Workflow, input: Value) -> Outcome {
    let name = text(input.get("name").unwrap_or(&Value::Null));
    let value = text(input.get("value").unwrap_or(&Value::Null));
    let out: String = wf
        .child(name, move |mut wf| async move {
            echo(&mut wf, "echo", value).await
        })
        .await?;
    Ok(json!(out))
}

async fn child_two_steps(mut wf: Workflow, input: Value) -> Outcome {
    let value = text(&input);
    let out: String = wf
        .child("two_steps", move |mut wf| async move {
            let first = echo(&mut wf, "first", value).await?;
            echo(&mut wf, "second", first).await
        })
        .await?;
    Ok(json!(out))
}

async fn failing_step(wf: &mut Workflow) -> Result<String, StepError> {
    wf.step_with(StepConfig::named("failing").retry(NoRetry), |_| async {
        Err(StepFailure::new("Error", "the step fails"))
    })
    .await
}

async fn child_fails(mut wf: Workflow, _: Value) -> Outcome {
    let out: String = wf
        .child("fails", |mut wf| async move { failing_step(&mut wf).await })
        .await?;
    Ok(json!(out))
}

async fn child_failure_caught(mut wf: Workflow, input: Value) -> Outcome {
    let failed: Result<String, StepError> = wf
        .child("fails", |mut wf| async move { failing_step(&mut wf).await })
        .await;
    assert!(failed.is_err(), "the child context failed");
    let out = echo(&mut wf, "recovery", text(&input)).await?;
    Ok(json!(out))
}

async fn nested_children(mut wf: Workflow, input: Value) -> Outcome {
    let value = text(&input);
    let out: String = wf
        .child("outer", move |mut wf| async move {
            let outer = echo(&mut wf, "outer_step", value).await?;
            wf.child("inner", move |mut wf| async move {
                echo(&mut wf, "inner_step", outer).await
            })
            .await
        })
        .await?;
    Ok(json!(out))
}

async fn child_step_retried(mut wf: Workflow, input: Value) -> Outcome {
    let value = text(&input);
    let out: String = wf
        .child("retried", move |mut wf| async move {
            wf.step_with(
                StepConfig::named("flaky").retry(FixedDelay::new(Duration::from_secs(1), 3)),
                move |ctx| async move {
                    if ctx.attempt() == 1 {
                        Err(StepFailure::new("Error", "first attempt fails"))
                    } else {
                        Ok(value)
                    }
                },
            )
            .await
        })
        .await?;
    Ok(json!(out))
}

async fn child_step_exhausted(mut wf: Workflow, _: Value) -> Outcome {
    let out: String = wf
        .child("exhausted", |mut wf| async move {
            wf.step_with(
                StepConfig::named("always_fails").retry(FixedDelay::new(Duration::from_secs(1), 2)),
                |_| async { Err::<String, _>(StepFailure::new("Error", "always fails")) },
            )
            .await
        })
        .await?;
    Ok(json!(out))
}

async fn child_then_wait(mut wf: Workflow, input: Value) -> Outcome {
    let value = text(&input);
    let out: String = wf
        .child("cached", move |mut wf| async move {
            echo(&mut wf, "echo", value).await
        })
        .await?;
    wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
    Ok(json!(out))
}

/// A child context with a step returning `value`, then a wait of a second.
async fn step_and_wait_child(wf: &mut Workflow, value: String) -> Result<String, StepError> {
    wf.child("step_and_wait", move |mut wf| async move {
        let out = echo(&mut wf, "echo", value).await?;
        wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
        Ok::<_, StepError>(out)
    })
    .await
}

async fn child_step_and_wait(mut wf: Workflow, input: Value) -> Outcome {
    Ok(json!(step_and_wait_child(&mut wf, text(&input)).await?))
}

async fn child_large_result(mut wf: Workflow, input: Value) -> Outcome {
    let value = text(&input);
    let out: String = wf
        .child("large", move |mut wf| async move {
            log_line(value.clone());
            let small = echo(&mut wf, "small", value).await?;
            // Over the 256 KiB a CONTEXT result may hold: ReplayChildren.
            Ok::<_, StepError>(small.repeat(300 * 1024 / small.len().max(1) + 1))
        })
        .await?;
    wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
    Ok(json!(out.len()))
}

/// Whether 3-12's step body has run once (and hung, until the crash).
static INTERRUPTED_ONCE: AtomicU32 = AtomicU32::new(0);

/// 3-12's workflow: a child context whose step hangs on its first run.
pub async fn interrupted_child(mut wf: Workflow, input: Value) -> Outcome {
    let value = text(&input);
    let out: String = wf
        .child("interrupted", move |mut wf| async move {
            wf.step("slow", move |_| async move {
                if INTERRUPTED_ONCE.fetch_add(1, Ordering::SeqCst) == 0 {
                    // The first run never ends: the process dies in it.
                    std::future::pending::<()>().await;
                }
                Ok(value)
            })
            .await
        })
        .await?;
    Ok(json!(out))
}

async fn child_wait_only(mut wf: Workflow, input: Value) -> Outcome {
    let value = text(&input);
    let inner = value.clone();
    let out: String = wf
        .child("waits", move |mut wf| async move {
            wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
            Ok::<_, StepError>(inner)
        })
        .await?;
    let after = echo(&mut wf, "after", out).await?;
    Ok(json!(after))
}

async fn child_custom_serdes(mut wf: Workflow, input: Value) -> Outcome {
    let value = text(&input);
    let out: String = wf
        .child_with(
            ChildConfig::named("uppercased").codec(UPPERCASE_TEXT),
            move |mut wf| async move { echo(&mut wf, "echo", value).await },
        )
        .await?;
    Ok(json!(out))
}

async fn child_error_without_step(mut wf: Workflow, _: Value) -> Outcome {
    let out: String = wf
        .child("throws", |_wf| async move {
            Err::<String, _>(StepFailure::new("Error", "thrown in the child body"))
        })
        .await?;
    Ok(json!(out))
}

async fn child_null(mut wf: Workflow, _: Value) -> Outcome {
    let () = wf
        .child("nothing", |_wf| async move { Ok::<(), StepError>(()) })
        .await?;
    Ok(Value::Null)
}

/// How many times 3-17's child body ran (once: it is not replayed).
static LOGGING_CHILD_RUNS: AtomicU32 = AtomicU32::new(0);

async fn child_logs_only(mut wf: Workflow, input: Value) -> Outcome {
    let value = text(&input);
    let out: String = wf
        .child("logs", move |_wf| async move {
            LOGGING_CHILD_RUNS.fetch_add(1, Ordering::SeqCst);
            log_line(value.clone());
            Ok::<_, StepError>(value)
        })
        .await?;
    wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
    if LOGGING_CHILD_RUNS.load(Ordering::SeqCst) != 1 {
        return Err("the finished child context ran again on replay".into());
    }
    Ok(json!(out))
}

async fn child_then_more(mut wf: Workflow, input: Value) -> Outcome {
    let out = step_and_wait_child(&mut wf, text(&input)).await?;
    let after = echo(&mut wf, "outer", out).await?;
    wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
    Ok(json!(after))
}

// ---- callbacks (4-x)

async fn await_named(wf: &mut Workflow, config: CallbackConfig) -> Result<Value, CallbackError> {
    let callback = wf.create_callback::<Value>(config).await;
    wf.callback_result(&callback).await
}

async fn callback_basic(mut wf: Workflow, input: Value) -> Outcome {
    Ok(await_named(&mut wf, CallbackConfig::named(text(&input))).await?)
}

async fn callback_approval(mut wf: Workflow, _: Value) -> Outcome {
    Ok(await_named(&mut wf, CallbackConfig::named("approval")).await?)
}

async fn callback_timeout(mut wf: Workflow, input: Value) -> Outcome {
    let config = CallbackConfig::named(text(&input)).timeout(Duration::from_secs(5));
    Ok(await_named(&mut wf, config).await?)
}

async fn callback_heartbeat_timeout(mut wf: Workflow, input: Value) -> Outcome {
    let config = CallbackConfig::named(text(&input)).heartbeat_timeout(Duration::from_secs(5));
    Ok(await_named(&mut wf, config).await?)
}

async fn callback_kept_alive(mut wf: Workflow, input: Value) -> Outcome {
    let config = CallbackConfig::named(text(&input)).heartbeat_timeout(Duration::from_secs(10));
    Ok(await_named(&mut wf, config).await?)
}

async fn callback_then_step(mut wf: Workflow, input: Value) -> Outcome {
    let callback = wf
        .create_callback::<Value>(CallbackConfig::named(text(&input)))
        .await;
    echo(&mut wf, "between", "work".into()).await?;
    Ok(wf.callback_result(&callback).await?)
}

async fn callback_timeout_then_step(mut wf: Workflow, input: Value) -> Outcome {
    let config = CallbackConfig::named(text(&input)).timeout(Duration::from_secs(5));
    let callback = wf.create_callback::<Value>(config).await;
    echo(&mut wf, "between", "work".into()).await?;
    Ok(wf.callback_result(&callback).await?)
}

async fn callback_then_wait(mut wf: Workflow, input: Value) -> Outcome {
    let callback = wf
        .create_callback::<Value>(CallbackConfig::named(text(&input)))
        .await;
    wf.wait(WaitConfig::new(), Duration::from_secs(5)).await;
    Ok(wf.callback_result(&callback).await?)
}

async fn callback_timeout_during_wait(mut wf: Workflow, input: Value) -> Outcome {
    let config = CallbackConfig::named(text(&input)).timeout(Duration::from_secs(3));
    let callback = wf.create_callback::<Value>(config).await;
    wf.wait(WaitConfig::new(), Duration::from_secs(6)).await;
    Ok(wf.callback_result(&callback).await?)
}

async fn callback_then_wait_after(mut wf: Workflow, input: Value) -> Outcome {
    let value = await_named(&mut wf, CallbackConfig::named(text(&input))).await?;
    wf.wait(WaitConfig::new(), Duration::from_secs(2)).await;
    Ok(value)
}

async fn callback_failure_caught(mut wf: Workflow, input: Value) -> Outcome {
    let message = match await_named(&mut wf, CallbackConfig::named(text(&input))).await {
        Ok(v) => format!("approved: {v}"),
        Err(e) => format!("rejected: {}", e.message().unwrap_or_default()),
    };
    wf.wait(WaitConfig::new(), Duration::from_secs(2)).await;
    Ok(json!(message))
}

async fn callback_timeout_caught(mut wf: Workflow, input: Value) -> Outcome {
    let config = CallbackConfig::named(text(&input)).timeout(Duration::from_secs(3));
    let message = match await_named(&mut wf, config).await {
        Ok(v) => format!("answered: {v}"),
        Err(e) if e.is_timeout() => "timed out".to_owned(),
        Err(e) => return Err(e.into()),
    };
    wf.wait(WaitConfig::new(), Duration::from_secs(2)).await;
    Ok(json!(message))
}

/// Days from 1970-01-01 to the civil date `y-m-d` (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Epoch seconds of an RFC 3339 UTC time (`2026-01-01T00:00:00.000Z`).
fn epoch_seconds(text: &str) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let days = days_from_civil(num(0..4)?, num(5..7)?, num(8..10)?);
    Some(days * 86_400 + num(11..13)? * 3_600 + num(14..16)? * 60 + num(17..19)?)
}

async fn callback_with_date(mut wf: Workflow, input: Value) -> Outcome {
    let callback = wf
        .create_callback_with::<Value, _>(CallbackConfig::named(text(&input)).codec(WITH_DATE))
        .await;
    let received = wf.callback_result(&callback).await?;
    Ok(json!({ "received": received }))
}

async fn callback_as_number(mut wf: Workflow, input: Value) -> Outcome {
    let callback = wf
        .create_callback_with::<i64, _>(CallbackConfig::named(text(&input)).codec(AS_NUMBER))
        .await;
    let count = wf.callback_result(&callback).await?;
    Ok(json!({ "count": count, "doubled": count * 2 }))
}

fn names(input: &Value) -> (String, String) {
    let name = |i: usize| input.get(i).map(text).unwrap_or_default();
    (name(0), name(1))
}

async fn callbacks_one_after_another(mut wf: Workflow, input: Value) -> Outcome {
    let (a, b) = names(&input);
    let first = await_named(&mut wf, CallbackConfig::named(a)).await?;
    let second = await_named(&mut wf, CallbackConfig::named(b)).await?;
    Ok(json!([first, second]))
}

async fn callbacks_awaited_in_order(mut wf: Workflow, input: Value) -> Outcome {
    let (a, b) = names(&input);
    let first = wf.create_callback::<Value>(CallbackConfig::named(a)).await;
    let second = wf.create_callback::<Value>(CallbackConfig::named(b)).await;
    let first = wf.callback_result(&first).await?;
    let second = wf.callback_result(&second).await?;
    Ok(json!([first, second]))
}

async fn callbacks_awaited_in_reverse(mut wf: Workflow, input: Value) -> Outcome {
    let (a, b) = names(&input);
    let first = wf.create_callback::<Value>(CallbackConfig::named(a)).await;
    let second = wf.create_callback::<Value>(CallbackConfig::named(b)).await;
    let second = wf.callback_result(&second).await?;
    let first = wf.callback_result(&first).await?;
    Ok(json!([first, second]))
}

// ---- wait for callback (7-x)

/// A submitter that hands the callback id on and does nothing durable.
async fn submit(_: StepContext, _id: String) -> Result<(), StepFailure> {
    Ok(())
}

async fn wfc_basic(mut wf: Workflow, input: Value) -> Outcome {
    let out: Value = wf.wait_for_callback(text(&input), submit).await?;
    Ok(out)
}

async fn wfc_approval(mut wf: Workflow, _: Value) -> Outcome {
    let out: Value = wf.wait_for_callback("approval", submit).await?;
    Ok(out)
}

async fn wfc_unnamed(mut wf: Workflow, _: Value) -> Outcome {
    let out: Value = wf
        .wait_for_callback_with(WaitForCallbackConfig::new(), submit)
        .await?;
    Ok(out)
}

async fn wfc_timeout(mut wf: Workflow, input: Value) -> Outcome {
    let config = WaitForCallbackConfig::named(text(&input)).timeout(Duration::from_secs(3));
    let out: Value = wf.wait_for_callback_with(config, submit).await?;
    Ok(out)
}

async fn wfc_failure_caught(mut wf: Workflow, input: Value) -> Outcome {
    let out: Result<Value, StepError> = wf.wait_for_callback(text(&input), submit).await;
    Ok(match out {
        Ok(v) => v,
        Err(_) => json!("recovered"),
    })
}

async fn wfc_submitter_fails(mut wf: Workflow, input: Value) -> Outcome {
    let config = WaitForCallbackConfig::named(text(&input))
        .submitter_retry(FixedDelay::new(Duration::from_secs(1), 2));
    let out: Value = wf
        .wait_for_callback_with(config, |_, _| async {
            Err(StepFailure::new("Error", "the submitter always fails"))
        })
        .await?;
    Ok(out)
}

async fn wfc_in_child(mut wf: Workflow, input: Value) -> Outcome {
    let name = text(&input);
    let out: Value = wf
        .child("wrapper", move |mut wf| async move {
            wf.wait_for_callback::<Value, _, _>(name, submit).await
        })
        .await?;
    Ok(out)
}

async fn wfc_two(mut wf: Workflow, _: Value) -> Outcome {
    let _first: Value = wf.wait_for_callback("first", submit).await?;
    let second: Value = wf.wait_for_callback("second", submit).await?;
    Ok(second)
}

async fn wfc_after_wait_and_step(mut wf: Workflow, input: Value) -> Outcome {
    wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
    echo(&mut wf, "fixed", "data".into()).await?;
    let out: Value = wf.wait_for_callback(text(&input), submit).await?;
    Ok(out)
}

#[derive(serde::Deserialize, Serialize)]
struct Status {
    status: String,
}

async fn wfc_object(mut wf: Workflow, input: Value) -> Outcome {
    let out: Status = wf.wait_for_callback(text(&input), submit).await?;
    Ok(json!(out.status))
}

async fn wfc_heartbeat_timeout(mut wf: Workflow, input: Value) -> Outcome {
    let config =
        WaitForCallbackConfig::named(text(&input)).heartbeat_timeout(Duration::from_secs(5));
    let out: Value = wf.wait_for_callback_with(config, submit).await?;
    Ok(out)
}

async fn wfc_kept_alive(mut wf: Workflow, input: Value) -> Outcome {
    let config =
        WaitForCallbackConfig::named(text(&input)).heartbeat_timeout(Duration::from_secs(10));
    let out: Value = wf.wait_for_callback_with(config, submit).await?;
    Ok(out)
}

async fn wfc_timeout_caught(mut wf: Workflow, input: Value) -> Outcome {
    let config = WaitForCallbackConfig::named(text(&input)).timeout(Duration::from_secs(3));
    let out: Result<Value, StepError> = wf.wait_for_callback_with(config, submit).await;
    Ok(match out {
        Ok(v) => v,
        Err(_) => json!("timed-out-handled"),
    })
}

// ---- wait for condition (6-x)

/// Counts from `start` by one per check until `target`: each unmet check
/// returns the state it reached.
async fn count_to(
    wf: &mut Workflow,
    config: ConditionConfig,
    start: i64,
    target: i64,
) -> Result<i64, StepError> {
    wf.wait_for_condition_with(config, start, move |_, state: i64| async move {
        let next = state + 1;
        Ok(if next >= target {
            Condition::Met(next)
        } else {
            Condition::NotMet(next)
        })
    })
    .await
}

fn target(input: &Value) -> i64 {
    input.as_i64().unwrap_or(0)
}

async fn condition_counter(mut wf: Workflow, input: Value) -> Outcome {
    Ok(json!(
        count_to(&mut wf, ConditionConfig::new(), 0, target(&input)).await?
    ))
}

async fn condition_met_at_once(mut wf: Workflow, input: Value) -> Outcome {
    let threshold = target(&input);
    let out = wf
        .wait_for_condition_with(ConditionConfig::new(), 5_i64, move |_, state| async move {
            Ok(if state >= threshold {
                Condition::Met(state)
            } else {
                Condition::NotMet(state)
            })
        })
        .await?;
    Ok(json!(out))
}

async fn condition_named(mut wf: Workflow, input: Value) -> Outcome {
    let config = ConditionConfig::named("poll-status");
    Ok(json!(count_to(&mut wf, config, 0, target(&input)).await?))
}

async fn condition_from_five(mut wf: Workflow, input: Value) -> Outcome {
    Ok(json!(
        count_to(&mut wf, ConditionConfig::new(), 5, target(&input)).await?
    ))
}

async fn condition_fixed_delay(mut wf: Workflow, input: Value) -> Outcome {
    let config = ConditionConfig::new().strategy(FixedDelay::new(Duration::from_secs(2), 60));
    Ok(json!(count_to(&mut wf, config, 0, target(&input)).await?))
}

async fn condition_exhausted(mut wf: Workflow, _: Value) -> Outcome {
    let config = ConditionConfig::new().strategy(FixedDelay::new(Duration::from_secs(1), 3));
    Ok(json!(count_to(&mut wf, config, 0, i64::MAX).await?))
}

async fn failing_check(wf: &mut Workflow) -> Result<i64, StepError> {
    wf.wait_for_condition_with(ConditionConfig::new(), 0_i64, |_, _| async {
        Err::<Condition<i64>, _>(StepFailure::new("Error", "the check fails"))
    })
    .await
}

async fn condition_check_fails(mut wf: Workflow, _: Value) -> Outcome {
    Ok(json!(failing_check(&mut wf).await?))
}

async fn condition_check_fails_caught(mut wf: Workflow, _: Value) -> Outcome {
    Ok(match failing_check(&mut wf).await {
        Ok(v) => json!(v),
        Err(_) => json!("recovered"),
    })
}

#[derive(Serialize, serde::Deserialize)]
struct Job {
    status: String,
    attempts: u32,
}

async fn condition_object_state(mut wf: Workflow, _: Value) -> Outcome {
    let initial = Job {
        status: "PENDING".into(),
        attempts: 0,
    };
    let out = wf
        .wait_for_condition_with(ConditionConfig::new(), initial, |_, job: Job| async move {
            let attempts = job.attempts + 1;
            let status = if attempts >= 2 { "DONE" } else { "PENDING" };
            let next = Job {
                status: status.into(),
                attempts,
            };
            Ok(if next.status == "PENDING" {
                Condition::NotMet(next)
            } else {
                Condition::Met(next)
            })
        })
        .await?;
    Ok(json!(out))
}

async fn condition_null_state(mut wf: Workflow, _: Value) -> Outcome {
    let out: Option<i64> = wf
        .wait_for_condition_with(ConditionConfig::new(), None, |_, _: Option<i64>| async {
            Ok(Condition::Met(None))
        })
        .await?;
    Ok(json!(out))
}

async fn condition_custom_serdes(mut wf: Workflow, _: Value) -> Outcome {
    let out = wf
        .wait_for_condition_with(
            ConditionConfig::new().codec(PREFIXED),
            String::new(),
            |_, state: String| async move {
                let next = format!("{state}x");
                Ok(if next.len() >= 2 {
                    Condition::Met(next)
                } else {
                    Condition::NotMet(next)
                })
            },
        )
        .await?;
    Ok(json!(out))
}

async fn condition_then_step(mut wf: Workflow, input: Value) -> Outcome {
    let reached = count_to(&mut wf, ConditionConfig::new(), 0, target(&input)).await?;
    let out: i64 = wf
        .step("times_ten", move |_| async move { Ok(reached * 10) })
        .await?;
    Ok(json!(out))
}

async fn two_conditions(mut wf: Workflow, _: Value) -> Outcome {
    let first = count_to(&mut wf, ConditionConfig::new(), 0, 2).await?;
    let second = count_to(&mut wf, ConditionConfig::new(), first, 4).await?;
    Ok(json!(second))
}

// ---- map (9-x)

/// The map configuration most requirements use: named "map", one item at
/// a time (a deterministic history).
fn one_at_a_time<I>() -> MapConfig<I> {
    MapConfig::named("map").max_concurrency(1)
}

fn values<T: Serialize>(result: BatchResult<T>) -> Result<Value, durable_yield::BoxError> {
    Ok(json!(result.into_values()?))
}

/// `{completionReason, status, successCount, failureCount, totalCount}`.
fn projection<T>(result: &BatchResult<T>) -> Value {
    json!({
        "completionReason": result.completion_reason().as_str(),
        "status": result.status().as_str(),
        "successCount": result.success_count(),
        "failureCount": result.failure_count(),
        "totalCount": result.total_count(),
    })
}

fn strings(input: &Value) -> Vec<String> {
    input
        .as_array()
        .map(|a| a.iter().map(text).collect())
        .unwrap_or_default()
}

fn numbers(input: &Value) -> Vec<i64> {
    input
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default()
}

async fn map_greetings(mut wf: Workflow, input: Value) -> Outcome {
    let result = wf
        .map_with(one_at_a_time(), strings(&input), |mut wf, item, _| async move {
            echo(&mut wf, "greet", format!("Hello, {item}!")).await
        })
        .await?;
    values(result)
}

async fn map_doubles_unnamed(mut wf: Workflow, input: Value) -> Outcome {
    let config = MapConfig::new().max_concurrency(1);
    let result = wf
        .map_with(config, numbers(&input), |_, item, _| async move {
            Ok::<_, StepError>(item * 2)
        })
        .await?;
    values(result)
}

async fn map_item_plus_index(mut wf: Workflow, input: Value) -> Outcome {
    let result = wf
        .map_with(
            one_at_a_time(),
            numbers(&input),
            |_, item, index| async move { Ok::<_, StepError>(item + index as i64) },
        )
        .await?;
    values(result)
}

async fn map_empty(mut wf: Workflow, _: Value) -> Outcome {
    let result = wf
        .map_with(
            one_at_a_time(),
            Vec::<i64>::new(),
            |_, item, _| async move { Ok::<_, StepError>(item) },
        )
        .await?;
    values(result)
}

/// An item that fails when it is `"fail"` and returns itself otherwise.
async fn ok_or_fail(_: Workflow, item: &'static str, _: usize) -> Result<String, StepFailure> {
    if item == "fail" {
        Err(StepFailure::new("Error", "the item fails"))
    } else {
        Ok(item.to_owned())
    }
}

async fn map_fail_fast(mut wf: Workflow, _: Value) -> Outcome {
    let config = one_at_a_time().completion(CompletionPolicy::default().tolerated_failure_count(0));
    let result = wf
        .map_with(config, ["ok", "fail", "ok"], ok_or_fail)
        .await?;
    Ok(projection(&result))
}

async fn map_rethrows(mut wf: Workflow, _: Value) -> Outcome {
    let config = one_at_a_time().completion(CompletionPolicy::default().tolerated_failure_count(0));
    let result = wf.map_with(config, ["fail", "ok"], ok_or_fail).await?;
    values(result)
}

async fn map_min_successful(mut wf: Workflow, _: Value) -> Outcome {
    let config = one_at_a_time().completion(CompletionPolicy::default().min_successful(2));
    let result = wf
        .map_with(config, ["a", "b", "c", "d"], ok_or_fail)
        .await?;
    let p = projection(&result);
    Ok(json!({
        "completionReason": p["completionReason"],
        "successCount": p["successCount"],
        "totalCount": p["totalCount"],
    }))
}

async fn map_one_failure_tolerated(mut wf: Workflow, _: Value) -> Outcome {
    let config = one_at_a_time().completion(CompletionPolicy::default().tolerated_failure_count(1));
    let result = wf
        .map_with(config, ["ok", "fail", "ok"], ok_or_fail)
        .await?;
    Ok(projection(&result))
}

fn without_status(p: Value) -> Value {
    json!({
        "completionReason": p["completionReason"],
        "successCount": p["successCount"],
        "failureCount": p["failureCount"],
        "totalCount": p["totalCount"],
    })
}

async fn map_failures_exceed_count(mut wf: Workflow, _: Value) -> Outcome {
    let config = one_at_a_time().completion(CompletionPolicy::default().tolerated_failure_count(1));
    let result = wf
        .map_with(config, ["fail", "fail", "ok"], ok_or_fail)
        .await?;
    Ok(without_status(projection(&result)))
}

async fn map_failures_exceed_percentage(mut wf: Workflow, _: Value) -> Outcome {
    let config =
        one_at_a_time().completion(CompletionPolicy::default().tolerated_failure_percentage(25.0));
    let result = wf
        .map_with(config, ["fail", "fail", "ok", "ok"], ok_or_fail)
        .await?;
    Ok(without_status(projection(&result)))
}

async fn map_concurrent(mut wf: Workflow, _: Value) -> Outcome {
    let config = MapConfig::named("map").max_concurrency(2);
    let result = wf
        .map_with(config, ["r0", "r1", "r2"], |_, item, _| async move {
            Ok::<_, StepError>(item.to_owned())
        })
        .await?;
    values(result)
}

async fn map_flat(mut wf: Workflow, _: Value) -> Outcome {
    let config = one_at_a_time().nesting(Nesting::Flat);
    let result = wf
        .map_with(config, ["fa", "fb"], |mut wf, item, _| async move {
            echo(&mut wf, "item", item.to_owned()).await
        })
        .await?;
    values(result)
}

async fn map_named_items(mut wf: Workflow, input: Value) -> Outcome {
    let config = one_at_a_time().item_namer(|item: &i64, _| format!("item-{item}"));
    let result = wf
        .map_with(config, numbers(&input), |_, item, _| async move {
            Ok::<_, StepError>(item * 10)
        })
        .await?;
    values(result)
}

async fn map_item_codec(mut wf: Workflow, _: Value) -> Outcome {
    let config = MapConfig::named("serdes")
        .max_concurrency(1)
        .item_codec(WRAPPED);
    let result = wf
        .map_with(config, ["x", "y"], |_, item, _| async move {
            Ok::<_, StepError>(item.to_uppercase())
        })
        .await?;
    values(result)
}

async fn map_wait_in_item(mut wf: Workflow, _: Value) -> Outcome {
    let result = wf
        .map_with(
            one_at_a_time(),
            [0_usize, 1],
            |mut wf, item, _| async move {
                if item == 1 {
                    wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
                }
                echo(&mut wf, "item", format!("r{item}")).await
            },
        )
        .await?;
    values(result)
}

async fn map_large_results(mut wf: Workflow, _: Value) -> Outcome {
    let result = wf
        .map_with(one_at_a_time(), 0..4_usize, |_, item, _| async move {
            Ok::<_, StepError>(format!("{item}").repeat(70 * 1024))
        })
        .await?;
    Ok(json!({ "successCount": result.success_count(), "totalCount": result.total_count() }))
}

async fn map_then_wait(mut wf: Workflow, _: Value) -> Outcome {
    let result = wf
        .map_with(one_at_a_time(), ["a", "b"], |_, item, _| async move {
            Ok::<_, StepError>(item.to_uppercase())
        })
        .await?;
    wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
    values(result)
}

async fn map_failure_then_wait(mut wf: Workflow, _: Value) -> Outcome {
    let config = one_at_a_time().completion(CompletionPolicy::default().tolerated_failure_count(1));
    let result = wf.map_with(config, ["ok", "fail"], ok_or_fail).await?;
    wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
    Ok(projection(&result))
}

async fn upper_map_with_batch_codec(wf: &mut Workflow) -> Result<BatchResult<String>, StepError> {
    let config = one_at_a_time().batch_codec(OP_SERDE);
    wf.map_with(config, ["x", "y"], |_, item, _| async move {
        Ok::<_, StepError>(item.to_uppercase())
    })
    .await
}

async fn map_batch_codec(mut wf: Workflow, _: Value) -> Outcome {
    values(upper_map_with_batch_codec(&mut wf).await?)
}

async fn map_batch_codec_then_wait(mut wf: Workflow, _: Value) -> Outcome {
    let result = upper_map_with_batch_codec(&mut wf).await?;
    wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
    values(result)
}

// ---- parallel (8-x)

fn sequential() -> ParallelConfig {
    ParallelConfig::named("parallel").max_concurrency(1)
}

/// A branch returning `value` directly.
fn constant(value: Value) -> Branch<Value> {
    Branch::new(move |_| async move { Ok::<_, StepError>(value) })
}

/// A branch that fails.
fn failing() -> Branch<Value> {
    Branch::new(|_| async { Err::<Value, _>(StepFailure::new("Error", "the branch fails")) })
}

/// A branch running one step that returns `value`.
fn stepping(value: &'static str) -> Branch<Value> {
    Branch::new(move |mut wf| async move {
        Ok::<_, StepError>(json!(echo(&mut wf, "task", value.to_owned()).await?))
    })
}

async fn parallel_steps(mut wf: Workflow, _: Value) -> Outcome {
    values(
        wf.parallel_with(sequential(), vec![stepping("task-1"), stepping("task-2")])
            .await?,
    )
}

async fn parallel_unnamed(mut wf: Workflow, _: Value) -> Outcome {
    let config = ParallelConfig::new().max_concurrency(1);
    values(
        wf.parallel_with(
            config,
            vec![constant(json!("alpha")), constant(json!("beta"))],
        )
        .await?,
    )
}

async fn parallel_named_branches(mut wf: Workflow, _: Value) -> Outcome {
    let branches = vec![
        Branch::named("first", |_| async { Ok::<_, StepError>(json!("one")) }),
        Branch::named("second", |_| async { Ok::<_, StepError>(json!("two")) }),
    ];
    values(wf.parallel_with(sequential(), branches).await?)
}

async fn parallel_mixed_types(mut wf: Workflow, _: Value) -> Outcome {
    let branches = vec![
        constant(json!("hello")),
        constant(json!(42)),
        constant(json!({"k": "v"})),
    ];
    values(wf.parallel_with(sequential(), branches).await?)
}

async fn parallel_empty(mut wf: Workflow, _: Value) -> Outcome {
    values(
        wf.parallel_with(sequential(), Vec::<Branch<Value>>::new())
            .await?,
    )
}

fn policy(policy: CompletionPolicy) -> ParallelConfig {
    sequential().completion(policy)
}

async fn parallel_fail_fast(mut wf: Workflow, _: Value) -> Outcome {
    let config = policy(CompletionPolicy::default().tolerated_failure_count(0));
    let branches = vec![constant(json!("ok")), failing(), constant(json!("ok"))];
    Ok(projection(&wf.parallel_with(config, branches).await?))
}

async fn parallel_rethrows(mut wf: Workflow, _: Value) -> Outcome {
    let config = policy(CompletionPolicy::default().tolerated_failure_count(0));
    values(
        wf.parallel_with(config, vec![failing(), constant(json!("ok"))])
            .await?,
    )
}

async fn parallel_min_successful(mut wf: Workflow, _: Value) -> Outcome {
    let config = policy(CompletionPolicy::default().min_successful(2));
    let branches = (0..4).map(|i| constant(json!(format!("b{i}")))).collect();
    let p = projection(&wf.parallel_with(config, branches).await?);
    Ok(json!({
        "completionReason": p["completionReason"],
        "successCount": p["successCount"],
        "totalCount": p["totalCount"],
    }))
}

async fn parallel_one_failure_tolerated(mut wf: Workflow, _: Value) -> Outcome {
    let config = policy(CompletionPolicy::default().tolerated_failure_count(1));
    let branches = vec![constant(json!("ok")), failing(), constant(json!("ok"))];
    Ok(projection(&wf.parallel_with(config, branches).await?))
}

async fn parallel_failures_exceed_count(mut wf: Workflow, _: Value) -> Outcome {
    let config = policy(CompletionPolicy::default().tolerated_failure_count(1));
    let branches = vec![failing(), failing(), constant(json!("ok"))];
    Ok(without_status(projection(
        &wf.parallel_with(config, branches).await?,
    )))
}

async fn parallel_concurrent(mut wf: Workflow, _: Value) -> Outcome {
    let config = ParallelConfig::named("parallel").max_concurrency(2);
    let branches = (0..3).map(|i| constant(json!(format!("r{i}")))).collect();
    values(wf.parallel_with(config, branches).await?)
}

async fn parallel_flat(mut wf: Workflow, _: Value) -> Outcome {
    let config = sequential().nesting(Nesting::Flat);
    values(
        wf.parallel_with(config, vec![stepping("fa"), stepping("fb")])
            .await?,
    )
}

async fn parallel_failures_exceed_percentage(mut wf: Workflow, _: Value) -> Outcome {
    let config = policy(CompletionPolicy::default().tolerated_failure_percentage(25.0));
    let branches = vec![
        failing(),
        failing(),
        constant(json!("ok")),
        constant(json!("ok")),
    ];
    Ok(without_status(projection(
        &wf.parallel_with(config, branches).await?,
    )))
}

async fn parallel_wait_in_branch(mut wf: Workflow, _: Value) -> Outcome {
    let waiting = Branch::new(|mut wf| async move {
        wf.wait(WaitConfig::new(), Duration::from_secs(2)).await;
        Ok::<_, StepError>(json!("b1"))
    });
    values(
        wf.parallel_with(sequential(), vec![stepping("b0"), waiting])
            .await?,
    )
}

async fn parallel_item_codec(mut wf: Workflow, _: Value) -> Outcome {
    let config = sequential().item_codec(ENVELOPED);
    values(
        wf.parallel_with(config, vec![constant(json!("x")), constant(json!("y"))])
            .await?,
    )
}

async fn parallel_all_fail_tolerated(mut wf: Workflow, _: Value) -> Outcome {
    let config = policy(CompletionPolicy::default().tolerated_failure_count(3));
    let branches = vec![failing(), failing(), failing()];
    Ok(projection(&wf.parallel_with(config, branches).await?))
}

async fn parallel_min_successful_missed(mut wf: Workflow, _: Value) -> Outcome {
    let config = policy(CompletionPolicy::default().min_successful(3));
    let branches = vec![constant(json!("ok")), failing(), constant(json!("ok"))];
    Ok(projection(&wf.parallel_with(config, branches).await?))
}

async fn parallel_tolerance_first(mut wf: Workflow, _: Value) -> Outcome {
    let config = policy(
        CompletionPolicy::default()
            .min_successful(3)
            .tolerated_failure_count(1),
    );
    let branches = vec![
        failing(),
        failing(),
        constant(json!("ok")),
        constant(json!("ok")),
    ];
    Ok(without_status(projection(
        &wf.parallel_with(config, branches).await?,
    )))
}

async fn parallel_zero_concurrency(mut wf: Workflow, _: Value) -> Outcome {
    let config = ParallelConfig::named("parallel").max_concurrency(0);
    values(
        wf.parallel_with(config, vec![constant(json!(1)), constant(json!(2))])
            .await?,
    )
}

async fn parallel_accessors(mut wf: Workflow, _: Value) -> Outcome {
    let config = policy(CompletionPolicy::default().tolerated_failure_count(1));
    let branches = vec![constant(json!("ok")), failing(), constant(json!("ok"))];
    let result = wf.parallel_with(config, branches).await?;
    Ok(json!({
        "hasFailure": result.has_failures(),
        "successCount": result.successes().count(),
        "failureCount": result.failure_count(),
        "errorCount": result.errors().count(),
    }))
}

async fn parallel_nested(mut wf: Workflow, _: Value) -> Outcome {
    let outer = Branch::new(|mut wf| async move {
        let inner = wf
            .parallel_with(sequential(), vec![stepping("i1"), stepping("i2")])
            .await?;
        Ok::<_, durable_yield::BoxError>(json!(inner.into_values()?))
    });
    values(wf.parallel_with(sequential(), vec![outer]).await?)
}

async fn parallel_percentage_at_limit(mut wf: Workflow, _: Value) -> Outcome {
    let config = policy(CompletionPolicy::default().tolerated_failure_percentage(25.0));
    let branches = vec![
        failing(),
        constant(json!("ok")),
        constant(json!("ok")),
        constant(json!("ok")),
    ];
    Ok(projection(&wf.parallel_with(config, branches).await?))
}

// ---- chained invokes (5-x)

/// The target that returns its input.
pub const ECHO: &str = "conformance-echo";
/// The target that fails.
pub const FAIL: &str = "conformance-fail";
/// The target that returns the length of its input text.
pub const SIZE: &str = "conformance-size";

/// The workflow of [`ECHO`].
pub async fn target_echo(_: Workflow, input: Value) -> Outcome {
    Ok(input)
}

/// The workflow of [`FAIL`].
pub async fn target_fail(_: Workflow, _: Value) -> Outcome {
    Err(StepFailure::new("TargetError", "the target fails").into())
}

/// The workflow of [`SIZE`].
pub async fn target_size(_: Workflow, input: Value) -> Outcome {
    Ok(json!(text(&input).len()))
}

async fn invoke_echo(mut wf: Workflow, input: Value) -> Outcome {
    let out: Value = wf.invoke(ECHO, &input).await?;
    Ok(out)
}

async fn invoke_named(mut wf: Workflow, input: Value) -> Outcome {
    let config = InvokeConfig::named(text(&input["name"]));
    let out: Value = wf.invoke_with(config, ECHO, &input["payload"]).await?;
    Ok(out)
}

async fn invoke_fails(mut wf: Workflow, _: Value) -> Outcome {
    let out: Value = wf.invoke(FAIL, &Value::Null).await?;
    Ok(out)
}

async fn invoke_fails_caught(mut wf: Workflow, _: Value) -> Outcome {
    let out: Result<Value, InvokeError> = wf.invoke(FAIL, &Value::Null).await;
    Ok(out.unwrap_or_else(|_| json!("fallback")))
}

async fn invoke_large(mut wf: Workflow, _: Value) -> Outcome {
    // Near the 256 KiB an invoke's payload may hold.
    let big = "x".repeat(250 * 1024);
    let out: Value = wf.invoke(SIZE, &big).await?;
    Ok(out)
}

async fn invoke_tenant(mut wf: Workflow, input: Value) -> Outcome {
    let config = InvokeConfig::new().tenant_id(text(&input["tenantId"]));
    let out: Value = wf.invoke_with(config, ECHO, &input["payload"]).await?;
    Ok(out)
}

async fn invoke_then_wait(mut wf: Workflow, input: Value) -> Outcome {
    let out: Value = wf.invoke(ECHO, &input).await?;
    wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
    Ok(out)
}

async fn invoke_fails_then_wait(mut wf: Workflow, _: Value) -> Outcome {
    let out: Result<Value, InvokeError> = wf.invoke(FAIL, &Value::Null).await;
    let caught = out.is_err();
    wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
    Ok(json!({ "caught": caught }))
}

async fn step_then_invoke(mut wf: Workflow, _: Value) -> Outcome {
    let value = echo(&mut wf, "prepare", "prepared".into()).await?;
    let out: Value = wf.invoke(ECHO, &value).await?;
    Ok(out)
}

async fn invoke_then_step(mut wf: Workflow, _: Value) -> Outcome {
    let out: Value = wf.invoke(ECHO, "invoked").await?;
    let processed = echo(&mut wf, "process", format!("processed {}", text(&out))).await?;
    Ok(json!(processed))
}

async fn invoke_in_child(mut wf: Workflow, _: Value) -> Outcome {
    let out: Value = wf
        .child("invoking", |mut wf| async move {
            wf.invoke::<_, Value>(ECHO, "from the child").await
        })
        .await?;
    Ok(out)
}

async fn two_invokes(mut wf: Workflow, _: Value) -> Outcome {
    let first: Value = wf.invoke(ECHO, "first").await?;
    let second: Value = wf.invoke(ECHO, "second").await?;
    Ok(json!([first, second]))
}

async fn invoke_payload_codec(mut wf: Workflow, input: Value) -> Outcome {
    let config = InvokeConfig::new().payload_codec(UPPERCASE);
    let out: Value = wf.invoke_with(config, ECHO, &input).await?;
    Ok(out)
}

async fn invoke_result_codec(mut wf: Workflow, input: Value) -> Outcome {
    let config = InvokeConfig::new().result_codec(UPPER_RAW);
    let out: String = wf.invoke_with(config, ECHO, &input).await?;
    Ok(json!(out))
}

// ---- plugins (10-x)

/// A step that logs `Greeting step running for: <input>` and greets.
pub async fn plugin_greet(mut wf: Workflow, input: Value) -> Outcome {
    let name = text(&input);
    let out: String = wf
        .step("greet", move |_| async move {
            log_line(format!("Greeting step running for: {name}"));
            Ok(format!("Hello, {name}!"))
        })
        .await?;
    Ok(json!(out))
}

// ---- the requirements' custom serdes

/// A plain-text, untagged codec, as the requirements' custom serdes are:
/// `write` turns the value (as JSON) into the payload's text, `read` turns
/// the text back into the value's JSON.
#[derive(Clone, Copy)]
struct TextCodec {
    id: &'static str,
    write: fn(Value) -> Result<String, String>,
    read: fn(&str) -> Result<Value, String>,
}

impl Codec for TextCodec {
    fn id(&self) -> &str {
        self.id
    }
    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        _: &PayloadContext<'_>,
    ) -> Result<Vec<u8>, CodecError> {
        let encode = |message: String| CodecError::Encode {
            codec: self.id.to_owned(),
            message,
        };
        let value = serde_json::to_value(value).map_err(|e| encode(e.to_string()))?;
        (self.write)(value).map(String::into_bytes).map_err(encode)
    }
    fn decode<T: DeserializeOwned>(
        &self,
        bytes: &[u8],
        _: &PayloadContext<'_>,
    ) -> Result<T, CodecError> {
        let decode = |message: String| CodecError::Decode {
            codec: self.id.to_owned(),
            message,
        };
        let text = std::str::from_utf8(bytes).map_err(|e| decode(e.to_string()))?;
        let value = (self.read)(text).map_err(decode)?;
        serde_json::from_value(value).map_err(|e| decode(e.to_string()))
    }
    fn is_text(&self) -> bool {
        true
    }
    fn tagged(&self) -> bool {
        false
    }
    fn binds_context(&self) -> bool {
        false
    }
}

fn json_text(value: Value) -> Result<String, String> {
    Ok(value.to_string())
}

fn parse_json(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// JSON with every string in upper case (1-6, 5-15).
const UPPERCASE: TextCodec = TextCodec {
    id: "uppercase",
    write: |value| json_text(upper(value)),
    read: parse_json,
};

/// A string in upper case as plain text, read back as it is (3-14).
const UPPERCASE_TEXT: TextCodec = TextCodec {
    id: "uppercase-text",
    write: |value| match value {
        Value::String(s) => Ok(s.to_uppercase()),
        other => Ok(other.to_string()),
    },
    read: |text| Ok(Value::String(text.to_owned())),
};

/// The sender's JSON, its `timestamp` (RFC 3339 text) read as epoch
/// seconds (4-15).
const WITH_DATE: TextCodec = TextCodec {
    id: "with-date",
    write: json_text,
    read: |text| {
        let mut value = parse_json(text)?;
        if let Some(at) = value
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(epoch_seconds)
        {
            value["timestamp"] = json!(at);
        }
        Ok(value)
    },
};

/// The sender's text read as a number (4-16).
const AS_NUMBER: TextCodec = TextCodec {
    id: "as-number",
    write: json_text,
    read: |text| {
        let text = text.trim().trim_matches('"');
        match text.parse::<i64>() {
            Ok(n) => Ok(json!(n)),
            Err(_) => text
                .parse::<f64>()
                .map(|n| json!(n))
                .map_err(|e| e.to_string()),
        }
    },
};

/// A string state as `state:<text>` (6-11).
const PREFIXED: TextCodec = TextCodec {
    id: "prefixed",
    write: |value| match value {
        Value::String(s) => Ok(format!("state:{s}")),
        other => Err(format!("not a string: {other}")),
    },
    read: |text| {
        text.strip_prefix("state:")
            .map(|s| Value::String(s.to_owned()))
            .ok_or_else(|| format!("{text:?} is not a prefixed state"))
    },
};

/// A string as `wrapped:<text>` (9-14).
const WRAPPED: TextCodec = TextCodec {
    id: "wrapped",
    write: |value| Ok(format!("wrapped:{}", text(&value))),
    read: |text| {
        text.strip_prefix("wrapped:")
            .map(|s| Value::String(s.to_owned()))
            .ok_or_else(|| format!("{text:?} is not wrapped"))
    },
};

/// A map result of strings as `OPSERDE:<results joined by commas>`, read
/// back as a result of succeeded items (9-19, 9-20).
const OP_SERDE: TextCodec = TextCodec {
    id: "opserde",
    write: |value| {
        let results: Vec<String> = value["all"]
            .as_array()
            .map(|items| items.iter().map(|i| text(&i["result"])).collect())
            .unwrap_or_default();
        Ok(format!("OPSERDE:{}", results.join(",")))
    },
    read: |text| {
        let joined = text
            .strip_prefix("OPSERDE:")
            .ok_or_else(|| format!("{text:?} is no OPSERDE result"))?;
        let all: Vec<Value> = joined
            .split(',')
            .filter(|s| !s.is_empty())
            .enumerate()
            .map(|(index, r)| {
                json!({"index": index, "status": "SUCCEEDED", "result": r, "error": null})
            })
            .collect();
        Ok(json!({"all": all, "completionReason": "ALL_COMPLETED"}))
    },
};

/// A value `v` as `{"wrapped": v}` (8-15).
const ENVELOPED: TextCodec = TextCodec {
    id: "enveloped",
    write: |value| json_text(json!({ "wrapped": value })),
    read: |text| Ok(parse_json(text)?["wrapped"].take()),
};

/// The target's raw answer read upper-cased, as text (5-16).
const UPPER_RAW: TextCodec = TextCodec {
    id: "upper-raw",
    write: json_text,
    read: |text| Ok(Value::String(text.to_uppercase())),
};

//! Durable Lambda functions, used by the interop tests against AWS's
//! emulator (`tests/interop.rs`).
//!
//! Each function is a binary in `examples/functions/` named like the
//! function (`step-wait-step`, ...) that calls [`main`] with its name. Run
//! them as real `lambda_runtime` functions with
//!
//! ```sh
//! cargo lambda watch -p durable-yield-functions   # then invoke e.g. step-wait-step
//! ```
#![warn(missing_docs)]

/// The workflows of AWS's conformance requirements (shared with
/// `tests/conformance/`, which runs them on the local runner).
#[path = "../../tests/conformance/workflows/mod.rs"]
pub mod conformance;

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use durable_yield::codecs::compress::Compressed;
use durable_yield::codecs::files::FileSystem;
use durable_yield::codecs::seal::{Encrypted, Sealed, SealedFields, StaticKeyring};
use durable_yield::codecs::{Bincode, Json, MsgPack};
use durable_yield::engine::{CheckpointResponse, DurableService, ServiceError};
use durable_yield::lambda::{AwsDurableService, DurableFunction, Error};
use durable_yield::model::{ExecutionState, OperationUpdate};
use durable_yield::retry::{ExponentialBackoff, FixedDelay, Jitter, NoRetry};
use durable_yield::{
    Branch, CallbackConfig, CheckpointBatching, ChildConfig, CompletionPolicy, Condition,
    ConditionConfig, InvokeError, MapConfig, Nesting, ParallelConfig, StepConfig, StepError,
    StepFailure, WaitConfig, WaitForCallbackConfig, Workflow,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
struct Named {
    name: String,
}

/// Step, wait one second, step.
async fn step_wait_step(mut wf: Workflow, input: Named) -> Result<String, StepError> {
    let name = input.name;
    // Written once per execution (not again when the second invocation
    // replays), with the execution ARN as a top-level JSON field.
    tracing::info!(%name, "greeting");
    let greeting: String = wf
        .step("greet", move |_| async move {
            tracing::info!("composing the greeting");
            Ok(format!("hello {name}"))
        })
        .await?;
    wf.wait("pause", Duration::from_secs(1)).await;
    wf.step("shout", move |_| async move { Ok(greeting.to_uppercase()) })
        .await
}

/// `count` steps, each adding its index.
async fn multiple_steps(mut wf: Workflow, count: u32) -> Result<u32, StepError> {
    let mut total = 0;
    for i in 0..count {
        total = wf
            .step(format!("add-{i}"), move |_| async move { Ok(total + i) })
            .await?;
    }
    Ok(total)
}

/// Only a wait of `seconds`.
async fn wait_only(mut wf: Workflow, seconds: u64) -> Result<String, StepError> {
    wf.wait("only", Duration::from_secs(seconds)).await;
    Ok(format!("waited {seconds} s"))
}

#[derive(Debug, Deserialize)]
struct Effects {
    /// A file every run of the step body appends a line to.
    log: String,
}

/// A step with an observable side effect, then two waits.
async fn replay_determinism(mut wf: Workflow, input: Effects) -> Result<u32, StepError> {
    let log = input.log;
    let value: u32 = wf
        .step("side-effect", move |ctx| async move {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)?;
            writeln!(file, "ran {}", ctx.operation_id())?;
            Ok(42)
        })
        .await?;
    wf.wait("first", Duration::from_secs(1)).await;
    wf.wait("second", Duration::from_secs(1)).await;
    Ok(value)
}

/// An error type of the user's, recorded as the step's `ErrorType`.
#[derive(Debug)]
struct CardDeclined;

impl std::fmt::Display for CardDeclined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("card declined")
    }
}

impl std::error::Error for CardDeclined {}

/// A step that fails, without retries, which fails the execution.
async fn step_fails(mut wf: Workflow, _: serde_json::Value) -> Result<u32, StepError> {
    let _: u32 = wf.step("validate", |_| async { Ok(1) }).await?;
    wf.step_with(StepConfig::named("charge").retry(NoRetry), |_| async {
        Err(CardDeclined.into())
    })
    .await
}

/// A flaky step: its first `failures` attempts fail, then it succeeds.
/// Retried every second, 5 attempts at most.
async fn retry_succeeds(mut wf: Workflow, failures: u32) -> Result<String, StepError> {
    let config = StepConfig::named("flaky").retry(FixedDelay::new(Duration::from_secs(1), 5));
    wf.step_with(config, move |ctx| async move {
        if ctx.attempt() <= failures {
            Err(StepFailure::new(
                "Unavailable",
                format!("attempt {} failed", ctx.attempt()),
            ))
        } else {
            Ok(format!("succeeded on attempt {}", ctx.attempt()))
        }
    })
    .await
}

/// A step that always fails: 3 attempts, 1 second apart, then the
/// execution fails with the last error.
async fn retry_exhausted(mut wf: Workflow, _: serde_json::Value) -> Result<String, StepError> {
    let config = StepConfig::named("doomed").retry(FixedDelay::new(Duration::from_secs(1), 3));
    wf.step_with(config, |ctx| async move {
        Err::<String, _>(StepFailure::new(
            "Unavailable",
            format!("attempt {} failed", ctx.attempt()),
        ))
    })
    .await
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Parcel {
    id: u64,
    label: String,
    items: Vec<u32>,
}

/// A parcel whose label is sealed (field-level encryption).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SealedParcel {
    id: u64,
    label: Sealed<String>,
}

/// Steps checkpointed with bincode and MessagePack, with sealed fields, and
/// compressed then encrypted, read back after a wait (the second
/// invocation opens what the service stored).
async fn binary_codecs(mut wf: Workflow, id: u64) -> Result<String, StepError> {
    let parcel = Parcel {
        id,
        label: "fragile".into(),
        items: vec![1, 2, 3],
    };
    let p = parcel.clone();
    let a: Parcel = wf
        .step_with(
            StepConfig::named("bincode").codec(Bincode),
            move |_| async move { Ok(p) },
        )
        .await?;
    let b: Parcel = wf
        .step_with(
            StepConfig::named("msgpack").codec(MsgPack),
            move |_| async move { Ok(parcel) },
        )
        .await?;
    let keys = StaticKeyring::new("interop-1", [7; 32]);
    let sealed: SealedParcel = wf
        .step_with(
            StepConfig::named("sealed-fields").codec(SealedFields::new(Json, keys.clone())),
            move |_| async move {
                Ok(SealedParcel {
                    id,
                    label: Sealed::new("fragile".into()),
                })
            },
        )
        .await?;
    let lines: Vec<String> = wf
        .step_with(
            StepConfig::named("compressed-encrypted")
                .codec(Encrypted::new(Compressed::new(Json), keys)),
            |_| async { Ok((0..20_000).map(|i| format!("line-{}", i % 50)).collect()) },
        )
        .await?;
    // Past the 1 MiB an operation may checkpoint: kept in a file (under
    // `interop_files()`), the record holding its path.
    let kept: String = wf
        .step_with(
            StepConfig::named("file-system").codec(FileSystem::new(interop_files())),
            |_| async { Ok("z".repeat(1_500_000)) },
        )
        .await?;
    wf.wait("pause", Duration::from_secs(1)).await;
    Ok(format!(
        "{} {} {} sealed:{} lines:{} file:{}",
        a.id,
        b.label,
        a == b,
        *sealed.label,
        lines.len(),
        kept.len()
    ))
}

/// Where the interop functions keep values in files: a directory the
/// emulator's functions and the interop test (on the same machine) share.
pub fn interop_files() -> std::path::PathBuf {
    std::env::temp_dir().join("durable-yield-interop-files")
}

/// The input also names a file (`log`) that each invocation appends its
/// number of checkpoint requests to; the handler reads it (see
/// [`serve_counted`]).
#[derive(Debug, Deserialize)]
struct Counted {
    steps: u32,
}

/// Set by a step body to kill the invocation it runs in (see
/// [`serve_crashing`]).
static DIE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[derive(Debug, Deserialize)]
struct CrashInput {
    /// A file the first run of the body creates.
    marker: String,
}

/// A step "before", then a child context "ctx" holding the step "slow",
/// whose first run dies three seconds into its body (the process is
/// killed: an out-of-memory kill, a timeout); later runs return at once.
/// (Three seconds leave the START, sent 100 ms into the body, time to
/// reach an emulator busy with every other interop scenario.)
async fn crash_in_step(mut wf: Workflow, input: CrashInput) -> Result<String, StepError> {
    let marker = input.marker;
    let before: u64 = wf.step("before", |_| async { Ok(1u64) }).await?;
    let slow: String = wf
        .child("ctx", move |mut wf| async move {
            wf.step("slow", move |ctx| async move {
                if !std::path::Path::new(&marker).exists() {
                    std::fs::write(&marker, "died").map_err(StepFailure::from_error)?;
                    tokio::time::sleep(Duration::from_secs(3)).await;
                    DIE.store(true, Ordering::SeqCst);
                    std::future::pending::<()>().await;
                }
                Ok(format!("attempt {}", ctx.attempt()))
            })
            .await
        })
        .await?;
    Ok(format!("{before} {slow}"))
}

/// Serves `workflow`. When a body sets `die`, the invocation is dropped
/// `grace` later where it is and the handler fails, as if the sandbox had
/// died: nothing more of it reaches the service, which invokes again. (A
/// real `exit` would end `cargo lambda watch`'s function scheduler for
/// good.)
async fn serve_crashing<W, I, O>(
    workflow: W,
    die: &'static std::sync::atomic::AtomicBool,
    grace: Duration,
) -> Result<(), Error>
where
    I: serde::de::DeserializeOwned + Send + 'static,
    O: serde::Serialize + Send + 'static,
    W: durable_yield::WorkflowFn<I, O>,
{
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let service = AwsDurableService::from_conf(&config);
    let function = DurableFunction::new(workflow, service, CheckpointBatching::default());
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<durable_yield::model::InvocationInput>| {
            let function = function.clone();
            async move {
                die.store(false, Ordering::SeqCst);
                let died = async {
                    while !die.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    tokio::time::sleep(grace).await;
                };
                // Boxed: rustdoc lays out the whole future otherwise, past
                // its query depth limit.
                let handled = Box::pin(async move { function.handle(event.payload).await });
                tokio::select! {
                    output = handled => Ok(output?),
                    () = died => Err(Error::from("the sandbox died in a step body")),
                }
            }
        },
    ))
    .await
}

#[derive(Debug, Deserialize)]
struct HooksInput {
    /// A file the plugin appends its hook lines to.
    #[allow(dead_code)]
    log: String,
}

/// A child holding a step and a one-second wait, then a two-item map
/// whose second item fails (every failure tolerated).
async fn plugin_hooks(mut wf: Workflow, _input: HooksInput) -> Result<u32, StepError> {
    let a: u32 = wf
        .child("group", |mut wf| async move {
            let a: u32 = wf.step("inside", |_| async { Ok(1) }).await?;
            wf.wait("nap", Duration::from_secs(1)).await;
            Ok::<_, StepError>(a)
        })
        .await?;
    let r = wf
        .map_with(
            MapConfig::named("items")
                .max_concurrency(1)
                .completion(CompletionPolicy::all()),
            vec![1u32, 2],
            |_, x, _| async move {
                if x == 2 {
                    Err::<u32, _>("two is bad")
                } else {
                    Ok(x)
                }
            },
        )
        .await?;
    Ok(a + r.successes().sum::<u32>())
}

/// Writes each hook of AWS's newest plugin revision as a line to the file
/// named by the execution input's `log` field.
struct HookLog;

struct HookLines(Option<std::fs::File>);

impl HookLines {
    fn line(&mut self, line: String) -> durable_yield::plugin::HookResult {
        if let Some(file) = &mut self.0 {
            writeln!(file, "{line}")?;
        }
        Ok(())
    }
}

impl durable_yield::plugin::Plugin for HookLog {
    fn invocation(
        &self,
        start: &durable_yield::plugin::InvocationStart<'_>,
    ) -> Result<Box<dyn durable_yield::plugin::InvocationHooks>, durable_yield::BoxError> {
        let input = start
            .operations
            .iter()
            .find_map(|op| op.execution_details.as_ref()?.input_payload.clone());
        let log = input
            .and_then(|p| serde_json::from_str::<serde_json::Value>(p.as_str()).ok())
            .and_then(|v| v["log"].as_str().map(str::to_owned));
        let file = match log {
            Some(path) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
            None => None,
        };
        Ok(Box::new(HookLines(file)))
    }
}

fn function_line(hook: &str, e: &durable_yield::plugin::FunctionEvent<'_>) -> String {
    format!(
        "{hook} {} {}/{}{}{}{}",
        e.name.unwrap_or("-"),
        e.op_type,
        e.sub_type.unwrap_or("-"),
        e.attempt.map(|a| format!(" #{a}")).unwrap_or_default(),
        if e.replayed { " replayed" } else { "" },
        e.outcome
            .map(|o| format!(" {}", o.as_str()))
            .unwrap_or_default(),
    )
}

impl durable_yield::plugin::InvocationHooks for HookLines {
    fn on_operation_start(
        &mut self,
        e: &durable_yield::plugin::OperationEvent<'_>,
    ) -> durable_yield::plugin::HookResult {
        self.line(format!(
            "op start {} {} replayed={}",
            e.name.unwrap_or("-"),
            e.status,
            e.replayed
        ))
    }
    fn on_operation_end(
        &mut self,
        e: &durable_yield::plugin::OperationEvent<'_>,
    ) -> durable_yield::plugin::HookResult {
        self.line(format!(
            "op end {} {} replayed={}",
            e.name.unwrap_or("-"),
            e.status,
            e.replayed
        ))
    }
    fn on_attempt_start(
        &mut self,
        e: &durable_yield::plugin::AttemptEvent<'_>,
    ) -> durable_yield::plugin::HookResult {
        self.line(format!(
            "attempt start {} #{}",
            e.name.unwrap_or("-"),
            e.attempt
        ))
    }
    fn on_attempt_end(
        &mut self,
        e: &durable_yield::plugin::AttemptEvent<'_>,
    ) -> durable_yield::plugin::HookResult {
        let outcome = e.outcome.map(|o| o.as_str()).unwrap_or("-");
        self.line(format!(
            "attempt end {} #{} {outcome}",
            e.name.unwrap_or("-"),
            e.attempt
        ))
    }
    fn on_invocation_start(
        &mut self,
        start: &durable_yield::plugin::InvocationStart<'_>,
    ) -> durable_yield::plugin::HookResult {
        self.line(format!("invocation start first={}", start.first_invocation))
    }
    fn on_function_start(
        &mut self,
        e: &durable_yield::plugin::FunctionEvent<'_>,
    ) -> durable_yield::plugin::HookResult {
        self.line(function_line("fn start", e))
    }
    fn on_function_end(
        &mut self,
        e: &durable_yield::plugin::FunctionEvent<'_>,
    ) -> durable_yield::plugin::HookResult {
        self.line(function_line("fn end", e))
    }
    fn on_operation_change(
        &mut self,
        change: &durable_yield::plugin::OperationChange<'_>,
    ) -> durable_yield::plugin::HookResult {
        let missing = change
            .updated
            .iter()
            .filter(|u| !change.operations.iter().any(|o| o.id == u.id))
            .count();
        let mut names: Vec<String> = change
            .updated
            .iter()
            .filter(|o| o.op_type != durable_yield::model::OperationType::Execution)
            .map(|o| format!("{}={}", o.name.as_deref().unwrap_or("-"), o.status))
            .collect();
        names.sort();
        self.line(format!("change {} missing={missing}", names.join(",")))
    }
    fn on_invocation_end(
        &mut self,
        e: &durable_yield::plugin::InvocationEnd<'_>,
    ) -> durable_yield::plugin::HookResult {
        self.line(format!("invocation end {}", e.status))
    }
}

/// Counts the checkpoint requests an invocation makes.
#[derive(Clone)]
struct CountingService {
    inner: AwsDurableService,
    requests: Arc<AtomicU64>,
}

impl DurableService for CountingService {
    async fn checkpoint(
        &self,
        execution_arn: &str,
        checkpoint_token: &str,
        updates: Vec<OperationUpdate>,
    ) -> Result<CheckpointResponse, ServiceError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.inner
            .checkpoint(execution_arn, checkpoint_token, updates)
            .await
    }

    async fn get_state(
        &self,
        execution_arn: &str,
        checkpoint_token: &str,
        marker: &str,
    ) -> Result<ExecutionState, ServiceError> {
        self.inner
            .get_state(execution_arn, checkpoint_token, marker)
            .await
    }
}

/// `steps` steps; the handler logs how many checkpoint requests it made.
async fn checkpoint_count(mut wf: Workflow, input: Counted) -> Result<u32, StepError> {
    let mut total = 0;
    for i in 0..input.steps {
        total += wf
            .step(format!("s{i}"), move |_| async move { Ok(i) })
            .await?;
    }
    Ok(total)
}

/// How long a chained invoke's target takes before its workflow starts.
///
/// A Lambda function invoked by the service takes some time to start; the
/// emulator invokes a target the moment the caller's START is recorded,
/// while the caller's invocation is still ending. A target that failed at
/// once on a loaded machine was once recorded (`ChainedInvokeFailed`)
/// before the caller's `InvocationCompleted`, the reverse of the order
/// AWS's requirement 5-6 lists (its matcher compares events by `EventId`).
const TARGET_LATENCY: Duration = Duration::from_millis(300);

/// Serves a chained invoke's target, each invocation starting
/// [`TARGET_LATENCY`] after its event arrives.
async fn serve_target<I, O, W>(workflow: W) -> Result<(), Error>
where
    I: serde::de::DeserializeOwned + Send + 'static,
    O: Serialize + Send + 'static,
    W: durable_yield::WorkflowFn<I, O>,
{
    let function = durable_yield::lambda::DurableHandler::new(workflow)
        .into_service()
        .await;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<durable_yield::model::InvocationInput>| {
            let function = function.clone();
            async move {
                tokio::time::sleep(TARGET_LATENCY).await;
                Ok::<_, Error>(function.handle(event.payload).await?)
            }
        },
    ))
    .await
}

async fn serve_counted() -> Result<(), Error> {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let requests = Arc::new(AtomicU64::new(0));
    let service = CountingService {
        inner: AwsDurableService::from_conf(&config),
        requests: requests.clone(),
    };
    let function = DurableFunction::new(checkpoint_count, service, CheckpointBatching::default());
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<durable_yield::model::InvocationInput>| {
            let function = function.clone();
            let requests = requests.clone();
            async move {
                let log: Option<String> = event
                    .payload
                    .initial_execution_state
                    .operations
                    .iter()
                    .find_map(|op| op.execution_details.as_ref()?.input_payload.clone())
                    .and_then(|p| serde_json::from_str::<serde_json::Value>(p.as_str()).ok())
                    .and_then(|v| v.get("log")?.as_str().map(str::to_owned));
                requests.store(0, Ordering::SeqCst);
                let output = function.handle(event.payload).await?;
                if let Some(log) = log {
                    let mut file = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(log)?;
                    writeln!(file, "{}", requests.load(Ordering::SeqCst))?;
                }
                Ok::<_, Error>(output)
            }
        },
    ))
    .await
}

/// What [`replay_safe`] returns.
#[derive(Debug, Serialize, Deserialize)]
struct ReplaySafe {
    arn: String,
    key: String,
    now_ms: u64,
    token: u64,
    uuid: String,
    later_ms: u64,
}

/// The execution ARN, a step's idempotency key and replay-safe values,
/// recorded before a one-second wait and returned after it (by a replay).
async fn replay_safe(mut wf: Workflow, _: serde_json::Value) -> Result<ReplaySafe, StepError> {
    let arn = wf.execution_arn().to_owned();
    let key: String = wf
        .step("charge", |ctx| async move { Ok(ctx.idempotency_key()) })
        .await?;
    let ms = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    };
    let now_ms = ms(wf.now().await?);
    let token: u64 = wf.random().await?;
    let uuid = wf.uuid().await?;
    wf.wait("pause", Duration::from_secs(1)).await;
    let later_ms = ms(wf.now().await?);
    Ok(ReplaySafe {
        arn,
        key,
        now_ms,
        token,
        uuid,
        later_ms,
    })
}

/// An error of the user's, raised inside a child context.
#[derive(Debug)]
struct OutOfStock;

impl std::fmt::Display for OutOfStock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no stock left")
    }
}

impl std::error::Error for OutOfStock {}

/// Doubles `x` in a step named `double`.
async fn double(mut wf: Workflow, x: u64) -> Result<u64, StepError> {
    wf.step("double", move |_| async move { Ok(x * 2) }).await
}

/// JSON whose storage times out once per execution: the first value it
/// encodes in an execution fails transiently (`CodecError::Unavailable`),
/// which fails the invocation for the service to invoke it again.
#[derive(Clone, Copy)]
struct UnreachableOnce;

/// The executions whose [`UnreachableOnce`] encode has failed.
static UNREACHED: std::sync::Mutex<std::collections::BTreeSet<String>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

impl durable_yield::codecs::Codec for UnreachableOnce {
    fn id(&self) -> &str {
        "unreachable-once"
    }
    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        cx: &durable_yield::codecs::PayloadContext<'_>,
    ) -> Result<Vec<u8>, durable_yield::codecs::CodecError> {
        let first = UNREACHED
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(cx.execution_arn().to_owned());
        if first {
            return Err(durable_yield::codecs::CodecError::unavailable(
                self.id(),
                "the store timed out",
            ));
        }
        Json.encode(value, cx)
    }
    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        bytes: &[u8],
        cx: &durable_yield::codecs::PayloadContext<'_>,
    ) -> Result<T, durable_yield::codecs::CodecError> {
        Json.decode(bytes, cx)
    }
    fn is_text(&self) -> bool {
        true
    }
    fn tagged(&self) -> bool {
        false
    }
}

/// The scenarios of the `concurrency` function: child contexts, map and
/// parallel, picked by the input's `scenario`.
async fn concurrency(mut wf: Workflow, input: serde_json::Value) -> Result<String, StepError> {
    let scenario = input["scenario"].as_str().unwrap_or("").to_owned();
    match scenario.as_str() {
        // A map of two items whose steps end in the same round; the second
        // one's result cannot be encoded the first time ([`UnreachableOnce`]):
        // the invocation fails, and the service invokes the function again.
        // Each body run appends `item-<i>` to the file `marker`.
        "transient-codec" => {
            let marker = input["marker"].as_str().unwrap_or("").to_owned();
            let items = wf
                .map("items", vec![0u64, 1], move |mut wf, i: u64, _| {
                    let marker = marker.clone();
                    async move {
                        let body = move |_| async move {
                            let mut file = std::fs::OpenOptions::new()
                                .create(true)
                                .append(true)
                                .open(&marker)?;
                            writeln!(file, "item-{i}")?;
                            Ok(10 * (i + 1))
                        };
                        let config = StepConfig::named("work");
                        let v: u64 = if i == 0 {
                            wf.step_with(config, body).await?
                        } else {
                            wf.step_with(config.codec(UnreachableOnce), body).await?
                        };
                        Ok::<_, StepError>(v)
                    }
                })
                .await?;
            let sum: u64 = items.into_values()?.into_iter().sum();
            Ok(sum.to_string())
        }
        // A child holding a step and a grandchild that waits, then steps.
        "nested-children" => {
            let v: u64 = wf
                .child("outer", |mut wf| async move {
                    let a: u64 = wf.step("in-outer", |_| async { Ok(4u64) }).await?;
                    wf.child("inner", move |mut wf| async move {
                        wf.wait("nap", Duration::from_secs(1)).await;
                        wf.step("in-inner", move |_| async move { Ok(a * 10) })
                            .await
                    })
                    .await
                })
                .await?;
            Ok(format!("{v}"))
        }
        // A child that fails; the parent handles the error and goes on.
        "child-fails" => {
            let reserved: Result<u64, StepError> = wf
                .child("reserve", |mut wf| async move {
                    let left: u64 = wf
                        .step("check", |_| async { Ok(0u64) })
                        .await
                        .map_err(|_| OutOfStock)?;
                    if left == 0 { Err(OutOfStock) } else { Ok(left) }
                })
                .await;
            let error = reserved.err().map(|e| e.to_string()).unwrap_or_default();
            wf.step("backorder", move |_| async move {
                Ok(format!("handled: {error}"))
            })
            .await
        }
        // A child result over 256 KiB: checkpointed with ReplayChildren,
        // rebuilt by a replay after the wait.
        "large-child" => {
            let big: String = wf
                .child("big", |mut wf| async move {
                    let mut parts = String::new();
                    for i in 0..3 {
                        let part: String = wf
                            .step(format!("part-{i}"), move |_| async move {
                                Ok(format!("{i}").repeat(100 * 1024))
                            })
                            .await?;
                        parts.push_str(&part);
                    }
                    Ok::<_, StepError>(parts)
                })
                .await?;
            wf.wait("pause", Duration::from_secs(1)).await;
            Ok(format!("{} bytes", big.len()))
        }
        "map-basic" => {
            let r = wf
                .map("double-all", vec![1u64, 2, 3], |wf, x, _| double(wf, x))
                .await?;
            Ok(format!("{:?}", r.into_values()?))
        }
        "empty-map" => {
            let r = wf
                .map("nothing", Vec::<u64>::new(), |wf, x, _| double(wf, x))
                .await?;
            Ok(format!("{} {:?}", r.completion_reason(), r.into_values()?))
        }
        // 4 items one at a time, done after 2 successes.
        "min-successful" => {
            let config = MapConfig::named("first-two")
                .max_concurrency(1)
                .completion(CompletionPolicy::default().min_successful(2));
            let r = wf
                .map_with(config, vec![1u64, 2, 3, 4], |wf, x, _| double(wf, x))
                .await?;
            Ok(format!("{} {:?}", r.completion_reason(), r.into_values()?))
        }
        // 3 items one at a time, one failure tolerated: items 0 and 1 fail,
        // item 2 never starts.
        "tolerated-failures" => {
            let config = MapConfig::named("fragile")
                .max_concurrency(1)
                .completion(CompletionPolicy::default().tolerated_failure_count(1));
            let r = wf
                .map_with(config, vec![0u64, 1, 2], |mut wf, x, _| async move {
                    let config = StepConfig::named("try").retry(NoRetry);
                    wf.step_with(config, move |_| async move {
                        if x < 2 {
                            Err(StepFailure::new("Broken", format!("item {x} broke")))
                        } else {
                            Ok(x)
                        }
                    })
                    .await
                })
                .await?;
            let statuses: Vec<String> = r
                .items()
                .iter()
                .map(|i| format!("{:?}", i.status))
                .collect();
            Ok(format!(
                "{} {} total={} {}",
                r.completion_reason(),
                r.status(),
                r.total_count(),
                statuses.join(",")
            ))
        }
        // Item 1 waits three seconds; items 0 and 2 finish meanwhile, in
        // the first invocation (long enough that a loaded machine does not
        // see the wait end before that invocation does).
        "wait-in-branch" => {
            let r = wf
                .map("mixed", vec![0u64, 1, 2], |mut wf, x, _| async move {
                    if x == 1 {
                        wf.wait("slow", Duration::from_secs(3)).await;
                    }
                    double(wf, x).await
                })
                .await?;
            Ok(format!("{:?}", r.into_values()?))
        }
        // Each map item runs a parallel of two branches.
        "parallel-in-map" => {
            let r = wf
                .map("outer", vec![1u64, 2], |mut wf, x, _| async move {
                    let inner = wf
                        .parallel(
                            "inner",
                            vec![
                                Branch::named("double", move |wf| double(wf, x)),
                                Branch::named("square", move |mut wf| async move {
                                    wf.step("square", move |_| async move { Ok(x * x) }).await
                                }),
                            ],
                        )
                        .await?;
                    Ok::<_, StepError>(inner.into_values()?.iter().sum::<u64>())
                })
                .await?;
            Ok(format!("{:?}", r.into_values()?))
        }
        // Item 0 is the slowest: it finishes last, its value comes first.
        "index-order" => {
            let r = wf
                .map("ordered", vec![0u64, 1, 2], |mut wf, x, _| async move {
                    wf.step("work", move |_| async move {
                        tokio::time::sleep(Duration::from_millis(300 - 150 * x)).await;
                        Ok(x)
                    })
                    .await
                })
                .await?;
            Ok(format!("{:?}", r.into_values()?))
        }
        // Four results of 100 KiB: the batch result is over 256 KiB.
        "large-batch" => {
            let r = wf
                .map("big", vec![0u64, 1, 2, 3], |mut wf, x, _| async move {
                    wf.step("chunk", move |_| async move {
                        Ok(format!("{x}").repeat(100 * 1024))
                    })
                    .await
                })
                .await?;
            wf.wait("pause", Duration::from_secs(1)).await;
            let total: usize = r.successes().map(String::len).sum();
            Ok(format!("{total} bytes"))
        }
        // One item at a time, each waiting a second.
        "one-at-a-time" => {
            let config = MapConfig::named("serial").max_concurrency(1);
            let r = wf
                .map_with(config, vec![1u64, 2, 3], |mut wf, x, _| async move {
                    wf.wait("breathe", Duration::from_secs(1)).await;
                    double(wf, x).await
                })
                .await?;
            Ok(format!("{:?}", r.into_values()?))
        }
        // Named branches; one waits, so the invocation suspends and the
        // parallel is replayed.
        "named-parallel" => {
            let r = wf
                .parallel_with(
                    ParallelConfig::named("notify"),
                    vec![
                        Branch::named("email", |mut wf| async move {
                            wf.wait("throttle", Duration::from_secs(1)).await;
                            wf.step("send", |_| async { Ok("mailed".to_owned()) }).await
                        }),
                        Branch::named("sms", |mut wf| async move {
                            wf.step("send", |_| async { Ok("texted".to_owned()) }).await
                        }),
                    ],
                )
                .await?;
            Ok(r.into_values()?.join("+"))
        }
        // A flat map of 3 items (no CONTEXT per item); item 1 waits a
        // second, so the map is replayed by running the items again.
        "flat-map" => {
            let config = MapConfig::named("flat").nesting(Nesting::Flat);
            let r = wf
                .map_with(config, vec![1u64, 2, 3], |mut wf, x, _| async move {
                    if x == 2 {
                        wf.wait(format!("nap-{x}"), Duration::from_secs(1)).await;
                    }
                    wf.step(format!("double-{x}"), move |_| async move { Ok(x * 2) })
                        .await
                })
                .await?;
            Ok(format!("{} {:?}", r.status(), r.into_values()?))
        }
        // A flat parallel, one branch at a time, failing fast.
        "flat-parallel" => {
            let config = ParallelConfig::named("flat-p")
                .nesting(Nesting::Flat)
                .max_concurrency(1)
                .completion(CompletionPolicy::fail_fast());
            let r = wf
                .parallel_with(
                    config,
                    vec![
                        Branch::new(|mut wf| async move {
                            wf.step("first", |_| async { Ok(1u64) }).await
                        }),
                        Branch::new(|mut wf| async move {
                            let config = StepConfig::named("second").retry(NoRetry);
                            wf.step_with(config, |_| async {
                                Err::<u64, _>(StepFailure::new("Broken", "second broke"))
                            })
                            .await
                        }),
                        Branch::new(|mut wf| async move {
                            wf.step("third", |_| async { Ok(3u64) }).await
                        }),
                    ],
                )
                .await?;
            Ok(format!(
                "{} {} total={}",
                r.completion_reason(),
                r.status(),
                r.total_count()
            ))
        }
        // At the root: a virtual child holding steps a and b, then step c
        // (OPERATIONS.md §2.4's example), then a wait, so that the
        // virtual child runs again on replay.
        "virtual-child" => {
            let ab: u64 = wf
                .child_with(
                    ChildConfig::named("group").virtual_context(),
                    |mut wf| async move {
                        let a: u64 = wf.step("a", |_| async { Ok(1u64) }).await?;
                        let b: u64 = wf.step("b", move |_| async move { Ok(a + 1) }).await?;
                        Ok::<_, StepError>(a + b)
                    },
                )
                .await?;
            let c: u64 = wf.step("c", move |_| async move { Ok(ab * 10) }).await?;
            wf.wait("w", Duration::from_secs(1)).await;
            Ok(format!("{c}"))
        }
        // Unnamed operations: a step, a wait, a child, a wait-for-condition.
        "unnamed" => {
            let x: u64 = wf
                .step_with(StepConfig::new(), |_| async { Ok(20u64) })
                .await?;
            wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
            let y: u64 = wf
                .child_with(ChildConfig::new(), move |mut wf| async move {
                    wf.step_with(StepConfig::new(), move |_| async move { Ok(x + 1) })
                        .await
                })
                .await?;
            let config =
                ConditionConfig::new().strategy(FixedDelay::new(Duration::from_secs(1), 5));
            let z: u64 = wf
                .wait_for_condition_with(config, y, |_, n| async move {
                    Ok(if n >= 22 {
                        Condition::Met(n)
                    } else {
                        Condition::NotMet(n + 1)
                    })
                })
                .await?;
            Ok(format!("{z}"))
        }
        other => Ok(format!("no scenario {other:?}")),
    }
}

/// The scenarios of the `external` function: callbacks and
/// wait-for-condition, picked by the input's `scenario`.
async fn external(mut wf: Workflow, input: serde_json::Value) -> Result<String, StepError> {
    let secs = |key: &str| Duration::from_secs(input[key].as_u64().unwrap_or(0));
    match input["scenario"].as_str().unwrap_or("") {
        // One callback, with the time-outs of the input; its answer (or
        // how it ended) is the result.
        "callback" => {
            let config = CallbackConfig::named("approval")
                .timeout(secs("timeout"))
                .heartbeat_timeout(secs("heartbeat"));
            let cb = wf.create_callback_with::<String, _>(config).await;
            let id = cb.id().to_owned();
            let _: bool = wf
                .step("notify", move |_| async move { Ok(!id.is_empty()) })
                .await?;
            Ok(match wf.callback_result(&cb).await {
                Ok(v) => format!("value: {v}"),
                Err(e) => format!(
                    "{:?} {}: {}",
                    e.ending(),
                    e.error_type().unwrap_or(""),
                    e.message().unwrap_or("")
                ),
            })
        }
        // Two callbacks, awaited in the reverse order.
        "two-callbacks" => {
            let first = wf.create_callback::<u32>("first").await;
            let second = wf.create_callback::<u32>("second").await;
            let b = wf.callback_result(&second).await?;
            let a = wf.callback_result(&first).await?;
            Ok(format!("{a}-{b}"))
        }
        // A wait-for-callback whose submitter fails once and is retried.
        "wait-for-callback" => {
            let config = WaitForCallbackConfig::named("approval")
                .timeout(Duration::from_secs(60))
                .submitter_retry(FixedDelay::new(Duration::from_secs(1), 3));
            let verdict: String = wf
                .wait_for_callback_with(config, |ctx, id| async move {
                    if ctx.attempt() == 1 {
                        return Err(StepFailure::new("MailDown", format!("could not send {id}")));
                    }
                    Ok(())
                })
                .await?;
            Ok(format!("verdict: {verdict}"))
        }
        // A chained invoke of the function `target` with `input`.
        "invoke" => {
            let target = input["target"].as_str().unwrap_or("").to_owned();
            let result: Result<serde_json::Value, InvokeError> =
                wf.invoke(target, &input["input"]).await;
            Ok(match result {
                Ok(v) => format!("result: {v}"),
                Err(e) => format!("{:?} {}", e.ending(), e.error_type().unwrap_or("")),
            })
        }
        // A counter polled until it reaches `target`, 1 s then 2 s apart,
        // `max` checks at most.
        "condition" => {
            let target = input["target"].as_u64().unwrap_or(3);
            let strategy = ExponentialBackoff::new()
                .initial_delay(Duration::from_secs(1))
                .backoff_rate(2.0)
                .max_attempts(input["max"].as_u64().unwrap_or(10) as u32)
                .jitter(Jitter::None);
            let config = ConditionConfig::named("count").strategy(strategy);
            let n = wf
                .wait_for_condition_with(config, 0u64, move |_, n| async move {
                    Ok(if n + 1 >= target {
                        Condition::Met(n + 1)
                    } else {
                        Condition::NotMet(n + 1)
                    })
                })
                .await?;
            Ok(format!("reached {n}"))
        }
        other => Ok(format!("no scenario {other:?}")),
    }
}

/// The functions [`main`] serves.
pub const FUNCTIONS: [&str; 12] = [
    "step-wait-step",
    "multiple-steps",
    "wait-only",
    "replay-determinism",
    "step-fails",
    "binary-codecs",
    "checkpoint-count",
    "retry-succeeds",
    "retry-exhausted",
    "replay-safe",
    "concurrency",
    "external",
];

/// The OpenTelemetry functions (`otel-invocation`, `otel-execution`): a
/// child context with a step, a parallel of two branches, a map of two
/// items (each a step), a step whose first attempt fails (retried after a
/// second: a new invocation), a chained invoke of `multiple-steps`
/// (another), and a wait-for-callback the test answers (another).
async fn otel_tree(mut wf: Workflow, _: serde_json::Value) -> Result<String, StepError> {
    let child: u32 = wf
        .child("otel-child", |mut wf| async move {
            // Written in the child's span (its ids on the line).
            tracing::info!("otel child code");
            wf.step("otel-child-step", |_| async { Ok(1u32) }).await
        })
        .await?;
    let branches = vec![
        Branch::named("otel-branch-a", |mut wf: Workflow| async move {
            wf.step("otel-step-a", |_| async { Ok(2u32) }).await
        }),
        Branch::named("otel-branch-b", |mut wf: Workflow| async move {
            wf.step("otel-step-b", |_| async { Ok(3u32) }).await
        }),
    ];
    let parallel = wf
        .parallel("otel-parallel", branches)
        .await?
        .into_values()?;
    let map = wf
        .map("otel-map", vec![4u32, 5], |mut wf, x, _| async move {
            wf.step("otel-map-step", move |_| async move { Ok(x) })
                .await
        })
        .await?
        .into_values()?;
    let retried: u32 = wf
        .step_with(
            StepConfig::named("otel-retry").retry(FixedDelay::new(Duration::from_secs(1), 2)),
            |ctx| async move {
                // Written in the attempt's span.
                tracing::info!(attempt = ctx.attempt(), "otel retry attempt");
                if ctx.attempt() == 1 {
                    Err(StepFailure::new("Flaky", "the first attempt fails"))
                } else {
                    Ok(6)
                }
            },
        )
        .await?;
    // multiple-steps adds 0 + 1 + 2 + 3.
    let invoked: u32 = wf
        .invoke_with(
            durable_yield::InvokeConfig::named("otel-invoke"),
            "multiple-steps",
            &4u32,
        )
        .await?;
    let answer: String = wf
        .wait_for_callback_with(
            durable_yield::WaitForCallbackConfig::named("otel-callback")
                .timeout(Duration::from_secs(300)),
            |_, _| async { Ok(()) },
        )
        .await?;
    let total = child + parallel.iter().sum::<u32>() + map.iter().sum::<u32>() + retried + invoked;
    Ok(format!("{total} {answer}"))
}

/// The tracer provider of the OpenTelemetry functions: derived ids, a batch
/// exporter over OTLP/HTTP (protobuf) to `OTEL_EXPORTER_OTLP_ENDPOINT`,
/// the function's name as `service.name`. Built before the async runtime
/// (the blocking HTTP client must not be made or dropped inside one).
fn otel_provider(name: &str) -> Result<opentelemetry_sdk::trace::SdkTracerProvider, Error> {
    use opentelemetry_otlp::{Protocol, WithExportConfig};
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .build()?;
    Ok(opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_id_generator(durable_yield::otel::DeterministicIds::default())
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(name.to_owned())
                .build(),
        )
        .build())
}

/// Serves an OpenTelemetry function: the plugin flushes the provider at
/// the end of every invocation, as Lambda needs.
async fn serve_otel(
    provider: &opentelemetry_sdk::trace::SdkTracerProvider,
    view: durable_yield::otel::OtelView,
) -> Result<(), Error> {
    durable_yield::lambda::DurableHandler::new(otel_tree)
        .plugin(
            durable_yield::otel::OtelPlugin::from_provider(provider)
                .view(view)
                // `cargo lambda watch` makes up an X-Ray trace per request.
                .trace_from_header(false),
        )
        .run()
        .await
}

/// Serves the durable function `name` until the Lambda runtime stops,
/// logging JSON lines with the execution ARN as a top-level field
/// (`durable_yield::logging`), at `info` and above.
pub fn main(name: &str) -> Result<(), Error> {
    use tracing_subscriber::layer::{Layer, SubscriberExt};
    use tracing_subscriber::util::SubscriberInitExt;
    let stdout = durable_yield::logging::JsonLogLayer::stdout();
    // The conformance requirements that log ask for replay logging on.
    let stdout = if name.starts_with("conformance") {
        stdout.every_replay()
    } else {
        stdout
    };
    let layer = stdout.with_filter(tracing_subscriber::filter::LevelFilter::INFO);
    // A subscriber set up before (by a test harness) is kept.
    let _ = tracing_subscriber::registry().with(layer).try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let view = match name {
        "otel-invocation" => durable_yield::otel::OtelView::Invocation,
        "otel-execution" => durable_yield::otel::OtelView::Execution,
        _ => return runtime.block_on(serve(name)),
    };
    let provider = otel_provider(name)?;
    let served = runtime.block_on(serve_otel(&provider, view));
    drop(runtime);
    let _ = provider.shutdown();
    served
}

/// The `conformance` function: the workflow of the requirement its input
/// names (`{"id": "1-1", "input": "World"}`).
async fn conformance_requirement(
    wf: Workflow,
    input: serde_json::Value,
) -> Result<serde_json::Value, durable_yield::BoxError> {
    let id = input["id"].as_str().unwrap_or_default().to_owned();
    conformance::workflow(&id, wf, input["input"].clone()).await
}

async fn serve(name: &str) -> Result<(), Error> {
    match name {
        "step-wait-step" => durable_yield::lambda::run(step_wait_step).await,
        "conformance" => durable_yield::lambda::run(conformance_requirement).await,
        "conformance-plugin" | "conformance-plugin-faulty" | "conformance-plugin-pair" => {
            conformance::plugins_of_function(name)
                .into_iter()
                .fold(
                    durable_yield::lambda::DurableHandler::new(conformance_requirement),
                    durable_yield::lambda::DurableHandler::plugin,
                )
                .run()
                .await
        }
        conformance::ECHO => serve_target(conformance::target_echo).await,
        conformance::FAIL => serve_target(conformance::target_fail).await,
        conformance::SIZE => serve_target(conformance::target_size).await,
        "multiple-steps" => durable_yield::lambda::run(multiple_steps).await,
        "wait-only" => durable_yield::lambda::run(wait_only).await,
        "replay-determinism" => durable_yield::lambda::run(replay_determinism).await,
        "step-fails" => durable_yield::lambda::run(step_fails).await,
        "binary-codecs" => durable_yield::lambda::run(binary_codecs).await,
        "checkpoint-count" => serve_counted().await,
        "crash-in-step" => serve_crashing(crash_in_step, &DIE, Duration::ZERO).await,
        // Two seconds for a START sent while the body runs (100 ms in) to
        // reach the emulator first, as 3-12 asks.
        "conformance-crash" => {
            let grace = Duration::from_secs(2);
            serve_crashing(conformance_requirement, &conformance::DIE, grace).await
        }
        "plugin-hooks" => {
            durable_yield::lambda::DurableHandler::new(plugin_hooks)
                .plugin(HookLog)
                .run()
                .await
        }
        "retry-succeeds" => durable_yield::lambda::run(retry_succeeds).await,
        "retry-exhausted" => durable_yield::lambda::run(retry_exhausted).await,
        "replay-safe" => durable_yield::lambda::run(replay_safe).await,
        "concurrency" => durable_yield::lambda::run(concurrency).await,
        "external" => durable_yield::lambda::run(external).await,
        other => Err(format!("no durable function is named {other:?}").into()),
    }
}

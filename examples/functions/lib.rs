//! Durable Lambda functions, used by the interop tests against AWS's
//! emulator (`tests/interop/`).
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
    Branch, CallbackConfig, CheckpointBatching, ChildConfig, CompletionDecision, CompletionPolicy,
    Condition, ConditionConfig, InvokeError, MapConfig, Nesting, ParallelConfig, StepConfig,
    StepError, StepFailure, WaitConfig, WaitForCallbackConfig, Workflow,
};
use serde::{Deserialize, Serialize};

#[path = "workflows/basics.rs"]
mod basics;
#[path = "workflows/batches.rs"]
mod batches;
#[path = "workflows/crashes.rs"]
mod crashes;
#[path = "workflows/external.rs"]
mod external;
#[path = "workflows/services.rs"]
mod services;
#[path = "workflows/telemetry.rs"]
mod telemetry;

use basics::*;
use batches::*;
pub use crashes::interop_files;
use crashes::*;
use external::*;
use services::*;
use telemetry::*;

/// The functions [`main`] serves.
pub const FUNCTIONS: [&str; 13] = [
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
    "slow-step",
];

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
        "slow-step" => durable_yield::lambda::run(slow_step).await,
        other => Err(format!("no durable function is named {other:?}").into()),
    }
}

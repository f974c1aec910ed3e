//! Proof against the real protocol: the functions of `examples/functions/`
//! run as real `lambda_runtime` binaries (behind `cargo lambda watch`)
//! against AWS's own emulator of the durable execution service
//! (`dex-local-runner`, real timing). Each scenario checks the execution
//! (`GetDurableExecution`) and its recorded history
//! (`GetDurableExecutionHistory` with the execution data).
//!
//! The stack is installed by `.ci/run` into `.venv`. The test is
//! `#[ignore]`d, so that `cargo test --workspace` on a machine without the
//! stack reports it as ignored (with the reason) instead of passing it;
//! `.ci/run` runs it with `--include-ignored`. Run that way without the
//! stack, it fails and says how to install it.

use std::collections::BTreeSet;
use std::time::Duration;

use durable_yield_tests::emulator::{Stack, tools, workspace};
use serde_json::{Value, json};

mod batches;
mod contexts;
mod external;
mod helpers;
mod otel;
mod steps;

use batches::*;
use contexts::*;
use external::*;
use helpers::*;
use otel::*;
use steps::*;

#[test]
#[ignore = "needs AWS's emulator stack (dex-local-runner, cargo-lambda) in .venv/bin: \
            run .ci/run, or install it as the README's \"AWS's emulator, by hand\" says, \
            then cargo test --workspace -- --include-ignored"]
fn durable_functions_against_the_aws_emulator() {
    let Some((dex, cargo_lambda)) = tools() else {
        panic!(
            "dex-local-runner and cargo-lambda are not installed (in .venv/bin or \
             $DURABLE_YIELD_EMULATOR_BIN). Install them with:\n  python3 -m venv .venv\n  \
             .venv/bin/pip install aws-durable-execution-sdk-python-testing\n  \
             .venv/bin/pip install --no-deps cargo-lambda\nor run .ci/run, which does."
        );
    };
    let receiver = match durable_yield_tests::otlp::OtlpReceiver::start() {
        Ok(receiver) => OTLP.get_or_init(|| receiver),
        Err(e) => panic!("the OTLP receiver did not start: {e}"),
    };
    let env = [("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())];
    let stack = match Stack::start_with(&dex, &cargo_lambda, false, &env) {
        Ok(stack) => stack,
        Err(e) => panic!("the emulator stack did not start: {e}"),
    };
    type Scenario = fn(&Stack) -> Result<(), String>;
    let scenarios: [(&str, Scenario); 49] = [
        ("step-wait-step", step_wait_step),
        ("multiple-steps", multiple_steps),
        ("wait-only", |s| wait_only(s, 1)),
        ("longer-wait", |s| wait_only(s, 3)),
        ("replay-determinism", replay_determinism),
        ("step-fails", step_fails),
        ("binary-codecs", binary_codecs),
        ("checkpoint-requests-per-step", checkpoint_requests_per_step),
        ("retry-succeeds", retry_succeeds),
        ("retry-exhausted", retry_exhausted),
        ("replay-safe", replay_safe),
        ("nested-children", nested_children),
        ("crash-in-step", crash_in_step),
        ("transient-codec", transient_codec),
        ("flat-map", flat_map),
        ("flat-parallel", flat_parallel),
        ("virtual-child", virtual_child),
        ("custom-subtypes", custom_subtypes),
        ("unnamed", unnamed),
        ("plugin-hooks", plugin_hooks),
        ("otel-invocation", |s| otel(s, "otel-invocation")),
        ("otel-execution", |s| otel(s, "otel-execution")),
        ("child-fails", child_fails),
        ("large-child", large_child),
        ("map-basic", map_basic),
        ("empty-map", empty_map),
        ("min-successful", min_successful),
        ("should-complete", should_complete),
        ("tolerated-failures", tolerated_failures),
        ("wait-in-branch", wait_in_branch),
        ("parallel-in-map", parallel_in_map),
        ("index-order", index_order),
        ("large-batch", large_batch),
        ("one-at-a-time", one_at_a_time),
        ("named-parallel", named_parallel),
        ("callback-succeeded", callback_succeeded),
        ("callback-failed", callback_failed),
        ("callback-timed-out", callback_timed_out),
        ("callback-heartbeat-timed-out", callback_heartbeat_timed_out),
        ("two-callbacks", two_callbacks),
        ("wait-for-callback", wait_for_callback),
        ("invoke-durable", invoke_durable),
        ("invoke-failing", invoke_failing),
        ("invoke-missing", invoke_missing),
        ("condition-polls", condition_polls),
        ("condition-exhausted", condition_exhausted),
        ("json-logs", json_logs),
        ("timeline", timeline),
        // A second execution of a function whose process is already warm.
        ("step-wait-step (warm)", step_wait_step),
    ];
    // Run alone, after the others: an execution that must time out 2 s
    // after it starts with its step started, which a machine busy with
    // every other scenario at once may not start in time.
    let alone: [(&str, Scenario); 1] = [("execution-timeout", execution_timeout)];
    // For a developer's quick run: DURABLE_YIELD_INTEROP_ONLY=a,b runs the
    // scenarios named a and b alone (CI never sets it).
    let only = std::env::var("DURABLE_YIELD_INTEROP_ONLY")
        .ok()
        .filter(|o| !o.trim().is_empty());
    let chosen = |name: &str| {
        only.as_deref()
            .is_none_or(|only| only.split(',').any(|o| o.trim() == name))
    };
    assert!(
        scenarios.iter().chain(&alone).any(|(name, _)| chosen(name)),
        "DURABLE_YIELD_INTEROP_ONLY={only:?} names no scenario"
    );
    let report = |name: &str, outcome: std::thread::Result<Result<(), String>>| match outcome {
        Ok(Ok(())) => {
            eprintln!("interop scenario {name}: ok");
            None
        }
        Ok(Err(e)) => Some(format!("{name}: {e}")),
        Err(_) => Some(format!("{name}: panicked")),
    };
    let mut failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = scenarios
            .iter()
            .filter(|(name, _)| chosen(name))
            .map(|(name, scenario)| {
                let stack = &stack;
                (name, scope.spawn(move || scenario(stack)))
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|(name, handle)| report(name, handle.join()))
            .collect()
    });
    for (name, scenario) in alone.iter().filter(|(name, _)| chosen(name)) {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scenario(&stack)));
        failures.extend(report(name, outcome));
    }
    assert!(
        failures.is_empty(),
        "{} interop scenario(s) failed:\n{}\n{}",
        failures.len(),
        failures.join("\n\n"),
        stack.log_tail()
    );
}

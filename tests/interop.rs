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

use std::time::Duration;

use durable_yield_tests::emulator::{Stack, tools, workspace};
use serde_json::{Value, json};

/// Runs `function` on `input` to the end; returns the execution and its
/// history.
fn run(stack: &Stack, function: &str, input: Value) -> Result<(Value, Vec<Value>), String> {
    let name = format!("{function}-{}-{}", std::process::id(), unique());
    let arn = stack.start_execution(function, &name, &input)?;
    // The execution times out after 120 s in the emulator.
    let execution = stack.wait_until_done(&arn, Duration::from_secs(180))?;
    let history = stack.history(&arn)?;
    Ok((execution, history))
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

/// `(EventType, Name)` of every event but `InvocationCompleted`.
fn kinds(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .filter(|e| e["EventType"] != "InvocationCompleted")
        .map(|e| {
            (
                e["EventType"].as_str().unwrap_or("?").to_owned(),
                e["Name"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// The history shows `n` invocations.
fn expect_invocations(events: &[Value], n: usize) -> Result<(), String> {
    let actual = invocations(events);
    check(actual == n, || {
        format!("{actual} invocations instead of {n}")
    })
}

/// A fresh file under `target/interop-logs/` for a function to append to.
fn fresh_log(kind: &str) -> std::path::PathBuf {
    let log = workspace().join(format!(
        "target/interop-logs/{kind}-{}-{}.log",
        std::process::id(),
        unique()
    ));
    let _ = std::fs::remove_file(&log);
    log
}

fn invocations(events: &[Value]) -> usize {
    events
        .iter()
        .filter(|e| e["EventType"] == "InvocationCompleted")
        .count()
}

/// The result payload of the `StepSucceeded` event of step `name`.
fn step_result<'a>(events: &'a [Value], name: &str) -> Option<&'a str> {
    events
        .iter()
        .find(|e| e["EventType"] == "StepSucceeded" && e["Name"] == name)
        .and_then(|e| e["StepSucceededDetails"]["Result"]["Payload"].as_str())
}

fn expect(kinds: &[(String, String)], expected: &[(&str, &str)]) -> Result<(), String> {
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(t, n)| (t.to_string(), n.to_string()))
        .collect();
    if kinds == expected.as_slice() {
        Ok(())
    } else {
        Err(format!("history was {kinds:?}\nexpected {expected:?}"))
    }
}

fn check(condition: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if condition { Ok(()) } else { Err(what()) }
}

/// The execution FAILED with an error whose type passes `error_type` and
/// whose message is `message`.
fn failed_with(
    execution: &Value,
    error_type: impl Fn(&str) -> bool,
    message: &str,
) -> Result<(), String> {
    let error = &execution["Error"];
    check(
        execution["Status"] == "FAILED"
            && error["ErrorMessage"] == message
            && error["ErrorType"].as_str().is_some_and(error_type),
        || format!("expected FAILED with {message:?}: {execution}"),
    )
}

fn succeeded_with(execution: &Value, result: &str) -> Result<(), String> {
    check(
        execution["Status"] == "SUCCEEDED" && execution["Result"] == result,
        || format!("expected SUCCEEDED with {result}, got {execution}"),
    )
}

fn step_wait_step(stack: &Stack) -> Result<(), String> {
    let (execution, events) = run(stack, "step-wait-step", json!({"name": "ada"}))?;
    succeeded_with(&execution, "\"HELLO ADA\"")?;
    expect(
        &kinds(&events),
        &[
            (
                "ExecutionStarted",
                execution["DurableExecutionName"].as_str().unwrap_or(""),
            ),
            ("StepStarted", "greet"),
            ("StepSucceeded", "greet"),
            ("WaitStarted", "pause"),
            ("WaitSucceeded", "pause"),
            ("StepStarted", "shout"),
            ("StepSucceeded", "shout"),
            (
                "ExecutionSucceeded",
                execution["DurableExecutionName"].as_str().unwrap_or(""),
            ),
        ],
    )?;
    check(
        step_result(&events, "greet") == Some("\"hello ada\""),
        || format!("greet recorded {:?}", step_result(&events, "greet")),
    )?;
    check(
        step_result(&events, "shout") == Some("\"HELLO ADA\""),
        || format!("shout recorded {:?}", step_result(&events, "shout")),
    )?;
    let wait = events.iter().find(|e| e["EventType"] == "WaitStarted");
    check(
        wait.is_some_and(|w| w["WaitStartedDetails"]["Duration"] == 1),
        || format!("wait recorded {wait:?}"),
    )?;
    expect_invocations(&events, 2)
}

fn multiple_steps(stack: &Stack) -> Result<(), String> {
    let (execution, events) = run(stack, "multiple-steps", json!(5))?;
    succeeded_with(&execution, "10")?;
    let steps: Vec<(String, String)> = kinds(&events)
        .into_iter()
        .filter(|(t, _)| t.starts_with("Step"))
        .collect();
    let mut expected = Vec::new();
    for i in 0..5 {
        expected.push(("StepStarted".to_owned(), format!("add-{i}")));
        expected.push(("StepSucceeded".to_owned(), format!("add-{i}")));
    }
    check(steps == expected, || format!("steps were {steps:?}"))?;
    let results: Vec<_> = (0..5)
        .map(|i| step_result(&events, &format!("add-{i}")).unwrap_or("?"))
        .collect();
    check(results == ["0", "1", "3", "6", "10"], || {
        format!("step results were {results:?}")
    })?;
    expect_invocations(&events, 1)
}

fn wait_only(stack: &Stack, seconds: u64) -> Result<(), String> {
    let (execution, events) = run(stack, "wait-only", json!(seconds))?;
    succeeded_with(&execution, &format!("\"waited {seconds} s\""))?;
    let types: Vec<String> = kinds(&events).into_iter().map(|(t, _)| t).collect();
    check(
        types
            == [
                "ExecutionStarted",
                "WaitStarted",
                "WaitSucceeded",
                "ExecutionSucceeded",
            ],
        || format!("history was {types:?}"),
    )?;
    let started = events
        .iter()
        .find(|e| e["EventType"] == "WaitStarted")
        .ok_or("no WaitStarted")?;
    let details = &started["WaitStartedDetails"];
    check(details["Duration"] == seconds, || {
        format!("wait recorded {details}")
    })?;
    let (begin, end) = (
        started["EventTimestamp"].as_f64().unwrap_or(0.0),
        details["ScheduledEndTimestamp"].as_f64().unwrap_or(0.0),
    );
    check(((end - begin) - seconds as f64).abs() < 0.01, || {
        format!("scheduled end {end} is not {seconds} s after {begin}")
    })?;
    // Real timing: the execution really waited.
    let elapsed = execution["EndTimestamp"].as_f64().unwrap_or(0.0)
        - execution["StartTimestamp"].as_f64().unwrap_or(0.0);
    check(elapsed >= seconds as f64, || {
        format!("the execution took {elapsed} s, less than the {seconds} s wait")
    })?;
    expect_invocations(&events, 2)
}

fn replay_determinism(stack: &Stack) -> Result<(), String> {
    let log = fresh_log("side-effect");
    let (execution, events) = run(
        stack,
        "replay-determinism",
        json!({"log": log.display().to_string()}),
    )?;
    succeeded_with(&execution, "42")?;
    expect_invocations(&events, 3)?;
    let runs = std::fs::read_to_string(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    check(runs.lines().count() == 1, || {
        format!(
            "the step body ran {} times across 3 invocations:\n{runs}",
            runs.lines().count()
        )
    })?;
    let started = kinds(&events)
        .iter()
        .filter(|(t, _)| t == "StepStarted")
        .count();
    check(started == 1, || format!("{started} StepStarted events"))
}

fn step_fails(stack: &Stack) -> Result<(), String> {
    let (execution, events) = run(stack, "step-fails", json!({}))?;
    failed_with(&execution, |t| t == "CardDeclined", "card declined")?;
    let types: Vec<(String, String)> = kinds(&events);
    let name = execution["DurableExecutionName"].as_str().unwrap_or("");
    expect(
        &types,
        &[
            ("ExecutionStarted", name),
            ("StepStarted", "validate"),
            ("StepSucceeded", "validate"),
            ("StepStarted", "charge"),
            ("StepFailed", "charge"),
            ("ExecutionFailed", name),
        ],
    )?;
    let failed = events
        .iter()
        .find(|e| e["EventType"] == "StepFailed")
        .ok_or("no StepFailed")?;
    let recorded = &failed["StepFailedDetails"]["Error"]["Payload"];
    check(recorded["ErrorMessage"] == "card declined", || {
        format!("StepFailed recorded {failed}")
    })
}

fn binary_codecs(stack: &Stack) -> Result<(), String> {
    let (execution, events) = run(stack, "binary-codecs", json!(7))?;
    succeeded_with(&execution, "\"7 fragile true\"")?;
    for codec in ["bincode", "msgpack"] {
        let payload = step_result(&events, codec).unwrap_or("");
        check(payload.starts_with(&format!("{codec}:")), || {
            format!("the {codec} step recorded {payload:?}")
        })?;
    }
    expect_invocations(&events, 2)
}

/// Two executions of one workflow: each sees its own ARN and idempotency
/// key; the key, the time, the random number and the UUID recorded before
/// the wait come back unchanged after it (the second invocation replays
/// them), and the history holds them as steps.
fn replay_safe(stack: &Stack) -> Result<(), String> {
    let mut seen = Vec::new();
    for _ in 0..2 {
        let (execution, events) = run(stack, "replay-safe", json!({}))?;
        check(execution["Status"] == "SUCCEEDED", || {
            format!("replay-safe did not succeed: {execution}")
        })?;
        let result: Value = execution["Result"]
            .as_str()
            .and_then(|r| serde_json::from_str(r).ok())
            .ok_or_else(|| format!("no JSON result: {execution}"))?;
        let arn = execution["DurableExecutionArn"].as_str().unwrap_or("");
        check(result["arn"] == arn, || {
            format!("the workflow saw ARN {} in {arn}", result["arn"])
        })?;
        let key = result["key"].as_str().unwrap_or("");
        check(
            key.len() == 40 && key.bytes().all(|b| b.is_ascii_hexdigit()),
            || format!("idempotency key {key:?}"),
        )?;
        // The values returned after the wait are the ones recorded before it.
        let recorded = |name: &str| step_result(&events, name).map(str::to_owned);
        check(recorded("charge") == Some(format!("\"{key}\"")), || {
            format!("charge recorded {:?}", recorded("charge"))
        })?;
        check(recorded("uuid") == Some(result["uuid"].to_string()), || {
            format!(
                "uuid recorded {:?}, returned {}",
                recorded("uuid"),
                result["uuid"]
            )
        })?;
        check(
            recorded("random") == Some(result["token"].to_string()),
            || {
                format!(
                    "random recorded {:?}, returned {}",
                    recorded("random"),
                    result["token"]
                )
            },
        )?;
        let (now, later) = (
            result["now_ms"].as_u64().unwrap_or(0),
            result["later_ms"].as_u64().unwrap_or(0),
        );
        check(later >= now + 1000, || {
            format!("now {now}, after a 1 s wait {later}")
        })?;
        let name = execution["DurableExecutionName"].as_str().unwrap_or("");
        expect(
            &kinds(&events),
            &[
                ("ExecutionStarted", name),
                ("StepStarted", "charge"),
                ("StepSucceeded", "charge"),
                ("StepStarted", "now"),
                ("StepSucceeded", "now"),
                ("StepStarted", "random"),
                ("StepSucceeded", "random"),
                ("StepStarted", "uuid"),
                ("StepSucceeded", "uuid"),
                ("WaitStarted", "pause"),
                ("WaitSucceeded", "pause"),
                ("StepStarted", "now"),
                ("StepSucceeded", "now"),
                ("ExecutionSucceeded", name),
            ],
        )?;
        expect_invocations(&events, 2)?;
        seen.push((arn.to_owned(), key.to_owned(), result["uuid"].to_string()));
    }
    check(
        seen[0].0 != seen[1].0 && seen[0].1 != seen[1].1 && seen[0].2 != seen[1].2,
        || format!("two executions shared an ARN, a key or a UUID: {seen:?}"),
    )
}

fn checkpoint_requests_per_step(stack: &Stack) -> Result<(), String> {
    let log = fresh_log("checkpoints");
    let steps = 20;
    let (execution, _) = run(
        stack,
        "checkpoint-count",
        json!({"steps": steps, "log": log.display().to_string()}),
    )?;
    succeeded_with(&execution, "190")?;
    let text = std::fs::read_to_string(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let requests: u64 = text
        .lines()
        .filter_map(|l| l.trim().parse::<u64>().ok())
        .sum();
    let per_step = requests as f64 / f64::from(steps);
    eprintln!(
        "checkpoint requests per live step against the emulator: {per_step:.2} ({requests} for {steps} steps)"
    );
    check(per_step == 1.0, || {
        format!("{requests} checkpoint requests for {steps} live steps")
    })
}

/// The `(EventType, RetryDetails)` of the events of step `name`.
fn step_events(events: &[Value], name: &str) -> Vec<(String, Value)> {
    events
        .iter()
        .filter(|e| {
            e["Name"] == name
                && e["EventType"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("Step"))
        })
        .map(|e| {
            let t = e["EventType"].as_str().unwrap_or("?").to_owned();
            let retry = e[format!("{t}Details")]["RetryDetails"].clone();
            (t, retry)
        })
        .collect()
}

fn retry_succeeds(stack: &Stack) -> Result<(), String> {
    let (execution, events) = run(stack, "retry-succeeds", json!(2))?;
    succeeded_with(&execution, "\"succeeded on attempt 3\"")?;
    let steps = step_events(&events, "flaky");
    let types: Vec<&str> = steps.iter().map(|(t, _)| t.as_str()).collect();
    check(
        types
            == [
                "StepStarted",
                "StepFailed",
                "StepStarted",
                "StepFailed",
                "StepStarted",
                "StepSucceeded",
            ],
        || format!("flaky's events were {steps:?}"),
    )?;
    // Each retry records the attempt made and the 1 s delay.
    for (k, (_, retry)) in steps.iter().filter(|(t, _)| t == "StepFailed").enumerate() {
        check(
            retry["NextAttemptDelaySeconds"] == 1 && retry["CurrentAttempt"] == k as u64 + 1,
            || format!("retry {k} recorded {retry}"),
        )?;
    }
    let failed = events
        .iter()
        .find(|e| e["EventType"] == "StepFailed")
        .ok_or("no StepFailed")?;
    let error = &failed["StepFailedDetails"]["Error"]["Payload"];
    check(
        error["ErrorType"] == "Unavailable" && error["ErrorMessage"] == "attempt 1 failed",
        || format!("the first retry recorded {error}"),
    )?;
    expect_invocations(&events, 3)
}

fn retry_exhausted(stack: &Stack) -> Result<(), String> {
    let (execution, events) = run(stack, "retry-exhausted", json!({}))?;
    // The last attempt's error.
    failed_with(&execution, |t| t == "Unavailable", "attempt 3 failed")?;
    let types: Vec<String> = step_events(&events, "doomed")
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    check(
        types
            == [
                "StepStarted",
                "StepFailed",
                "StepStarted",
                "StepFailed",
                "StepStarted",
                "StepFailed",
            ],
        || format!("doomed's events were {types:?}"),
    )?;
    expect_invocations(&events, 3)
}

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
    let stack = match Stack::start(&dex, &cargo_lambda, false) {
        Ok(stack) => stack,
        Err(e) => panic!("the emulator stack did not start: {e}"),
    };
    type Scenario = fn(&Stack) -> Result<(), String>;
    let scenarios: [(&str, Scenario); 12] = [
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
        // A second execution of a function whose process is already warm.
        ("step-wait-step (warm)", step_wait_step),
    ];
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = scenarios
            .iter()
            .map(|(name, scenario)| {
                let stack = &stack;
                (name, scope.spawn(move || scenario(stack)))
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|(name, handle)| match handle.join() {
                Ok(Ok(())) => {
                    eprintln!("interop scenario {name}: ok");
                    None
                }
                Ok(Err(e)) => Some(format!("{name}: {e}")),
                Err(_) => Some(format!("{name}: panicked")),
            })
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} interop scenario(s) failed:\n{}\n{}",
        failures.len(),
        failures.join("\n\n"),
        stack.log_tail()
    );
}

//! Running a function on the emulator and reading its execution and history.

use super::*;

/// Runs `function` on `input` to the end; returns the execution and its
/// history.
pub(super) fn run(
    stack: &Stack,
    function: &str,
    input: Value,
) -> Result<(Value, Vec<Value>), String> {
    let name = format!("{function}-{}-{}", std::process::id(), unique());
    let arn = stack.start_execution(function, &name, &input)?;
    // The execution times out after 120 s in the emulator.
    let execution = stack.wait_until_done(&arn, Duration::from_secs(180))?;
    let history = stack.history(&arn)?;
    Ok((execution, history))
}

pub(super) fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst)
}

/// `(EventType, Name)` of every event but `InvocationCompleted`.
pub(super) fn kinds(events: &[Value]) -> Vec<(String, String)> {
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
pub(super) fn expect_invocations(events: &[Value], n: usize) -> Result<(), String> {
    let actual = invocations(events);
    check(actual == n, || {
        format!("{actual} invocations instead of {n}")
    })
}

/// A fresh file under `target/interop-logs/` for a function to append to.
pub(super) fn fresh_log(kind: &str) -> std::path::PathBuf {
    let log = workspace().join(format!(
        "target/interop-logs/{kind}-{}-{}.log",
        std::process::id(),
        unique()
    ));
    let _ = std::fs::remove_file(&log);
    log
}

pub(super) fn invocations(events: &[Value]) -> usize {
    events
        .iter()
        .filter(|e| e["EventType"] == "InvocationCompleted")
        .count()
}

/// The result payload of the `StepSucceeded` event of step `name`.
pub(super) fn step_result<'a>(events: &'a [Value], name: &str) -> Option<&'a str> {
    events
        .iter()
        .find(|e| e["EventType"] == "StepSucceeded" && e["Name"] == name)
        .and_then(|e| e["StepSucceededDetails"]["Result"]["Payload"].as_str())
}

pub(super) fn expect(kinds: &[(String, String)], expected: &[(&str, &str)]) -> Result<(), String> {
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

pub(super) fn check(condition: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if condition { Ok(()) } else { Err(what()) }
}

/// The execution FAILED with an error whose type passes `error_type` and
/// whose message is `message`.
pub(super) fn failed_with(
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

pub(super) fn succeeded_with(execution: &Value, result: &str) -> Result<(), String> {
    check(
        execution["Status"] == "SUCCEEDED" && execution["Result"] == result,
        || format!("expected SUCCEEDED with {result}, got {execution}"),
    )
}

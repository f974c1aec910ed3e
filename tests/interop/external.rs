//! Callbacks, chained invokes and wait-for-condition on the emulator.

use super::*;

/// Starts `function` on `input`; returns the execution's ARN.
pub(super) fn start(stack: &Stack, function: &str, input: Value) -> Result<String, String> {
    let name = format!("{function}-{}-{}", std::process::id(), unique());
    stack.start_execution(function, &name, &input)
}

/// The execution and its history, once it is done.
pub(super) fn finished(stack: &Stack, arn: &str) -> Result<(Value, Vec<Value>), String> {
    let execution = stack.wait_until_done(arn, Duration::from_secs(180))?;
    Ok((execution, stack.history(arn)?))
}

pub(super) fn callback_events(events: &[Value]) -> Vec<(String, String)> {
    kinds(events)
        .into_iter()
        .filter(|(t, _)| t.starts_with("Callback"))
        .collect()
}

pub(super) fn callback_succeeded(stack: &Stack) -> Result<(), String> {
    let arn = start(
        stack,
        "external",
        json!({"scenario": "callback", "timeout": 60}),
    )?;
    let id = stack.callback_id(&arn, "approval", Duration::from_secs(30))?;
    // Answered once the function suspended on it, so that the answer
    // resumes it in a second invocation (sent while the first still runs,
    // it may come back in that invocation's checkpoint response, one
    // invocation fewer: correct too, but not what this checks).
    stack.suspended_on_callback(&arn, "approval", Duration::from_secs(30))?;
    // A plain-text answer, as `aws lambda send-durable-execution-callback-success` sends.
    stack.callback_success(&id, "approved")?;
    let (execution, events) = finished(stack, &arn)?;
    succeeded_with(&execution, "\"value: approved\"")?;
    expect(
        &callback_events(&events),
        &[
            ("CallbackStarted", "approval"),
            ("CallbackSucceeded", "approval"),
        ],
    )?;
    let started = events
        .iter()
        .find(|e| e["EventType"] == "CallbackStarted")
        .ok_or("no CallbackStarted")?;
    check(started["SubType"] == "Callback", || format!("{started}"))?;
    let result = events
        .iter()
        .find(|e| e["EventType"] == "CallbackSucceeded")
        .map(|e| e["CallbackSucceededDetails"]["Result"]["Payload"].clone())
        .unwrap_or_default();
    check(result == "approved", || format!("recorded {result}"))?;
    // The step that got the id ran once, before the answer.
    let notify = step_result(&events, "notify");
    check(notify == Some("true"), || {
        format!("notify recorded {notify:?}")
    })?;
    expect_invocations(&events, 2)
}

pub(super) fn callback_failed(stack: &Stack) -> Result<(), String> {
    let arn = start(
        stack,
        "external",
        json!({"scenario": "callback", "timeout": 60}),
    )?;
    let id = stack.callback_id(&arn, "approval", Duration::from_secs(30))?;
    stack.callback_failure(
        &id,
        &json!({"ErrorType": "Rejected", "ErrorMessage": "over budget"}),
    )?;
    let (execution, events) = finished(stack, &arn)?;
    succeeded_with(&execution, "\"Failed Rejected: over budget\"")?;
    expect(
        &callback_events(&events),
        &[
            ("CallbackStarted", "approval"),
            ("CallbackFailed", "approval"),
        ],
    )
}

pub(super) fn callback_timed_out(stack: &Stack) -> Result<(), String> {
    let arn = start(
        stack,
        "external",
        json!({"scenario": "callback", "timeout": 2}),
    )?;
    let (execution, events) = finished(stack, &arn)?;
    succeeded_with(
        &execution,
        "\"TimedOut Callback.Timeout: Callback timed out\"",
    )?;
    expect(
        &callback_events(&events),
        &[
            ("CallbackStarted", "approval"),
            ("CallbackTimedOut", "approval"),
        ],
    )
}

pub(super) fn callback_heartbeat_timed_out(stack: &Stack) -> Result<(), String> {
    let arn = start(
        stack,
        "external",
        json!({"scenario": "callback", "timeout": 60, "heartbeat": 4}),
    )?;
    let id = stack.callback_id(&arn, "approval", Duration::from_secs(30))?;
    let started = std::time::Instant::now();
    // Kept alive for about 3 s (a heartbeat a second, well within the 4 s
    // heartbeat timeout even on a loaded machine), then left to time out
    // on its heartbeat: at least 3 + 4 s after `started`, where without
    // the heartbeats it would have timed out within 4 s.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_secs(1));
        stack.callback_heartbeat(&id)?;
    }
    let (execution, events) = finished(stack, &arn)?;
    succeeded_with(
        &execution,
        "\"HeartbeatTimedOut Callback.Heartbeat: Callback timed out on heartbeat\"",
    )?;
    check(started.elapsed() >= Duration::from_secs(6), || {
        format!(
            "timed out after {:?}, despite the heartbeats",
            started.elapsed()
        )
    })?;
    expect(
        &callback_events(&events),
        &[
            ("CallbackStarted", "approval"),
            ("CallbackTimedOut", "approval"),
        ],
    )
}

pub(super) fn two_callbacks(stack: &Stack) -> Result<(), String> {
    let arn = start(stack, "external", json!({"scenario": "two-callbacks"}))?;
    let first = stack.callback_id(&arn, "first", Duration::from_secs(30))?;
    let second = stack.callback_id(&arn, "second", Duration::from_secs(30))?;
    check(first != second, || {
        "the two callbacks share an id".to_owned()
    })?;
    // The first one is answered first, but awaited last.
    stack.callback_success(&first, "1")?;
    std::thread::sleep(Duration::from_millis(500));
    stack.callback_success(&second, "2")?;
    let (execution, events) = finished(stack, &arn)?;
    succeeded_with(&execution, "\"1-2\"")?;
    let names: Vec<String> = callback_events(&events)
        .into_iter()
        .map(|(t, n)| format!("{t} {n}"))
        .collect();
    check(
        names
            == [
                "CallbackStarted first",
                "CallbackStarted second",
                "CallbackSucceeded first",
                "CallbackSucceeded second",
            ],
        || format!("{names:?}"),
    )
}

pub(super) fn wait_for_callback(stack: &Stack) -> Result<(), String> {
    let arn = start(stack, "external", json!({"scenario": "wait-for-callback"}))?;
    let id = stack.callback_id(&arn, "approval create callback id", Duration::from_secs(30))?;
    // Answered once the submitter got through (after its retry), so that
    // the history's order does not depend on timing.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !stack
        .history(&arn)?
        .iter()
        .any(|e| e["EventType"] == "StepSucceeded" && e["Name"] == "approval submitter")
    {
        if std::time::Instant::now() > deadline {
            return Err("the submitter never succeeded".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    stack.callback_success(&id, "\"granted\"")?;
    let (execution, events) = finished(stack, &arn)?;
    succeeded_with(&execution, "\"verdict: granted\"")?;
    expect_tree(
        &events,
        &[
            ("ContextStarted", "approval", "WaitForCallback", ""),
            (
                "CallbackStarted",
                "approval create callback id",
                "Callback",
                "approval",
            ),
            ("StepStarted", "approval submitter", "Step", "approval"),
            ("StepFailed", "approval submitter", "Step", "approval"),
            ("StepStarted", "approval submitter", "Step", "approval"),
            ("StepSucceeded", "approval submitter", "Step", "approval"),
            (
                "CallbackSucceeded",
                "approval create callback id",
                "Callback",
                "approval",
            ),
            ("ContextSucceeded", "approval", "WaitForCallback", ""),
        ],
    )?;
    check(
        context_result(&events, "approval") == Some("\"granted\""),
        || {
            format!(
                "approval recorded {:?}",
                context_result(&events, "approval")
            )
        },
    )
}

pub(super) fn invoke_durable(stack: &Stack) -> Result<(), String> {
    let (execution, events) = run(
        stack,
        "external",
        json!({"scenario": "invoke", "target": "multiple-steps", "input": 4}),
    )?;
    // multiple-steps adds 0 + 1 + 2 + 3.
    succeeded_with(&execution, "\"result: 6\"")?;
    expect(
        &kinds(&events)
            .into_iter()
            .filter(|(t, _)| t.starts_with("ChainedInvoke"))
            .collect::<Vec<_>>(),
        // Unnamed: an invoke records no Name unless given one.
        &[("ChainedInvokeStarted", ""), ("ChainedInvokeSucceeded", "")],
    )?;
    let started = events
        .iter()
        .find(|e| e["EventType"] == "ChainedInvokeStarted")
        .ok_or("no ChainedInvokeStarted")?;
    let details = &started["ChainedInvokeStartedDetails"];
    check(
        details["FunctionName"] == "multiple-steps" && started["SubType"] == "ChainedInvoke",
        || format!("{started}"),
    )?;
    expect_invocations(&events, 2)
}

pub(super) fn invoke_failing(stack: &Stack) -> Result<(), String> {
    let (execution, events) = run(
        stack,
        "external",
        json!({"scenario": "invoke", "target": "step-fails", "input": {}}),
    )?;
    succeeded_with(&execution, "\"Failed CardDeclined\"")?;
    check(
        events
            .iter()
            .any(|e| e["EventType"] == "ChainedInvokeFailed"),
        || format!("{:?}", kinds(&events)),
    )
}

pub(super) fn invoke_missing(stack: &Stack) -> Result<(), String> {
    let (execution, events) = run(
        stack,
        "external",
        json!({"scenario": "invoke", "target": "no-such-function", "input": 1}),
    )?;
    succeeded_with(&execution, "\"FunctionNotFound ResourceNotFoundException\"")?;
    check(
        events
            .iter()
            .any(|e| e["EventType"] == "ChainedInvokeFailed"),
        || format!("{:?}", kinds(&events)),
    )?;
    // Failed in the START response: no second invocation.
    expect_invocations(&events, 1)
}

pub(super) fn condition_polls(stack: &Stack) -> Result<(), String> {
    let (execution, events) = run(
        stack,
        "external",
        json!({"scenario": "condition", "target": 3}),
    )?;
    succeeded_with(&execution, "\"reached 3\"")?;
    let steps: Vec<String> = step_events(&events, "count")
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    // Two unmet checks (each a RETRY without an error, which the emulator
    // records as StepSucceeded), then the check that met it.
    check(
        steps
            == [
                "StepStarted",
                "StepSucceeded",
                "StepStarted",
                "StepSucceeded",
                "StepStarted",
                "StepSucceeded",
            ],
        || format!("count's events were {steps:?}"),
    )?;
    let sub = events
        .iter()
        .find(|e| e["Name"] == "count")
        .map(|e| e["SubType"].clone())
        .unwrap_or_default();
    check(sub == "WaitForCondition", || format!("subtype {sub}"))?;
    let delays: Vec<Value> = step_events(&events, "count")
        .into_iter()
        .filter(|(_, retry)| !retry.is_null())
        .map(|(_, retry)| retry["NextAttemptDelaySeconds"].clone())
        .collect();
    check(delays == [json!(1), json!(2)], || {
        format!("delays {delays:?}")
    })?;
    expect_invocations(&events, 3)
}

pub(super) fn condition_exhausted(stack: &Stack) -> Result<(), String> {
    let (execution, events) = run(
        stack,
        "external",
        json!({"scenario": "condition", "target": 10, "max": 2}),
    )?;
    check(
        execution["Status"] == "FAILED"
            && execution["Error"]["ErrorType"] == "WaitForConditionExhausted",
        || format!("{execution}"),
    )?;
    let last = step_events(&events, "count")
        .last()
        .map(|(t, _)| t.clone())
        .unwrap_or_default();
    check(last == "StepFailed", || {
        format!("the last event was {last}")
    })?;
    expect_invocations(&events, 2)
}

/// An execution that times out while a step body runs
/// (`ExecutionTimeoutSeconds` 2, a body of 6 s): the emulator ends it
/// TIMED_OUT with the step STARTED (its START went out while the body ran,
/// as AWS's SDKs send it before the body); the body's outcome, which comes
/// after, is refused (the emulator revokes the execution's token) and
/// recorded nowhere, and the function logs why and what happens next.
pub(super) fn execution_timeout(stack: &Stack) -> Result<(), String> {
    // The function's instance is started first (cargo lambda watch starts
    // one on its first request, which can take longer than the 2 s the
    // timed execution has when many scenarios start at once): an
    // execution whose step sleeps 0 s, with a minute to run.
    let warm = format!("warm-{}-{}", std::process::id(), unique());
    let warm = stack.start_execution_timing_out("slow-step", &warm, &json!(0), 60)?;
    let warmed = stack.wait_until_done(&warm, Duration::from_secs(60))?;
    check(warmed["Status"] == "SUCCEEDED", || {
        format!("the warm-up execution ended {warmed}")
    })?;
    let name = format!("timeout-{}-{}", std::process::id(), unique());
    let arn = stack.start_execution_timing_out("slow-step", &name, &json!(6), 2)?;
    let execution = stack.wait_until_done(&arn, Duration::from_secs(60))?;
    check(execution["Status"] == "TIMED_OUT", || {
        format!("the execution ended {execution}")
    })?;
    check(
        execution["Error"]["ErrorMessage"] == "Execution timed out after 2 seconds.",
        || format!("the execution's error: {execution}"),
    )?;
    // The body ends 6 s after it started; its checkpoint is refused.
    let refused = |lines: &[Value]| {
        lines.iter().any(|l| {
            l["message"] == "request failed; failing the invocation"
                && l["call"] == "CheckpointDurableExecution"
                && l["error"].as_str().is_some_and(|e| {
                    e.starts_with("invalid checkpoint token: HTTP 400")
                        && e.contains("the execution has ended, e.g. timed out or stopped")
                })
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut lines = function_log_lines(stack, &arn)?;
    while !refused(&lines) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        lines = function_log_lines(stack, &arn)?;
    }
    check(refused(&lines), || {
        format!(
            "no log line says the step's checkpoint was refused: {lines:?}{}",
            stack.log_tail()
        )
    })?;
    let events = stack.history(&arn)?;
    expect(
        &kinds(&events),
        &[
            ("ExecutionStarted", name.as_str()),
            ("StepStarted", "slow"),
            ("ExecutionTimedOut", name.as_str()),
        ],
    )?;
    check(invocations(&events) == 0, || {
        format!("an invocation completed: {events:?}")
    })
}

//! Steps, waits, retries, codecs, logs and the timeline on the emulator.

use super::*;

pub(super) fn step_wait_step(stack: &Stack) -> Result<(), String> {
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

/// The function's JSON log lines (`durable_yield::logging`, as the
/// function binaries set it up) carry the execution ARN as a top-level
/// field, and the workflow's line is written once although two invocations
/// run the workflow code.
pub(super) fn json_logs(stack: &Stack) -> Result<(), String> {
    let (execution, events) = run(stack, "step-wait-step", json!({"name": "logs"}))?;
    succeeded_with(&execution, "\"HELLO LOGS\"")?;
    expect_invocations(&events, 2)?;
    let arn = execution["DurableExecutionArn"]
        .as_str()
        .ok_or("no execution ARN")?;
    let lines = function_log_lines(stack, arn)?;
    let messages: Vec<&str> = lines.iter().filter_map(|l| l["message"].as_str()).collect();
    check(messages == ["greeting", "composing the greeting"], || {
        format!("the execution's log lines were {messages:?}")
    })?;
    let composing = &lines[1];
    check(
        composing["operationName"] == "greet"
            && composing["attempt"] == 1
            && composing["level"] == "INFO"
            && composing["requestId"]
                .as_str()
                .is_some_and(|r| !r.is_empty()),
        || format!("the step's line lacks its fields: {composing}"),
    )
}

/// The JSON log lines the functions wrote for the execution `arn` (their
/// stdout, through `cargo lambda watch`, which may prefix each line).
pub(super) fn function_log_lines(stack: &Stack, arn: &str) -> Result<Vec<Value>, String> {
    let path = stack.logs.join("cargo-lambda-watch.log");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| l.find('{').map(|at| &l[at..]))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["durableExecutionArn"] == arn)
        .collect())
}

/// The timeline tool's path: the history read back through
/// `aws-sdk-lambda` (`lambda::fetch_history`, as `durable-yield timeline
/// --arn` does) matches the emulator's raw JSON, and draws the retried
/// step with its attempts and delays.
pub(super) fn timeline(stack: &Stack) -> Result<(), String> {
    use durable_yield::history::Gantt;
    let (execution, events) = run(stack, "retry-succeeds", json!(2))?;
    succeeded_with(&execution, "\"succeeded on attempt 3\"")?;
    let arn = execution["DurableExecutionArn"]
        .as_str()
        .ok_or("no execution ARN")?;
    let config = aws_sdk_lambda::Config::builder()
        .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
        .region(aws_sdk_lambda::config::Region::new("us-west-2"))
        .endpoint_url(&stack.endpoint)
        .credentials_provider(aws_sdk_lambda::config::SharedCredentialsProvider::new(
            aws_sdk_lambda::config::Credentials::for_tests(),
        ))
        .build();
    let client = aws_sdk_lambda::Client::from_conf(config);
    let history = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(durable_yield::lambda::fetch_history(&client, arn))
        .map_err(|e| format!("fetch_history: {e}"))?;
    let fetched: Vec<(String, Option<String>, Option<String>)> = history
        .events
        .iter()
        .map(|e| (e.event_type.clone(), e.id.clone(), e.name.clone()))
        .collect();
    let raw: Vec<(String, Option<String>, Option<String>)> = events
        .iter()
        .map(|e| {
            let text = |k: &str| e[k].as_str().map(str::to_owned);
            (
                text("EventType").unwrap_or_default(),
                text("Id"),
                text("Name"),
            )
        })
        .collect();
    check(fetched == raw, || {
        format!("fetched {fetched:?}\nraw {raw:?}")
    })?;
    for (e, raw) in history.events.iter().zip(&events) {
        let t = raw["EventTimestamp"].as_f64().unwrap_or(0.0);
        check((e.event_timestamp - t).abs() < 0.001, || {
            format!("{} at {} instead of {t}", e.event_type, e.event_timestamp)
        })?;
    }
    let gantt = Gantt::new(&history);
    check(
        gantt.status == "SUCCEEDED" && gantt.invocations.len() == 3,
        || format!("{gantt:?}"),
    )?;
    let flaky = gantt
        .rows
        .iter()
        .find(|r| r.name.as_deref() == Some("flaky"))
        .ok_or("no flaky row")?;
    let attempts: Vec<(u64, bool, Option<f64>)> = flaky
        .attempts
        .iter()
        .map(|a| (a.number, a.failed, a.next_delay))
        .collect();
    check(
        flaky.status == "SUCCEEDED"
            && attempts == [(1, true, Some(1.0)), (2, true, Some(1.0)), (3, false, None)],
        || format!("flaky: {} {attempts:?}", flaky.status),
    )?;
    let text = gantt.to_text();
    check(
        text.contains("3 attempt(s); #1 failed, retry in 1 s; #2 failed, retry in 1 s"),
        || text.clone(),
    )?;
    let html = gantt.to_html();
    check(
        html.contains("attempt 1 failed, retry in 1 s") && !html.contains("<script"),
        || "the page lacks the attempts".to_owned(),
    )
}

pub(super) fn multiple_steps(stack: &Stack) -> Result<(), String> {
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

pub(super) fn wait_only(stack: &Stack, seconds: u64) -> Result<(), String> {
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

pub(super) fn replay_determinism(stack: &Stack) -> Result<(), String> {
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

pub(super) fn step_fails(stack: &Stack) -> Result<(), String> {
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

pub(super) fn binary_codecs(stack: &Stack) -> Result<(), String> {
    let (execution, events) = run(stack, "binary-codecs", json!(7))?;
    // The second invocation opened the sealed payloads the service stored.
    succeeded_with(
        &execution,
        "\"7 fragile true sealed:fragile lines:20000 file:1500000\"",
    )?;
    // Kept in a file (the functions' `interop_files()`): the record holds
    // the envelope, the file the 1.5 MB string the replay read.
    let kept = step_result(&events, "file-system").unwrap_or("");
    let envelope: Value = serde_json::from_str(kept).unwrap_or_default();
    let path = envelope["file"].as_str().unwrap_or("");
    // The emulator's ARNs are not Lambda function ARNs: the directory is
    // the whole ARN percent-encoded (as AWS's Python SDK names it; the
    // codec's `file_for`, checked against Python in tests/filesystem.rs),
    // the file the step's id.
    let arn = execution["DurableExecutionArn"].as_str().unwrap_or("");
    let id = events
        .iter()
        .find(|e| e["EventType"] == "StepSucceeded" && e["Name"] == "file-system")
        .and_then(|e| e["Id"].as_str())
        .unwrap_or("");
    let base = std::env::temp_dir().join("durable-yield-interop-files");
    let expected = durable_yield::codecs::files::FileSystem::new(&base)
        .file_for(&durable_yield::codecs::PayloadContext::new(arn, id))
        .map_err(|e| e.to_string())?;
    check(
        expected
            .parent()
            .and_then(|d| d.file_name())
            .and_then(|d| d.to_str())
            == Some(arn.replace(':', "%3A").replace('/', "%2F").as_str()),
        || {
            format!(
                "the emulator's ARN {arn} names one directory: {}",
                expected.display()
            )
        },
    )?;
    let file = std::fs::read_to_string(path).unwrap_or_default();
    check(
        envelope.as_object().is_some_and(|o| o.len() == 1)
            && kept == format!("{{\"file\": \"{path}\"}}")
            && !id.is_empty()
            && std::path::Path::new(path) == expected
            && file.len() == 1_500_002
            && file.starts_with("\"zzz"),
        || {
            format!(
                "the file-system step recorded {kept:?} (expected a pointer to {}), its \
                 file holds {} bytes",
                expected.display(),
                file.len()
            )
        },
    )?;
    let _ = std::fs::remove_file(path);
    for codec in ["bincode", "msgpack"] {
        let payload = step_result(&events, codec).unwrap_or("");
        check(payload.starts_with(&format!("{codec}:")), || {
            format!("the {codec} step recorded {payload:?}")
        })?;
    }
    // Field-level: plain JSON in the history, the label ciphertext.
    let fields = step_result(&events, "sealed-fields").unwrap_or("");
    let parsed: Value = serde_json::from_str(fields).unwrap_or_default();
    check(
        parsed["id"] == 7
            && parsed["label"]
                .as_str()
                .is_some_and(|l| l.starts_with("sealed:"))
            && !fields.contains("fragile"),
        || format!("the sealed-fields step recorded {fields:?}"),
    )?;
    // Compressed then encrypted: opaque, and far under the JSON's 196 KB.
    let packed = step_result(&events, "compressed-encrypted").unwrap_or("");
    check(
        packed.starts_with("sealed.zstd.json:") && packed.len() < 5_000,
        || {
            format!(
                "the compressed-encrypted step recorded {packed:.80?} ({} bytes)",
                packed.len()
            )
        },
    )?;
    expect_invocations(&events, 2)
}

/// Two executions of one workflow: each sees its own ARN and idempotency
/// key; the key, the time, the random number and the UUID recorded before
/// the wait come back unchanged after it (the second invocation replays
/// them), and the history holds them as steps.
pub(super) fn replay_safe(stack: &Stack) -> Result<(), String> {
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

pub(super) fn checkpoint_requests_per_step(stack: &Stack) -> Result<(), String> {
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
pub(super) fn step_events(events: &[Value], name: &str) -> Vec<(String, Value)> {
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

pub(super) fn retry_succeeds(stack: &Stack) -> Result<(), String> {
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

pub(super) fn retry_exhausted(stack: &Stack) -> Result<(), String> {
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

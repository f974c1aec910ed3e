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

/// The function's JSON log lines (`durable_yield::logging`, as the
/// function binaries set it up) carry the execution ARN as a top-level
/// field, and the workflow's line is written once although two invocations
/// run the workflow code.
fn json_logs(stack: &Stack) -> Result<(), String> {
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
fn function_log_lines(stack: &Stack, arn: &str) -> Result<Vec<Value>, String> {
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
fn timeline(stack: &Stack) -> Result<(), String> {
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

/// `(EventType, Name, SubType, name of the parent)` of every event of the
/// operations under the root (execution and invocation events left out).
fn tree(events: &[Value]) -> Vec<(String, String, String, String)> {
    let name_of = |id: &Value| -> String {
        events
            .iter()
            .find(|e| e["Id"] == *id && e["EventType"] == "ContextStarted")
            .and_then(|e| e["Name"].as_str())
            .unwrap_or("")
            .to_owned()
    };
    events
        .iter()
        .filter(|e| {
            let t = e["EventType"].as_str().unwrap_or("");
            !t.starts_with("Execution") && t != "InvocationCompleted"
        })
        .map(|e| {
            (
                e["EventType"].as_str().unwrap_or("?").to_owned(),
                e["Name"].as_str().unwrap_or("").to_owned(),
                e["SubType"].as_str().unwrap_or("").to_owned(),
                if e["ParentId"].is_null() {
                    String::new()
                } else {
                    name_of(&e["ParentId"])
                },
            )
        })
        .collect()
}

fn expect_tree(events: &[Value], expected: &[(&str, &str, &str, &str)]) -> Result<(), String> {
    let actual = tree(events);
    let expected: Vec<(String, String, String, String)> = expected
        .iter()
        .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string()))
        .collect();
    check(actual == expected, || {
        format!("history was\n{actual:#?}\nexpected\n{expected:#?}")
    })
}

/// The position of the first event of `event_type` for `name` whose
/// parent is named `parent` (`""`: any parent).
fn position(events: &[Value], event_type: &str, name: &str, parent: &str) -> Result<usize, String> {
    tree(events)
        .iter()
        .position(|(t, n, _, p)| t == event_type && n == name && (parent.is_empty() || p == parent))
        .ok_or_else(|| format!("no {event_type} of {name:?} in {parent:?}"))
}

/// The payload of the `ContextSucceeded` event of `name`.
fn context_result<'a>(events: &'a [Value], name: &str) -> Option<&'a str> {
    events
        .iter()
        .find(|e| e["EventType"] == "ContextSucceeded" && e["Name"] == name)
        .and_then(|e| e["ContextSucceededDetails"]["Result"]["Payload"].as_str())
}

fn concurrency(stack: &Stack, scenario: &str) -> Result<(Value, Vec<Value>), String> {
    run(stack, "concurrency", json!({ "scenario": scenario }))
}

fn nested_children(stack: &Stack) -> Result<(), String> {
    let (execution, events) = concurrency(stack, "nested-children")?;
    succeeded_with(&execution, "\"40\"")?;
    const CHILD: &str = "RunInChildContext";
    expect_tree(
        &events,
        &[
            ("ContextStarted", "outer", CHILD, ""),
            ("StepStarted", "in-outer", "Step", "outer"),
            ("StepSucceeded", "in-outer", "Step", "outer"),
            ("ContextStarted", "inner", CHILD, "outer"),
            ("WaitStarted", "nap", "Wait", "inner"),
            ("WaitSucceeded", "nap", "Wait", "inner"),
            ("StepStarted", "in-inner", "Step", "inner"),
            ("StepSucceeded", "in-inner", "Step", "inner"),
            ("ContextSucceeded", "inner", CHILD, "outer"),
            ("ContextSucceeded", "outer", CHILD, ""),
        ],
    )?;
    // Ids: A = H("1"), its first child H(A-1), the grandchild H(A-2).
    let mut root = durable_yield_tests::Ids::root();
    let a = root.next_id().0;
    let mut in_a = durable_yield_tests::Ids::child(a);
    let (a1, b) = (in_a.next_id().0, in_a.next_id().0);
    let id_of = |name: &str| {
        events
            .iter()
            .find(|e| e["Name"] == name)
            .and_then(|e| e["Id"].as_str())
            .unwrap_or("")
            .to_owned()
    };
    check(
        id_of("outer") == a.as_str()
            && id_of("in-outer") == a1.as_str()
            && id_of("inner") == b.as_str(),
        || {
            format!(
                "ids: {} {} {}",
                id_of("outer"),
                id_of("in-outer"),
                id_of("inner")
            )
        },
    )?;
    check(context_result(&events, "outer") == Some("40"), || {
        format!("outer recorded {:?}", context_result(&events, "outer"))
    })?;
    expect_invocations(&events, 2)
}

/// The invocation dies inside a step inside a child context, three
/// seconds into its body (the function drops it and fails, as a killed sandbox
/// would): the service recorded the step's START and the child's while
/// the body ran, so the history shows both before the failed invocation
/// (AWS's SDKs do the same). The next invocation runs the body again,
/// without a new START.
fn crash_in_step(stack: &Stack) -> Result<(), String> {
    let marker = fresh_log("crash-marker");
    let (execution, events) = run(
        stack,
        "crash-in-step",
        json!({ "marker": marker.display().to_string() }),
    )?;
    // A START leaves the attempt count as it was: attempt 1 again.
    succeeded_with(&execution, "\"1 attempt 1\"")?;
    check(marker.is_file(), || {
        "the first run of the body did not happen".to_owned()
    })?;
    const CHILD: &str = "RunInChildContext";
    expect_tree(
        &events,
        &[
            ("StepStarted", "before", "Step", ""),
            ("StepSucceeded", "before", "Step", ""),
            ("ContextStarted", "ctx", CHILD, ""),
            ("StepStarted", "slow", "Step", "ctx"),
            ("StepSucceeded", "slow", "Step", "ctx"),
            ("ContextSucceeded", "ctx", CHILD, ""),
        ],
    )?;
    let at = |event_type: &str, name: &str| {
        events
            .iter()
            .find(|e| e["EventType"] == event_type && e["Name"] == name)
            .and_then(|e| e["EventTimestamp"].as_f64())
            .unwrap_or(f64::NAN)
    };
    // The STARTs came from the invocation that died: the emulator invokes
    // again 5 s after a failed invocation, and the body's second run ends
    // at once.
    let (context, started, succeeded) = (
        at("ContextStarted", "ctx"),
        at("StepStarted", "slow"),
        at("StepSucceeded", "slow"),
    );
    check(
        succeeded - started >= 3.0 && succeeded - context >= 3.0,
        || {
            format!(
                "ContextStarted at {context}, StepStarted at {started}, StepSucceeded at \
             {succeeded}: the STARTs were not recorded by the invocation that crashed"
            )
        },
    )?;
    // The emulator writes no InvocationCompleted for a failed invocation:
    // one for the invocation that finished, after the STARTs.
    expect_invocations(&events, 1)?;
    let completed = events
        .iter()
        .position(|e| e["EventType"] == "InvocationCompleted");
    let step_started = events
        .iter()
        .position(|e| e["EventType"] == "StepStarted" && e["Name"] == "slow");
    check(step_started < completed, || {
        format!("StepStarted at {step_started:?}, InvocationCompleted at {completed:?}")
    })
}

/// A transient codec failure on Lambda: the handler fails the invocation
/// (a function error), AWS's emulator invokes again (5 s later) and the
/// execution succeeds. What ended before the failure (the first item's
/// step, which ended in the same round) was recorded by the failed
/// invocation, so only the second item's body runs again; nothing is
/// recorded as failed.
fn transient_codec(stack: &Stack) -> Result<(), String> {
    let marker = fresh_log("transient-marker");
    let input = json!({ "scenario": "transient-codec", "marker": marker.display().to_string() });
    let (execution, events) = run(stack, "concurrency", input)?;
    succeeded_with(&execution, "\"30\"")?;
    let runs = std::fs::read_to_string(&marker).map_err(|e| format!("the marker: {e}"))?;
    let mut runs: Vec<&str> = runs.lines().collect();
    runs.sort_unstable();
    check(runs == ["item-0", "item-1", "item-1"], || {
        format!("the item bodies ran {runs:?}: item 0 once, item 1 twice expected")
    })?;
    check(
        !events.iter().any(|e| {
            e["EventType"]
                .as_str()
                .is_some_and(|t| t.ends_with("Failed") || t.ends_with("TimedOut"))
        }),
        || format!("a failure was recorded: {events:#?}"),
    )?;
    let succeeded: Vec<f64> = events
        .iter()
        .filter(|e| e["EventType"] == "StepSucceeded" && e["Name"] == "work")
        .filter_map(|e| e["EventTimestamp"].as_f64())
        .collect();
    // The first item's step ended in the invocation that failed; the
    // second's in the next one, 5 s later.
    check(
        succeeded.len() == 2 && succeeded[1] - succeeded[0] >= 3.0,
        || format!("StepSucceeded of the two items at {succeeded:?}"),
    )?;
    // The emulator writes no InvocationCompleted for a failed invocation.
    expect_invocations(&events, 1)
}

/// The `Id` and `ParentId` of the first event of `name`.
fn ids_of(events: &[Value], name: &str) -> Result<(String, Option<String>), String> {
    let e = events
        .iter()
        .find(|e| e["Name"] == name)
        .ok_or_else(|| format!("no event of {name:?}"))?;
    Ok((
        e["Id"].as_str().unwrap_or("").to_owned(),
        e["ParentId"].as_str().map(str::to_owned),
    ))
}

/// A flat map: no CONTEXT per item; each item's operations are numbered
/// in the item's namespace, `H(H(M-i)-n)`, and parented to the map (as
/// AWS's SDKs record NestingType.FLAT). Item 1 waits: the second
/// invocation runs the items again and their steps replay.
fn flat_map(stack: &Stack) -> Result<(), String> {
    let (execution, events) = concurrency(stack, "flat-map")?;
    succeeded_with(&execution, "\"SUCCEEDED [2, 4, 6]\"")?;
    // Items run concurrently: their events interleave as they ran. Every
    // operation is a child of the map; no MapIteration is recorded.
    let mut actual = tree(&events);
    let first = actual.first().cloned();
    let last = actual.last().cloned();
    actual.sort();
    let mut expected: Vec<(String, String, String, String)> = [
        ("ContextStarted", "flat", "Map", ""),
        ("StepStarted", "double-1", "Step", "flat"),
        ("StepSucceeded", "double-1", "Step", "flat"),
        ("WaitStarted", "nap-2", "Wait", "flat"),
        ("WaitSucceeded", "nap-2", "Wait", "flat"),
        ("StepStarted", "double-2", "Step", "flat"),
        ("StepSucceeded", "double-2", "Step", "flat"),
        ("StepStarted", "double-3", "Step", "flat"),
        ("StepSucceeded", "double-3", "Step", "flat"),
        ("ContextSucceeded", "flat", "Map", ""),
    ]
    .iter()
    .map(|(a, b, c, d)| (a.to_string(), b.to_string(), c.to_string(), d.to_string()))
    .collect();
    expected.sort();
    check(actual == expected, || {
        format!("history was\n{actual:#?}\nexpected\n{expected:#?}")
    })?;
    check(
        first.is_some_and(|e| e.0 == "ContextStarted")
            && last.is_some_and(|e| e.0 == "ContextSucceeded"),
        || "the map's START and SUCCEED do not enclose its items".to_owned(),
    )?;
    check(
        position(&events, "WaitSucceeded", "nap-2", "")?
            < position(&events, "StepStarted", "double-2", "")?,
        || "item 1's step ran before its wait ended".to_owned(),
    )?;
    // Each item's step records its own result (AWS's requirement 9-12).
    for (name, result) in [("double-1", "2"), ("double-2", "4"), ("double-3", "6")] {
        check(step_result(&events, name) == Some(result), || {
            format!("{name} recorded {:?}", step_result(&events, name))
        })?;
    }
    let map = durable_yield::id::operation_id(None, 1);
    let item = |i: u64, n: usize| {
        let mut ids = durable_yield_tests::Ids::child(durable_yield_tests::Ids::branch(&map, i));
        (0..n).map(|_| ids.next_id().0.as_str().to_owned()).last()
    };
    for (name, expected) in [
        ("double-1", item(0, 1)),
        ("nap-2", item(1, 1)),
        ("double-2", item(1, 2)),
        ("double-3", item(2, 1)),
    ] {
        let (id, parent) = ids_of(&events, name)?;
        check(
            Some(id.clone()) == expected && parent.as_deref() == Some(map.as_str()),
            || format!("{name}: id {id}, parent {parent:?}; expected {expected:?} under {map}"),
        )?;
    }
    expect_invocations(&events, 2)
}

/// A flat parallel, one branch at a time, failing fast: the failure ends
/// it, the third branch never starts, and nothing records a branch.
fn flat_parallel(stack: &Stack) -> Result<(), String> {
    let (execution, events) = concurrency(stack, "flat-parallel")?;
    succeeded_with(&execution, "\"FAILURE_TOLERANCE_EXCEEDED FAILED total=2\"")?;
    expect_tree(
        &events,
        &[
            ("ContextStarted", "flat-p", "Parallel", ""),
            ("StepStarted", "first", "Step", "flat-p"),
            ("StepSucceeded", "first", "Step", "flat-p"),
            ("StepStarted", "second", "Step", "flat-p"),
            ("StepFailed", "second", "Step", "flat-p"),
            ("ContextSucceeded", "flat-p", "Parallel", ""),
        ],
    )?;
    check(step_result(&events, "first") == Some("1"), || {
        format!("first recorded {:?}", step_result(&events, "first"))
    })?;
    expect_invocations(&events, 1)
}

/// OPERATIONS.md §2.4's example on the emulator: a virtual child at the
/// root holding steps a and b, then step c: ids H(H("1")-1), H(H("1")-2),
/// H("2"), no ParentId, no CONTEXT; the wait makes a second invocation,
/// which runs the virtual child again over its recorded steps.
fn virtual_child(stack: &Stack) -> Result<(), String> {
    let (execution, events) = concurrency(stack, "virtual-child")?;
    succeeded_with(&execution, "\"30\"")?;
    expect_tree(
        &events,
        &[
            ("StepStarted", "a", "Step", ""),
            ("StepSucceeded", "a", "Step", ""),
            ("StepStarted", "b", "Step", ""),
            ("StepSucceeded", "b", "Step", ""),
            ("StepStarted", "c", "Step", ""),
            ("StepSucceeded", "c", "Step", ""),
            ("WaitStarted", "w", "Wait", ""),
            ("WaitSucceeded", "w", "Wait", ""),
        ],
    )?;
    let group = durable_yield::id::operation_id(None, 1);
    let mut inside = durable_yield_tests::Ids::child(group);
    let expected = [
        ("a", inside.next_id().0),
        ("b", inside.next_id().0),
        ("c", durable_yield::id::operation_id(None, 2)),
    ];
    for (name, id) in expected {
        let (actual, parent) = ids_of(&events, name)?;
        check(actual == id.as_str() && parent.is_none(), || {
            format!("{name}: id {actual}, parent {parent:?}; expected {id}, no parent")
        })?;
    }
    expect_invocations(&events, 2)
}

/// Unnamed operations record no Name, as AWS's SDKs record them.
fn unnamed(stack: &Stack) -> Result<(), String> {
    let (execution, events) = concurrency(stack, "unnamed")?;
    succeeded_with(&execution, "\"22\"")?;
    let ops: Vec<&Value> = events
        .iter()
        .filter(|e| {
            let t = e["EventType"].as_str().unwrap_or("");
            !t.starts_with("Execution") && t != "InvocationCompleted"
        })
        .collect();
    let types: Vec<(&str, &str)> = ops
        .iter()
        .map(|e| {
            (
                e["EventType"].as_str().unwrap_or("?"),
                e["SubType"].as_str().unwrap_or(""),
            )
        })
        .collect();
    check(
        types
            == [
                ("StepStarted", "Step"),
                ("StepSucceeded", "Step"),
                ("WaitStarted", "Wait"),
                ("WaitSucceeded", "Wait"),
                ("ContextStarted", "RunInChildContext"),
                ("StepStarted", "Step"),
                ("StepSucceeded", "Step"),
                ("ContextSucceeded", "RunInChildContext"),
                ("StepStarted", "WaitForCondition"),
                ("StepSucceeded", "WaitForCondition"),
                ("StepStarted", "WaitForCondition"),
                ("StepSucceeded", "WaitForCondition"),
            ],
        || format!("history was {types:?}"),
    )?;
    check(
        ops.iter().all(|e| e.get("Name").is_none_or(Value::is_null)),
        || format!("a Name was recorded: {ops:?}"),
    )
}

/// The hooks of AWS's newest plugin revision on the emulator: the function
/// hooks around step bodies and context code (a child suspended by a wait
/// ends INCOMPLETE, runs again, replayed, in the next invocation), the
/// invocation-start hook, and an operation-change hook after each answer
/// that carried operations, whose updated operations are all in the full
/// map.
fn plugin_hooks(stack: &Stack) -> Result<(), String> {
    let log = fresh_log("plugin-hooks");
    let (execution, events) = run(
        stack,
        "plugin-hooks",
        json!({"log": log.display().to_string()}),
    )?;
    succeeded_with(&execution, "2")?;
    expect_invocations(&events, 2)?;
    let text = std::fs::read_to_string(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let lines: Vec<&str> = text.lines().collect();
    let hooks: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !l.starts_with("change "))
        .collect();
    let expected = [
        "invocation start first=true",
        "op start group STARTED replayed=false",
        "fn start group CONTEXT/RunInChildContext",
        "op start inside STARTED replayed=false",
        "attempt start inside #1",
        "fn start inside STEP/Step #1",
        "fn end inside STEP/Step #1 SUCCEEDED",
        "attempt end inside #1 SUCCEEDED",
        "op end inside SUCCEEDED replayed=false",
        "op start nap STARTED replayed=false",
        "fn end group CONTEXT/RunInChildContext INCOMPLETE",
        "invocation end PENDING",
        // The wait's timer fired between the invocations.
        "invocation start first=false",
        "op start group STARTED replayed=true",
        "fn start group CONTEXT/RunInChildContext replayed",
        "op end nap SUCCEEDED replayed=true",
        "fn end group CONTEXT/RunInChildContext SUCCEEDED",
        "op end group SUCCEEDED replayed=false",
        "op start items STARTED replayed=false",
        "op start map-item-0 STARTED replayed=false",
        "fn start map-item-0 CONTEXT/MapIteration",
        "fn end map-item-0 CONTEXT/MapIteration SUCCEEDED",
        "op end map-item-0 SUCCEEDED replayed=false",
        "op start map-item-1 STARTED replayed=false",
        "fn start map-item-1 CONTEXT/MapIteration",
        "fn end map-item-1 CONTEXT/MapIteration FAILED",
        "op end map-item-1 FAILED replayed=false",
        "op end items SUCCEEDED replayed=false",
        "invocation end SUCCEEDED",
    ];
    check(hooks == expected, || format!("the hooks were {lines:#?}"))?;
    let second = lines
        .iter()
        .position(|l| *l == "invocation start first=false")
        .unwrap_or(lines.len());
    let changes = |range: &[&str]| -> Vec<String> {
        range
            .iter()
            .filter(|l| l.starts_with("change "))
            .map(|l| l.to_string())
            .collect()
    };
    let (first_changes, second_changes) = (changes(&lines[..second]), changes(&lines[second..]));
    check(
        lines
            .iter()
            .filter(|l| l.starts_with("change "))
            .all(|l| l.ends_with(" missing=0"))
            && first_changes.iter().any(|l| l.contains("inside=SUCCEEDED"))
            && second_changes.iter().any(|l| l.contains("items=SUCCEEDED")),
        || format!("the operation changes were {first_changes:?} then {second_changes:?}"),
    )
}

fn child_fails(stack: &Stack) -> Result<(), String> {
    let (execution, events) = concurrency(stack, "child-fails")?;
    succeeded_with(
        &execution,
        r#""handled: child context \"reserve\" failed: OutOfStock: no stock left""#,
    )?;
    expect_tree(
        &events,
        &[
            ("ContextStarted", "reserve", "RunInChildContext", ""),
            ("StepStarted", "check", "Step", "reserve"),
            ("StepSucceeded", "check", "Step", "reserve"),
            ("ContextFailed", "reserve", "RunInChildContext", ""),
            ("StepStarted", "backorder", "Step", ""),
            ("StepSucceeded", "backorder", "Step", ""),
        ],
    )?;
    let failed = events
        .iter()
        .find(|e| e["EventType"] == "ContextFailed")
        .ok_or("no ContextFailed")?;
    let error = &failed["ContextFailedDetails"]["Error"]["Payload"];
    check(
        error["ErrorType"] == "OutOfStock" && error["ErrorMessage"] == "no stock left",
        || format!("the child recorded {error}"),
    )
}

fn large_child(stack: &Stack) -> Result<(), String> {
    let (execution, events) = concurrency(stack, "large-child")?;
    succeeded_with(&execution, "\"307200 bytes\"")?;
    // Not checkpointed: an empty payload, ReplayChildren; each part ran
    // and was recorded once, though the second invocation rebuilt it.
    check(context_result(&events, "big") == Some(""), || {
        format!(
            "big recorded {:?}",
            context_result(&events, "big").map(str::len)
        )
    })?;
    for part in ["part-0", "part-1", "part-2"] {
        let n = events
            .iter()
            .filter(|e| e["Name"] == part && e["EventType"] == "StepSucceeded")
            .count();
        check(n == 1, || format!("{part} succeeded {n} times"))?;
    }
    let closes = events
        .iter()
        .filter(|e| e["Name"] == "big" && e["EventType"] == "ContextSucceeded")
        .count();
    check(closes == 1, || format!("big closed {closes} times"))?;
    expect_invocations(&events, 2)
}

fn map_basic(stack: &Stack) -> Result<(), String> {
    let (execution, events) = concurrency(stack, "map-basic")?;
    succeeded_with(&execution, "\"[2, 4, 6]\"")?;
    let t = tree(&events);
    check(
        t.first()
            .map(|e| (e.0.as_str(), e.1.as_str(), e.2.as_str()))
            == Some(("ContextStarted", "double-all", "Map")),
        || format!("{t:?}"),
    )?;
    for i in 0..3 {
        let item = format!("map-item-{i}");
        let started = position(&events, "ContextStarted", &item, "double-all")?;
        let step = position(&events, "StepSucceeded", "double", &item)?;
        let done = position(&events, "ContextSucceeded", &item, "double-all")?;
        check(started < step && step < done, || format!("{item}: {t:?}"))?;
        check(t[started].2 == "MapIteration", || {
            format!("{item} subtype {}", t[started].2)
        })?;
    }
    let result: Value = serde_json::from_str(context_result(&events, "double-all").unwrap_or(""))
        .map_err(|e| e.to_string())?;
    check(
        result["completionReason"] == "ALL_COMPLETED"
            && result["all"][2]["result"] == 6
            && result["all"][1]["status"] == "SUCCEEDED",
        || format!("the map recorded {result}"),
    )?;
    expect_invocations(&events, 1)
}

fn empty_map(stack: &Stack) -> Result<(), String> {
    let (execution, events) = concurrency(stack, "empty-map")?;
    succeeded_with(&execution, "\"ALL_COMPLETED []\"")?;
    expect_tree(
        &events,
        &[
            ("ContextStarted", "nothing", "Map", ""),
            ("ContextSucceeded", "nothing", "Map", ""),
        ],
    )
}

fn min_successful(stack: &Stack) -> Result<(), String> {
    let (execution, events) = concurrency(stack, "min-successful")?;
    succeeded_with(&execution, "\"MIN_SUCCESSFUL_REACHED [2, 4]\"")?;
    let t = tree(&events);
    let items: Vec<&str> = t
        .iter()
        .filter(|e| e.0 == "ContextStarted" && e.3 == "first-two")
        .map(|e| e.1.as_str())
        .collect();
    check(items == ["map-item-0", "map-item-1"], || {
        format!("started {items:?}")
    })?;
    // One at a time: item 1 starts after item 0 closed.
    check(
        position(&events, "ContextSucceeded", "map-item-0", "")?
            < position(&events, "ContextStarted", "map-item-1", "")?,
        || format!("{t:?}"),
    )
}

fn tolerated_failures(stack: &Stack) -> Result<(), String> {
    let (execution, events) = concurrency(stack, "tolerated-failures")?;
    succeeded_with(
        &execution,
        "\"FAILURE_TOLERANCE_EXCEEDED FAILED total=2 Failed,Failed\"",
    )?;
    // The recorded result holds the two branches that started, as AWS's
    // SDKs record it.
    let recorded: Value = serde_json::from_str(context_result(&events, "fragile").unwrap_or(""))
        .map_err(|e| format!("the map result is not JSON: {e}"))?;
    let statuses: Vec<&str> = recorded["all"]
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["status"].as_str()).collect())
        .unwrap_or_default();
    check(
        statuses == ["FAILED", "FAILED"]
            && recorded["completionReason"] == "FAILURE_TOLERANCE_EXCEEDED",
        || format!("the map recorded {recorded}"),
    )?;
    let t = tree(&events);
    for item in ["map-item-0", "map-item-1"] {
        position(&events, "ContextFailed", item, "fragile")?;
    }
    check(!t.iter().any(|e| e.1 == "map-item-2"), || {
        format!("item 2 ran: {t:?}")
    })?;
    let failed = events
        .iter()
        .find(|e| e["EventType"] == "ContextFailed" && e["Name"] == "map-item-1")
        .ok_or("no ContextFailed")?;
    let error = &failed["ContextFailedDetails"]["Error"]["Payload"];
    check(
        error["ErrorType"] == "Broken" && error["ErrorMessage"] == "item 1 broke",
        || format!("item 1 recorded {error}"),
    )?;
    // The map itself succeeds: failures are items of its result.
    position(&events, "ContextSucceeded", "fragile", "").map(|_| ())
}

fn wait_in_branch(stack: &Stack) -> Result<(), String> {
    let (execution, events) = concurrency(stack, "wait-in-branch")?;
    succeeded_with(&execution, "\"[0, 2, 4]\"")?;
    // Items 0 and 2 closed in the first invocation, which ended on item
    // 1's wait (the SDK sends their ends before it suspends; when the
    // wait's timer fires does not matter), and before item 1's step ran.
    let first_end = events
        .iter()
        .position(|e| e["EventType"] == "InvocationCompleted")
        .ok_or("no InvocationCompleted event")?;
    let resumed = position(&events, "StepStarted", "double", "map-item-1")?;
    for item in ["map-item-0", "map-item-2"] {
        let closed = events
            .iter()
            .position(|e| e["EventType"] == "ContextSucceeded" && e["Name"] == item)
            .ok_or_else(|| format!("no ContextSucceeded of {item}"))?;
        check(closed < first_end, || {
            format!("{item} did not close in the first invocation: {events:?}")
        })?;
        check(
            position(&events, "ContextSucceeded", item, "mixed")? < resumed,
            || format!("{item} waited for item 1: {:?}", tree(&events)),
        )?;
    }
    expect_invocations(&events, 2)
}

fn parallel_in_map(stack: &Stack) -> Result<(), String> {
    let (execution, events) = concurrency(stack, "parallel-in-map")?;
    succeeded_with(&execution, "\"[3, 8]\"")?;
    let t = tree(&events);
    let inner: Vec<_> = t
        .iter()
        .filter(|e| e.0 == "ContextStarted" && e.1 == "inner")
        .collect();
    check(
        inner.len() == 2
            && inner
                .iter()
                .all(|e| e.2 == "Parallel" && e.3.starts_with("map-item-")),
        || format!("{t:?}"),
    )?;
    let branches = t
        .iter()
        .filter(|e| e.0 == "ContextSucceeded" && e.2 == "ParallelBranch" && e.3 == "inner")
        .count();
    check(branches == 4, || {
        format!("{branches} branches succeeded: {t:?}")
    })
}

fn index_order(stack: &Stack) -> Result<(), String> {
    let (execution, events) = concurrency(stack, "index-order")?;
    succeeded_with(&execution, "\"[0, 1, 2]\"")?;
    // Item 2 finished first, item 0 last; the result is in index order.
    let done = |i: usize| position(&events, "StepSucceeded", "work", &format!("map-item-{i}"));
    check(done(2)? < done(1)? && done(1)? < done(0)?, || {
        format!("completion order: {:?}", tree(&events))
    })
}

fn large_batch(stack: &Stack) -> Result<(), String> {
    let (execution, events) = concurrency(stack, "large-batch")?;
    succeeded_with(&execution, "\"409600 bytes\"")?;
    let summary: Value = serde_json::from_str(context_result(&events, "big").unwrap_or(""))
        .map_err(|e| format!("the summary is not JSON: {e}"))?;
    check(
        summary["type"] == "MapResult"
            && summary["totalCount"] == 4
            && summary["successCount"] == 4
            && summary["completionReason"] == "ALL_COMPLETED",
        || format!("big recorded {summary}"),
    )?;
    let chunks = events
        .iter()
        .filter(|e| e["Name"] == "chunk" && e["EventType"] == "StepSucceeded")
        .count();
    check(chunks == 4, || format!("{chunks} chunks recorded"))?;
    expect_invocations(&events, 2)
}

fn one_at_a_time(stack: &Stack) -> Result<(), String> {
    let (execution, events) = concurrency(stack, "one-at-a-time")?;
    succeeded_with(&execution, "\"[2, 4, 6]\"")?;
    for i in 0..2 {
        check(
            position(
                &events,
                "ContextSucceeded",
                &format!("map-item-{i}"),
                "serial",
            )? < position(
                &events,
                "ContextStarted",
                &format!("map-item-{}", i + 1),
                "serial",
            )?,
            || format!("items overlapped: {:?}", tree(&events)),
        )?;
    }
    expect_invocations(&events, 4)
}

fn named_parallel(stack: &Stack) -> Result<(), String> {
    let (execution, events) = concurrency(stack, "named-parallel")?;
    succeeded_with(&execution, "\"mailed+texted\"")?;
    for branch in ["email", "sms"] {
        let started = position(&events, "ContextStarted", branch, "notify")?;
        check(tree(&events)[started].2 == "ParallelBranch", || {
            branch.to_string()
        })?;
        let sends = tree(&events)
            .iter()
            .filter(|e| e.0 == "StepSucceeded" && e.1 == "send" && e.3 == branch)
            .count();
        check(sends == 1, || format!("{branch} sent {sends} times"))?;
    }
    // sms finished in the first invocation, while email waited (when the
    // wait's second is over depends on the machine's load: compare with
    // the end of the first invocation instead).
    let raw = |event_type: &str, name: Option<&str>| {
        events
            .iter()
            .position(|e| e["EventType"] == event_type && name.is_none_or(|n| e["Name"] == n))
    };
    let sms_done = raw("ContextSucceeded", Some("sms"));
    let first_end = raw("InvocationCompleted", None);
    check(
        sms_done.is_some() && first_end.is_some() && sms_done < first_end,
        || format!("{:?}", kinds(&events)),
    )?;
    expect_invocations(&events, 2)
}

/// Starts `function` on `input`; returns the execution's ARN.
fn start(stack: &Stack, function: &str, input: Value) -> Result<String, String> {
    let name = format!("{function}-{}-{}", std::process::id(), unique());
    stack.start_execution(function, &name, &input)
}

/// The execution and its history, once it is done.
fn finished(stack: &Stack, arn: &str) -> Result<(Value, Vec<Value>), String> {
    let execution = stack.wait_until_done(arn, Duration::from_secs(180))?;
    Ok((execution, stack.history(arn)?))
}

fn callback_events(events: &[Value]) -> Vec<(String, String)> {
    kinds(events)
        .into_iter()
        .filter(|(t, _)| t.starts_with("Callback"))
        .collect()
}

fn callback_succeeded(stack: &Stack) -> Result<(), String> {
    let arn = start(
        stack,
        "external",
        json!({"scenario": "callback", "timeout": 60}),
    )?;
    let id = stack.callback_id(&arn, "approval", Duration::from_secs(30))?;
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

fn callback_failed(stack: &Stack) -> Result<(), String> {
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

fn callback_timed_out(stack: &Stack) -> Result<(), String> {
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

fn callback_heartbeat_timed_out(stack: &Stack) -> Result<(), String> {
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

fn two_callbacks(stack: &Stack) -> Result<(), String> {
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

fn wait_for_callback(stack: &Stack) -> Result<(), String> {
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

fn invoke_durable(stack: &Stack) -> Result<(), String> {
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

fn invoke_failing(stack: &Stack) -> Result<(), String> {
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

fn invoke_missing(stack: &Stack) -> Result<(), String> {
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

fn condition_polls(stack: &Stack) -> Result<(), String> {
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

fn condition_exhausted(stack: &Stack) -> Result<(), String> {
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

/// The OTLP receiver the OpenTelemetry functions export to (started before
/// the stack, whose functions get its endpoint).
static OTLP: std::sync::OnceLock<durable_yield_tests::otlp::OtlpReceiver> =
    std::sync::OnceLock::new();

/// OpenTelemetry on the emulator, exported over OTLP/HTTP (protobuf) by
/// `opentelemetry-otlp` from the functions to a receiver in this test: a
/// child context, a parallel, a map, a retry (a second invocation), a
/// chained invoke whose START carries the trace header (a third) and a
/// wait-for-callback answered from here (a fourth), in the view of
/// `function` (`otel-invocation` or `otel-execution`). Checks what AWS's
/// `otel-invocation-*` / `otel-execution-*` requirements check: the span
/// tree (every operation under its context's span), the exact `durable.*`
/// attribute sets, statuses, links, one root (`Workflow`) per trace, the
/// service name; and that every span was exported by the end of each
/// invocation (the plugin flushes: the receiver has them as soon as the
/// execution is done).
fn otel(stack: &Stack, function: &str) -> Result<(), String> {
    let receiver = OTLP.get().ok_or("no OTLP receiver")?;
    let arn = start(stack, function, json!({}))?;
    let id = stack.callback_id(
        &arn,
        "otel-callback create callback id",
        Duration::from_secs(60),
    )?;
    // Four invocations, the last one resumed by the answer: answered only
    // once the third has suspended on the callback.
    stack.suspended_on_callback(
        &arn,
        "otel-callback create callback id",
        Duration::from_secs(60),
    )?;
    stack.callback_success(&id, "\"yes\"")?;
    let (execution, events) = finished(stack, &arn)?;
    succeeded_with(&execution, "\"27 yes\"")?;
    expect_invocations(&events, 4)?;
    // Flushed by each invocation's end: no waiting for a batch timer.
    let spans = receiver.wait_for(&arn, Duration::from_secs(1), |spans| {
        spans.iter().any(|s| s.name == "Workflow")
    });
    check(!spans.is_empty(), || {
        "no span had been exported when the execution ended: the plugin flushes at the \
         end of each invocation"
            .to_owned()
    })?;
    check(receiver.problems().is_empty(), || {
        format!("the receiver saw {:?}", receiver.problems())
    })?;
    let view = if function == "otel-execution" {
        "execution"
    } else {
        "invocation"
    };
    let described = || {
        spans
            .iter()
            .map(|s| {
                let parent = spans
                    .iter()
                    .find(|p| p.span_id == s.parent_span_id)
                    .map_or("-", |p| p.name.as_str());
                format!(
                    "{} [{}] under {parent}",
                    s.name,
                    s.attr("durable.operation.status").unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let by_id = |id: &str| spans.iter().find(|s| s.span_id == id);
    let parent_name = |s: &durable_yield_tests::otlp::ReceivedSpan| {
        by_id(&s.parent_span_id).map(|p| p.name.clone())
    };
    fn keys(s: &durable_yield_tests::otlp::ReceivedSpan) -> Vec<&str> {
        let mut k: Vec<&str> = s
            .attributes
            .iter()
            .filter_map(|(k, _)| k.strip_prefix("durable."))
            .collect();
        k.sort_unstable();
        k
    }
    let sorted = |k: &[&'static str]| {
        let mut k = k.to_vec();
        k.sort_unstable();
        k
    };
    let operation = [
        "execution.arn",
        "operation.id",
        "operation.name",
        "operation.status",
        "operation.subtype",
        "operation.type",
    ];
    let step = [
        "attempt.number",
        "execution.arn",
        "operation.id",
        "operation.name",
        "operation.status",
        "operation.subtype",
        "operation.type",
    ];
    let attempt = [
        "attempt.number",
        "attempt.outcome",
        "execution.arn",
        "operation.id",
        "operation.name",
        "operation.subtype",
        "operation.type",
    ];

    // Common to both views: one trace whose one root is the synthetic
    // `DurableExecutionRoot` (the trace is derived, not the header's: no
    // Lambda segment to parent to), written again by each invocation, with
    // Workflow under it and Invocation spans under Workflow, every span
    // INTERNAL from this function.
    let trace = spans
        .first()
        .map(|s| s.trace_id.clone())
        .unwrap_or_default();
    let roots: BTreeSet<(&str, &str)> = spans
        .iter()
        .filter(|s| s.parent_span_id.is_empty())
        .map(|s| (s.name.as_str(), s.span_id.as_str()))
        .collect();
    check(
        roots.iter().map(|r| r.0).collect::<Vec<_>>() == ["DurableExecutionRoot"]
            && spans.iter().all(|s| s.trace_id == trace)
            && spans
                .iter()
                .all(|s| s.kind == 1 && s.service_name == function)
            && spans.iter().all(|s| s.start <= s.end),
        || {
            format!(
                "roots {roots:?}, traces {:?}, kinds {:?}, services {:?}, spans:\n{}",
                spans.iter().map(|s| &s.trace_id).collect::<BTreeSet<_>>(),
                spans.iter().map(|s| s.kind).collect::<BTreeSet<_>>(),
                spans
                    .iter()
                    .map(|s| &s.service_name)
                    .collect::<BTreeSet<_>>(),
                described()
            )
        },
    )?;
    let workflow = spans
        .iter()
        .find(|s| s.name == "Workflow")
        .ok_or_else(|| format!("no Workflow span:\n{}", described()))?;
    check(
        keys(workflow) == ["execution.arn", "execution.status"]
            && workflow.attr("durable.execution.status") == Some("SUCCEEDED")
            && workflow.status == 1
            && workflow.links.is_empty()
            && parent_name(workflow).as_deref() == Some("DurableExecutionRoot"),
        || format!("Workflow: {workflow:?}"),
    )?;
    let invocations: Vec<_> = spans.iter().filter(|s| s.name == "Invocation").collect();
    let statuses: Vec<(Option<&str>, Option<&str>)> = invocations
        .iter()
        .map(|s| {
            (
                s.attr("durable.invocation.first"),
                s.attr("durable.invocation.status"),
            )
        })
        .collect();
    check(
        statuses
            == [
                (Some("true"), Some("PENDING")),
                (Some("false"), Some("PENDING")),
                (Some("false"), Some("PENDING")),
                (Some("false"), Some("SUCCEEDED")),
            ]
            && invocations.iter().all(|s| {
                keys(s) == ["execution.arn", "invocation.first", "invocation.status"]
                    && parent_name(s).as_deref() == Some("DurableExecutionRoot")
                    && s.links.is_empty()
                    && s.status == 1
            }),
        || format!("Invocation spans {statuses:?}:\n{}", described()),
    )?;
    let links_to = |s: &durable_yield_tests::otlp::ReceivedSpan| -> Vec<String> {
        s.links
            .iter()
            .map(|l| by_id(l).map_or_else(|| format!("<{l}>"), |t| t.name.clone()))
            .collect()
    };
    let expected_link = if view == "invocation" {
        "Workflow"
    } else {
        "Invocation"
    };
    for s in spans
        .iter()
        .filter(|s| !["Workflow", "Invocation", "DurableExecutionRoot"].contains(&s.name.as_str()))
    {
        // In the invocation view a span continuing an operation an earlier
        // invocation began links to its first span too.
        let links = links_to(s);
        check(
            links == [expected_link]
                || (view == "invocation" && links == [s.name.clone(), expected_link.into()]),
            || format!("{} links to {:?}", s.name, links),
        )?;
    }

    // The tree: every operation under its context's span, every attempt
    // under its operation's.
    let find = |name: &str, status: &str| {
        spans
            .iter()
            .find(|s| s.name == name && s.attr("durable.operation.status") == Some(status))
            .ok_or_else(|| format!("no {name} [{status}] span:\n{}", described()))
    };
    let top = if view == "invocation" {
        "Invocation"
    } else {
        "Workflow"
    };
    for (name, parent) in [
        ("otel-child", top),
        ("otel-child-step", "otel-child"),
        ("otel-parallel", top),
        ("otel-branch-a", "otel-parallel"),
        ("otel-branch-b", "otel-parallel"),
        ("otel-step-a", "otel-branch-a"),
        ("otel-step-b", "otel-branch-b"),
        ("otel-map", top),
        ("map-item-0", "otel-map"),
        ("map-item-1", "otel-map"),
        ("otel-retry", top),
        ("otel-invoke", top),
        ("otel-callback", top),
        ("otel-callback submitter", "otel-callback"),
        ("otel-callback create callback id", "otel-callback"),
    ] {
        let span = find(name, "SUCCEEDED")?;
        check(parent_name(span).as_deref() == Some(parent), || {
            format!(
                "{name} is under {:?}, not {parent}:\n{}",
                parent_name(span),
                described()
            )
        })?;
        let is_step = span.attr("durable.operation.type") == Some("STEP");
        check(
            keys(span) == sorted(if is_step { &step } else { &operation }),
            || format!("{name}'s attributes: {:?}", span.attributes),
        )?;
        check(span.status == 1, || {
            format!("{name}'s status: {}", span.status)
        })?;
    }
    for item in ["map-item-0", "map-item-1"] {
        let item_span = find(item, "SUCCEEDED")?;
        check(
            spans
                .iter()
                .any(|s| s.name == "otel-map-step" && s.parent_span_id == item_span.span_id),
            || format!("no map step under {item}:\n{}", described()),
        )?;
    }
    let attempts: Vec<_> = spans
        .iter()
        .filter(|s| s.name.contains(" attempt "))
        .collect();
    for a in &attempts {
        let parent = by_id(&a.parent_span_id);
        check(
            parent.is_some_and(|p| {
                a.name.starts_with(&format!("{} attempt ", p.name))
                    && p.attr("durable.operation.id") == a.attr("durable.operation.id")
            }) && keys(a) == sorted(&attempt),
            || {
                format!(
                    "attempt {} under {:?}: {:?}",
                    a.name,
                    parent.map(|p| &p.name),
                    a.attributes
                )
            },
        )?;
    }
    let retry_attempts: Vec<_> = attempts
        .iter()
        .filter(|a| a.name.starts_with("otel-retry attempt"))
        .map(|a| (a.name.as_str(), a.attr("durable.attempt.outcome"), a.status))
        .collect();
    check(
        retry_attempts
            == [
                ("otel-retry attempt 1", Some("FAILED"), 2),
                ("otel-retry attempt 2", Some("SUCCEEDED"), 1),
            ],
        || format!("retry attempts {retry_attempts:?}"),
    )?;

    let operation_spans: Vec<_> = spans
        .iter()
        .filter(|s| s.attr("durable.operation.status").is_some())
        .collect();
    if view == "invocation" {
        // Spans of operations going on when an invocation ended: STARTED,
        // no attempt number, status unset; continuations in the next.
        for (name, status) in [
            ("otel-retry", "STARTED"),
            ("otel-invoke", "STARTED"),
            ("otel-callback", "STARTED"),
            ("otel-callback create callback id", "STARTED"),
        ] {
            let span = find(name, status)?;
            check(keys(span) == sorted(&operation) && span.status == 0, || {
                format!(
                    "{name} [{status}]: {:?} status {}",
                    span.attributes, span.status
                )
            })?;
        }
        // The answered callback's continuation, under the context's span
        // of the invocation that saw the answer.
        let answered = find("otel-callback create callback id", "SUCCEEDED")?;
        let context = find("otel-callback", "SUCCEEDED")?;
        check(answered.parent_span_id == context.span_id, || {
            format!(
                "the answered callback is not under the last context span:\n{}",
                described()
            )
        })?;
        // 12 for the child, the parallel and the map; two each for the
        // retried step, the invoke, the wait-for-callback and its
        // callback; the submitter.
        check(operation_spans.len() == 21, || {
            format!(
                "{} operation spans:\n{}",
                operation_spans.len(),
                described()
            )
        })?;
    } else {
        // One span per recorded operation, with its recorded status.
        let recorded: Vec<&Value> = events
            .iter()
            .filter(|e| {
                e["EventType"]
                    .as_str()
                    .is_some_and(|t| t.ends_with("Succeeded") && t != "ExecutionSucceeded")
            })
            .collect();
        for e in &recorded {
            let id = e["Id"].as_str().unwrap_or_default();
            let mine = operation_spans
                .iter()
                .filter(|s| s.attr("durable.operation.id") == Some(id))
                .count();
            check(mine == 1, || {
                format!("{mine} spans for {}:\n{}", e["Name"], described())
            })?;
        }
        check(operation_spans.len() == recorded.len(), || {
            format!(
                "{} operation spans for {} operations:\n{}",
                operation_spans.len(),
                recorded.len(),
                described()
            )
        })?;
        // Attempts lie within the invocation they link to.
        for a in &attempts {
            let invocation = a.links.first().and_then(|l| by_id(l));
            check(
                invocation.is_some_and(|i| i.start <= a.start && a.end <= i.end),
                || format!("{} is outside its invocation", a.name),
            )?;
        }
    }
    // The lines user code wrote carry the ids of the span it ran in (the
    // child's, each attempt's), as AWS's plugin stamps log records; read
    // from the function's stdout, which may lag behind a little.
    let child = find("otel-child", "SUCCEEDED")?;
    let one = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| format!("no {name} span:\n{}", described()))
    };
    let expected: Vec<(&str, Option<u64>, &durable_yield_tests::otlp::ReceivedSpan)> = vec![
        ("otel child code", None, child),
        ("otel retry attempt", Some(1), one("otel-retry attempt 1")?),
        ("otel retry attempt", Some(2), one("otel-retry attempt 2")?),
    ];
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let lines = loop {
        let lines = function_log_lines(stack, &arn)?;
        let all = expected.iter().all(|(message, attempt, _)| {
            lines
                .iter()
                .any(|l| l["message"] == *message && attempt.is_none_or(|a| l["attempt"] == a))
        });
        if all || std::time::Instant::now() > deadline {
            break lines;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for (message, attempt, span) in expected {
        let found: Vec<&Value> = lines
            .iter()
            .filter(|l| l["message"] == message && attempt.is_none_or(|a| l["attempt"] == a))
            .collect();
        check(
            found.len() == 1
                && found[0]["traceId"] == span.trace_id.as_str()
                && found[0]["spanId"] == span.span_id.as_str()
                && found[0]["otelTraceSampled"] == true,
            || {
                format!(
                    "the line {message:?} {attempt:?} should carry the ids of {} ({} {}): {found:?}",
                    span.name, span.trace_id, span.span_id
                )
            },
        )?;
    }
    Ok(())
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
    let scenarios: [(&str, Scenario); 47] = [
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
        ("unnamed", unnamed),
        ("plugin-hooks", plugin_hooks),
        ("otel-invocation", |s| otel(s, "otel-invocation")),
        ("otel-execution", |s| otel(s, "otel-execution")),
        ("child-fails", child_fails),
        ("large-child", large_child),
        ("map-basic", map_basic),
        ("empty-map", empty_map),
        ("min-successful", min_successful),
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
        scenarios.iter().any(|(name, _)| chosen(name)),
        "DURABLE_YIELD_INTEROP_ONLY={only:?} names no scenario"
    );
    let failures: Vec<String> = std::thread::scope(|scope| {
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

//! durable-yield against AWS's conformance requirements for
//! durable-execution SDKs (PyPI `aws-durable-execution-conformance-tests`
//! 1.0.0, one YAML file per requirement): for each requirement a workflow
//! does what the file's `handler` and `invocations` describe, runs to its
//! end on the local runner (its virtual clock skips the waits and retry
//! delays), and the run's result and history (`LocalRun::history`, the
//! `GetDurableExecutionHistory` shape) are checked against the file's
//! `ExpectedResult` and `ExpectedExecutionHistory` by the package's rules
//! (`matcher.rs`).
//!
//! A second test runs the same workflows (`workflows/`) as the
//! `conformance` functions of `examples/functions` against AWS's emulator
//! (`dex-local-runner`, real time; `workflows::function_of` says which
//! function runs which requirement) and checks what it records the same
//! way, but for what the emulator's own history lacks (see
//! `without_emulator_gaps`).
//!
//! A third test runs the scenarios of AWS's OpenTelemetry requirements
//! (`aws-durable-execution-conformance-tests-otel` 0.2.0, from
//! `.venv/conformance-otel/`) on the local runner with `OtelPlugin` and
//! checks their spans against the files' `TelemetryAssertions`
//! (`telemetry.rs`).
//!
//! The files are read from the wheel `.ci/run` unpacks into
//! `.venv/conformance/` (or from `$DURABLE_YIELD_CONFORMANCE_DIR`); the
//! test that reads them is `#[ignore]`d, so that `cargo test --workspace`
//! on a machine without them reports it as ignored instead of passing it,
//! and it fails, saying how to get them, when it is run without them.
//! `ExpectedLogs` (CloudWatch log lines) are checked too, against the lines
//! a run really writes: the bodies log with `tracing`, the SDK's
//! `JsonLogLayer` (replay logging on) writes the lines, the plugin suite's
//! plugins write their records; here what would go to stdout goes to a
//! sink, on the emulator it is read from `cargo lambda watch`'s log; either
//! way only the lines whose `durableExecutionArn` is the execution's count,
//! as AWS's runner filters CloudWatch.

mod cases;
mod matcher;
mod otel_scenarios;
mod telemetry;
mod workflows;

use std::collections::BTreeMap;

use matcher::{Matcher, PACKAGE, Requirement, load_all, requirements_dir};
use serde_json::Value;

#[tokio::test]
#[ignore = "needs AWS's conformance requirements in .venv/conformance (.ci/run downloads them; \
            see tests/conformance/main.rs), then: \
            cargo test -p durable-yield-tests --test conformance -- --include-ignored"]
async fn aws_conformance_requirements() {
    let Some(dir) = requirements_dir() else {
        panic!(
            "AWS's conformance requirements are not in .venv/conformance (nor in \
             $DURABLE_YIELD_CONFORMANCE_DIR). Get them with:\n  \
             python3 -m pip download --no-deps --python-version 3.14 --only-binary=:all: \
             {PACKAGE} -d .venv/conformance-wheel\n  \
             python3 -m zipfile -e .venv/conformance-wheel/*.whl .venv/conformance"
        );
    };
    let all = load_all(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    assert!(
        all.len() > 100,
        "only {} requirement files in {}",
        all.len(),
        dir.display()
    );
    let mut failures = Vec::new();
    let mut checked = BTreeMap::<String, Vec<String>>::new();
    for (id, requirement) in &all {
        // Every requirement of the version read has its workflow.
        if !workflows::covers(id) {
            failures.push(format!(
                "{id} ({}): no workflow covers it",
                requirement.suite
            ));
            continue;
        }
        match check(requirement).await {
            Ok(()) => {
                // What these checks leave out of a requirement they meet.
                let mut note = String::new();
                if !requirement.expected_logs().is_empty() {
                    note.push_str(" (log lines too)");
                }
                if requirement.optional {
                    note.push_str(" (optional)");
                }
                checked
                    .entry(requirement.suite.clone())
                    .or_default()
                    .push(format!("{id}{note}"));
            }
            Err(errors) => failures.push(format!(
                "{id} ({}: {}):\n    {}",
                requirement.suite,
                requirement.description,
                errors.join("\n    ")
            )),
        }
    }
    for (suite, ids) in &checked {
        eprintln!(
            "{suite}: {} requirements met: {}",
            ids.len(),
            ids.join(", ")
        );
    }
    eprintln!(
        "{} requirements read, {} met",
        all.len(),
        checked.values().map(Vec::len).sum::<usize>()
    );
    assert!(
        failures.is_empty(),
        "{} of the covered requirements are not met:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Runs the workflow of `requirement` and checks what it recorded.
async fn check(requirement: &Requirement) -> Result<(), Vec<String>> {
    if requirement.expected_history().is_empty() && requirement.expected_result().is_none() {
        return Err(vec![
            "the file states no result and no history to check".into(),
        ]);
    }
    let bindings = requirement.bindings(0x5eed_u64 ^ requirement.id.len() as u64);
    let input = requirement.input(&bindings);
    let actions = requirement.callback_actions(&bindings);
    capture_log_lines();
    let logs = workflows::LogSink::default();
    workflows::use_sink(&logs);
    let run = cases::run(&requirement.id, input, &actions)
        .await
        .map_err(|e| vec![format!("the run failed: {e}")])?;
    let (mut m, events) = checked_run(requirement, bindings, &run);
    let lines = workflows::records_of(&logs.records(), &run.arn);
    m.logs(requirement.expected_logs(), &lines);
    m.verdict(&events, "the history")
}

/// A matcher that checked `run`'s result and history against
/// `requirement`, and the history's events (in the service's shape).
fn checked_run(
    requirement: &Requirement,
    bindings: matcher::Bindings,
    run: &durable_yield::LocalRun<Value>,
) -> (Matcher, Vec<Value>) {
    let events: Vec<Value> = run
        .history()
        .events
        .iter()
        .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
        .collect();
    let mut m = Matcher::new(bindings);
    let status = run.status.to_string();
    m.result(requirement.expected_result(), &status, run.result.as_ref());
    m.events(requirement.expected_history(), &events);
    (m, events)
}

/// Sends the SDK's JSON log lines (`JsonLogLayer`, INFO and up, with
/// replay logging on, as the requirements that log ask) to the current
/// sink instead of stdout, once per process.
fn capture_log_lines() {
    use tracing_subscriber::layer::{Layer, SubscriberExt};
    use tracing_subscriber::util::SubscriberInitExt;
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let layer = durable_yield::logging::JsonLogLayer::stdout()
            .with_writer(LineWriter::default)
            .every_replay()
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
        if tracing_subscriber::registry()
            .with(layer)
            .try_init()
            .is_err()
        {
            panic!("another tracing subscriber was set: the log lines cannot be read");
        }
    });
}

/// Hands each complete line written to it to [`workflows::print_line`]
/// (the current sink), and what is left when dropped.
#[derive(Default)]
struct LineWriter(Vec<u8>);

impl LineWriter {
    fn hand_over(&mut self, all: bool) {
        while let Some(end) = self.0.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.0.drain(..=end).collect();
            workflows::print_line(String::from_utf8_lossy(&line).trim_end());
        }
        if all && !self.0.is_empty() {
            workflows::print_line(&String::from_utf8_lossy(&std::mem::take(&mut self.0)));
        }
    }
}

impl std::io::Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        self.hand_over(false);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        self.hand_over(true);
    }
}

#[test]
#[ignore = "needs AWS's conformance requirements in .venv/conformance and AWS's emulator stack \
            (dex-local-runner, cargo-lambda) in .venv/bin (.ci/run installs both), then: \
            cargo test -p durable-yield-tests --test conformance -- --include-ignored"]
fn aws_conformance_requirements_on_the_aws_emulator() {
    use durable_yield_tests::emulator::{Stack, tools};
    let Some(dir) = requirements_dir() else {
        panic!("AWS's conformance requirements are not in .venv/conformance: run .ci/run");
    };
    let Some((dex, cargo_lambda)) = tools() else {
        panic!(
            "dex-local-runner and cargo-lambda are not installed (in .venv/bin or \
             $DURABLE_YIELD_EMULATOR_BIN): run .ci/run, or see the README's \
             \"AWS's emulator, by hand\""
        );
    };
    let all = load_all(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    // Real time: with timers skipped, the emulator records a wait's end
    // before the end of the invocation that started it.
    let stack = Stack::start(&dex, &cargo_lambda, false)
        .unwrap_or_else(|e| panic!("the emulator stack did not start: {e}"));
    let chosen: Vec<&Requirement> = all.values().collect();
    let results: Vec<(String, Result<(), Vec<String>>)> = chosen
        .chunks(8)
        .flat_map(|chunk| {
            std::thread::scope(|scope| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|r| (r.id.clone(), scope.spawn(|| check_on(&stack, r))))
                    .collect();
                handles
                    .into_iter()
                    .map(|(id, h)| {
                        let result = h
                            .join()
                            .unwrap_or_else(|_| Err(vec!["the check panicked".into()]));
                        (id, result)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let met: Vec<&str> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(id, _)| id.as_str())
        .collect();
    eprintln!(
        "on AWS's emulator: {} of {} requirements run, {} met: {}",
        results.len(),
        all.len(),
        met.len(),
        met.join(" ")
    );
    let failures: Vec<String> = results
        .iter()
        .filter_map(|(id, r)| {
            r.as_ref()
                .err()
                .map(|e| format!("{id}:\n    {}", e.join("\n    ")))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} requirements not met on the emulator:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Answers the execution's callbacks as `actions` say, as AWS's runner
/// does, until the execution ends: each `CallbackStarted` not handled yet
/// takes the first unused action whose name matches its name (`*`,
/// `${/regex/}` or the name), which is sent after its delay (a heartbeat
/// leaves the callback open for the next action); a callback no action
/// matches is an error when there are actions.
fn answer_callbacks(
    stack: &durable_yield_tests::emulator::Stack,
    arn: &str,
    actions: &[cases::Action],
) -> Result<(), Vec<String>> {
    use std::time::{Duration, Instant};
    let fail = |e: String| vec![e];
    let mut used = vec![false; actions.len()];
    let mut handled = std::collections::BTreeSet::<String>::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let events = stack.history(arn).map_err(fail)?;
        for event in events
            .iter()
            .filter(|e| e["EventType"] == "CallbackStarted")
        {
            let Some(id) = event["CallbackStartedDetails"]["CallbackId"].as_str() else {
                continue;
            };
            if handled.contains(id) {
                continue;
            }
            let name = event["Name"].as_str().unwrap_or_default();
            let found = cases::next_action(actions, &used, name);
            let Some((i, action)) = found else {
                handled.insert(id.to_owned());
                if !actions.is_empty() {
                    return Err(vec![format!("no action for the callback {name:?}")]);
                }
                continue;
            };
            used[i] = true;
            if action.operation != "heartbeat" {
                handled.insert(id.to_owned());
            }
            std::thread::sleep(Duration::from_secs_f64(action.delay));
            let sent = match action.operation.as_str() {
                "success" => {
                    let body = match &action.payload {
                        Value::Null => String::new(),
                        payload => cases::python_json(payload),
                    };
                    stack.callback_success(id, &body)
                }
                "failure" => stack.callback_failure(id, &action.payload),
                _ => stack.callback_heartbeat(id),
            };
            sent.map_err(fail)?;
            // One action at a time: the next poll sees what it changed.
            break;
        }
        let execution = stack.execution(arn).map_err(fail)?;
        if execution["Status"] != "RUNNING" {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(vec![format!("still RUNNING after 120 s: {execution}")]);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The expected events without what AWS's emulator does not record (its
/// own gaps, not the SDK's: the same requirements hold on the local
/// runner, and the emulator's code shows them): details of
/// `InvocationCompleted` events; the `RetryDetails` of a `StepSucceeded`
/// that ended a step; and the `Result.Payload` of a `StepSucceeded` that a
/// RETRY without error wrote (a wait-for-condition check that found it
/// unmet, recognised by the emulator's own `NextAttemptDelaySeconds`): its
/// history builds that event's details from the attempt and the error
/// only, dropping the state the update carried); and the `Timeout` and
/// `HeartbeatTimeout` of a `CallbackStarted` (it reads them from the
/// update, which it hands to its event builder only for RETRY, FAIL and a
/// chained invoke's START; the time-outs themselves work: the same
/// requirements see the callbacks time out); and the `ExecutedVersion` and
/// `TenantId` of a `ChainedInvokeStarted` (it resolves no function
/// versions, its model says, and leaves the tenant out on purpose, saying
/// the service's history does: the requirement says it holds it, and the
/// local runner's does). When `crashed` (the process died in the first
/// invocation): that invocation's `InvocationCompleted` (the emulator
/// records none for an invocation that ended in a function error: its
/// `_retry_after_error` invokes again without recording the invocation's
/// end, which its `_retry_after_timeout` does), the later events moving up
/// one `EventId`.
fn without_emulator_gaps(expected: &[Value], actual: &[Value], crashed: bool) -> Vec<Value> {
    let retried = |id: &Value| {
        actual.iter().any(|a| {
            &a["EventId"] == id
                && a["StepSucceededDetails"]["RetryDetails"]
                    .get("NextAttemptDelaySeconds")
                    .is_some()
        })
    };
    expected
        .iter()
        .map(|event| {
            let mut event = event.clone();
            let retry = retried(&event["EventId"]);
            if let Some(map) = event.as_object_mut() {
                map.remove("InvocationCompletedDetails");
                if let Some(details) = map
                    .get_mut("CallbackStartedDetails")
                    .and_then(Value::as_object_mut)
                {
                    details.remove("Timeout");
                    details.remove("HeartbeatTimeout");
                }
                if let Some(details) = map
                    .get_mut("ChainedInvokeStartedDetails")
                    .and_then(Value::as_object_mut)
                {
                    details.remove("ExecutedVersion");
                    details.remove("TenantId");
                }
                if let Some(details) = map
                    .get_mut("StepSucceededDetails")
                    .and_then(Value::as_object_mut)
                {
                    if retry {
                        if let Some(result) =
                            details.get_mut("Result").and_then(Value::as_object_mut)
                        {
                            result.remove("Payload");
                        }
                    } else {
                        details.remove("RetryDetails");
                    }
                }
            }
            event
        })
        .collect::<Vec<Value>>()
        .into_iter()
        .scan(false, |skipped, mut event| {
            if crashed && !*skipped && event["EventType"] == "InvocationCompleted" {
                *skipped = true;
                return Some(None);
            }
            if *skipped && let Some(id) = event["EventId"].as_u64() {
                event["EventId"] = Value::from(id - 1);
            }
            Some(Some(event))
        })
        .flatten()
        .collect()
}

/// Runs the `conformance` function (a `conformance-plugin` one for the
/// plugin requirements) for `requirement` on the emulator and checks the
/// execution, its history and its log lines. A
/// requirement AWS's runner invokes asynchronously (`AsyncInvoke`: a wait
/// of an hour) is checked as that runner does: once its expected events
/// are there, without waiting for the end.
fn check_on(
    stack: &durable_yield_tests::emulator::Stack,
    requirement: &Requirement,
) -> Result<(), Vec<String>> {
    use std::time::Duration;
    let fail = |e: String| vec![e];
    let bindings = requirement.bindings(0x5eed_u64 ^ requirement.id.len() as u64);
    let input = serde_json::json!({
        "id": requirement.id,
        "input": requirement.input(&bindings),
    });
    let name = format!("conformance-{}-{}", requirement.id, std::process::id());
    let arn = stack
        .start_execution(workflows::function_of(&requirement.id), &name, &input)
        .map_err(fail)?;
    let actions = requirement.callback_actions(&bindings);
    let crashed = workflows::function_of(&requirement.id) == "conformance-crash";
    let history_only = requirement.spec.get("AsyncInvoke").and_then(Value::as_bool) == Some(true)
        && requirement.expected_result().is_none();
    if !history_only {
        answer_callbacks(stack, &arn, &actions)?;
    }
    if history_only {
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        loop {
            let events = stack.history(&arn).map_err(fail)?;
            let expected = without_emulator_gaps(requirement.expected_history(), &events, crashed);
            let mut m = Matcher::new(bindings.clone());
            m.events(&expected, &events);
            if m.errors.is_empty() {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(m.errors);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    let execution = stack
        .wait_until_done(&arn, Duration::from_secs(120))
        .map_err(fail)?;
    let events = stack.history(&arn).map_err(fail)?;
    let expected = without_emulator_gaps(requirement.expected_history(), &events, crashed);
    let status = execution["Status"].as_str().unwrap_or_default().to_owned();
    // The execution's result, as the package reads it: JSON-decoded once.
    let result = execution["Result"]
        .as_str()
        .map(|r| serde_json::from_str(r).unwrap_or_else(|_| Value::String(r.to_owned())));
    let mut m = Matcher::new(bindings);
    m.result(requirement.expected_result(), &status, result.as_ref());
    m.events(&expected, &events);
    let expected_logs = requirement.expected_logs();
    if !expected_logs.is_empty() {
        // The lines reach cargo lambda's log through a pipe: a few seconds
        // for the last ones, as AWS's runner waits for CloudWatch's.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let lines = loop {
            let lines = emulator_log_records(stack, &arn).map_err(fail)?;
            let mut probe = Matcher::new(m.bindings.clone());
            probe.logs(expected_logs, &lines);
            if probe.errors.is_empty() || std::time::Instant::now() > deadline {
                break lines;
            }
            std::thread::sleep(Duration::from_millis(250));
        };
        m.logs(expected_logs, &lines);
    }
    m.verdict(&events, "the emulator's history")
}

/// The log lines of the execution `arn` the functions wrote on the
/// emulator (`cargo lambda watch` passes their stdout through to its log),
/// found as AWS's runner finds an execution's lines in CloudWatch.
fn emulator_log_records(
    stack: &durable_yield_tests::emulator::Stack,
    arn: &str,
) -> Result<Vec<Value>, String> {
    let path = stack.logs.join("cargo-lambda-watch.log");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let records: Vec<Value> = text.lines().map(workflows::record_of_line).collect();
    Ok(workflows::records_of(&records, arn))
}

// ------------------------------------------------ OpenTelemetry requirements

/// The package of AWS's OpenTelemetry requirements.
const OTEL_PACKAGE: &str = "aws-durable-execution-conformance-tests-otel==0.2.0";

/// The service name the spans are exported under (the package's default).
const SERVICE_NAME: &str = "durable-execution-conformance";

/// Where `.ci/run` unpacks the OpenTelemetry requirements.
fn otel_requirements_dir() -> Option<std::path::PathBuf> {
    let dir = match std::env::var_os("DURABLE_YIELD_OTEL_CONFORMANCE_DIR") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(
            "../.venv/conformance-otel/aws_durable_execution_conformance_tests_otel/\
             test_requirements",
        ),
    };
    dir.is_dir().then_some(dir)
}

/// AWS's OpenTelemetry requirements (suites `otel-invocation`,
/// `otel-execution`, `otel-long-running`): each scenario runs on the local
/// runner with `OtelPlugin` in the suite's view, its spans exported in
/// process; its result and history are checked as above, and its spans
/// against the requirement's `TelemetryAssertions` (`telemetry.rs`; a
/// long-running requirement in both views, the execution view against its
/// `ExecutionTelemetryAssertions`).
#[tokio::test]
#[ignore = "needs AWS's OpenTelemetry conformance requirements in .venv/conformance-otel \
            (.ci/run downloads them), then: \
            cargo test -p durable-yield-tests --test conformance -- --include-ignored"]
async fn aws_otel_conformance_requirements() {
    use durable_yield::otel::OtelView;
    let Some(dir) = otel_requirements_dir() else {
        panic!(
            "AWS's OpenTelemetry conformance requirements are not in .venv/conformance-otel (nor \
             in $DURABLE_YIELD_OTEL_CONFORMANCE_DIR). Get them with:\n  \
             python3 -m pip download --no-deps --python-version 3.14 --only-binary=:all: \
             {OTEL_PACKAGE} -d .venv/conformance-otel-wheel\n  \
             python3 -m zipfile -e .venv/conformance-otel-wheel/*.whl .venv/conformance-otel"
        );
    };
    let all = load_all(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    assert!(
        all.len() >= 40,
        "only {} requirement files in {}",
        all.len(),
        dir.display()
    );
    let mut failures = Vec::new();
    let mut met = Vec::new();
    for (id, requirement) in &all {
        let scenario = requirement.spec["Input"]["scenario"]
            .as_str()
            .unwrap_or_default();
        if !otel_scenarios::covers(scenario) {
            failures.push(format!("{id}: no workflow runs the scenario {scenario:?}"));
            continue;
        }
        let views: &[(OtelView, &str)] = match requirement.suite.as_str() {
            "otel-invocation" => &[(OtelView::Invocation, "TelemetryAssertions")],
            "otel-execution" => &[(OtelView::Execution, "TelemetryAssertions")],
            _ => &[
                (OtelView::Invocation, "TelemetryAssertions"),
                (OtelView::Execution, "ExecutionTelemetryAssertions"),
            ],
        };
        for &(view, key) in views {
            match check_otel(requirement, view, key).await {
                Ok(()) => met.push(format!("{id} ({view:?})")),
                Err(errors) => failures.push(format!(
                    "{id} ({view:?} view: {}):\n    {}",
                    requirement.description,
                    errors.join("\n    ")
                )),
            }
        }
    }
    eprintln!(
        "OpenTelemetry: {} requirements read, {} checks met: {}",
        all.len(),
        met.len(),
        met.join(", ")
    );
    assert!(
        failures.is_empty(),
        "{} OpenTelemetry checks not met:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Runs `requirement`'s scenario with spans in `view` and checks its
/// result, its history and its spans (against the assertions under `key`).
async fn check_otel(
    requirement: &Requirement,
    view: durable_yield::otel::OtelView,
    key: &str,
) -> Result<(), Vec<String>> {
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
    let bindings = requirement.bindings(0x07e1_u64 ^ requirement.id.len() as u64);
    let input = requirement.input(&bindings);
    let actions = requirement.callback_actions(&bindings);
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .with_id_generator(durable_yield::otel::DeterministicIds::default())
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(SERVICE_NAME)
                .build(),
        )
        .build();
    // A wait-for-callback named `n` names its callback `n create callback id`.
    let callbacks: Vec<String> = [
        "otel-callback",
        "otel-failed-callback",
        "otel-long-callback",
    ]
    .iter()
    .map(|n| format!("{n} create callback id"))
    .collect();
    let names: Vec<&str> = callbacks.iter().map(String::as_str).collect();
    let runner = cases::runner_for(&actions, if actions.is_empty() { &[] } else { &names })
        .map_err(|e| vec![e])?
        .lambda_trace_headers()
        .execution_timeout(otel_scenarios::EXECUTION_TIMEOUT)
        .register_workflow(otel_scenarios::TARGET, otel_scenarios::target)
        .register_workflow(
            otel_scenarios::FAILING_TARGET,
            otel_scenarios::failing_target,
        )
        .register_workflow(otel_scenarios::LONG_TARGET, otel_scenarios::long_target)
        .plugin(durable_yield::otel::OtelPlugin::from_provider(&provider).view(view));
    let run = runner
        .run(&otel_scenarios::run, &input)
        .await
        .map_err(|e| vec![format!("the run failed: {e}")])?;
    let (mut m, events) = checked_run(requirement, bindings, &run);
    m.bindings
        .bind("EXECUTION_ARN", Value::String(run.arn.clone()));
    m.bindings
        .bind("SERVICE_NAME", Value::String(SERVICE_NAME.into()));
    let assertions = m.bindings.substitute(&requirement.spec[key]);
    let spans: Vec<telemetry::Span> = exporter
        .get_finished_spans()
        .map_err(|e| vec![format!("the spans cannot be read: {e}")])?
        .iter()
        .map(span_of)
        .collect();
    let errors = telemetry::validate_trace(&spans, &assertions, &run.arn);
    if !errors.is_empty() {
        m.errors
            .extend(errors.into_iter().map(|e| format!("OpenTelemetry: {e}")));
        let dump: Vec<&Value> = spans.iter().map(|s| &s.dict).collect();
        m.errors.push(format!(
            "the spans:\n{}",
            serde_json::to_string_pretty(&dump).unwrap_or_default()
        ));
    }
    m.verdict(&events, "the history")
}

/// An exported span as the package's model holds it.
fn span_of(span: &opentelemetry_sdk::trace::SpanData) -> telemetry::Span {
    use opentelemetry::trace::{SpanId, SpanKind, Status};
    let micros = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
            .div_ceil(1)
            .saturating_add(500)
            / 1000
    };
    let value = |v: &opentelemetry::Value| -> Value {
        match v {
            opentelemetry::Value::Bool(b) => Value::Bool(*b),
            opentelemetry::Value::I64(i) => Value::from(*i),
            opentelemetry::Value::F64(f) => Value::from(*f),
            other => Value::String(other.to_string()),
        }
    };
    let trace_id = span.span_context.trace_id().to_string();
    let span_id = span.span_context.span_id().to_string();
    let parent = (span.parent_span_id != SpanId::INVALID).then(|| span.parent_span_id.to_string());
    let (start, end) = (micros(span.start_time) as i64, micros(span.end_time) as i64);
    let links: Vec<(String, String)> = span
        .links
        .iter()
        .map(|l| {
            (
                l.span_context.trace_id().to_string(),
                l.span_context.span_id().to_string(),
            )
        })
        .collect();
    let kind = match span.span_kind {
        SpanKind::Internal => "INTERNAL",
        SpanKind::Server => "SERVER",
        SpanKind::Client => "CLIENT",
        SpanKind::Producer => "PRODUCER",
        SpanKind::Consumer => "CONSUMER",
    };
    let status = match span.status {
        Status::Unset => "UNSET",
        Status::Ok => "OK",
        Status::Error { .. } => "ERROR",
    };
    let attributes: serde_json::Map<String, Value> = span
        .attributes
        .iter()
        .map(|kv| (kv.key.as_str().to_owned(), value(&kv.value)))
        .collect();
    let dict = serde_json::json!({
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": parent,
        "name": span.name,
        "kind": kind,
        "start_time": start,
        "end_time": end,
        "status": status,
        "service_name": SERVICE_NAME,
        "attributes": attributes,
        "links": links.iter().map(|(t, s)| serde_json::json!({"trace_id": t, "span_id": s})).collect::<Vec<_>>(),
    });
    telemetry::Span {
        trace_id,
        span_id,
        parent_span_id: parent,
        name: span.name.to_string(),
        start,
        end,
        links,
        dict,
    }
}

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
//! The files are read from the wheel `.ci/run` unpacks into
//! `.venv/conformance/` (or from `$DURABLE_YIELD_CONFORMANCE_DIR`); the
//! test that reads them is `#[ignore]`d, so that `cargo test --workspace`
//! on a machine without them reports it as ignored instead of passing it,
//! and it fails, saying how to get them, when it is run without them.
//! `ExpectedLogs` (CloudWatch log lines) are checked too: the plugins of
//! the plugin suite and the step and child bodies that log write their
//! records to a sink here instead of stdout, one per run of the code that
//! writes it (what AWS's context loggers write with replay logging on).

mod cases;
mod matcher;
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
    let logs = workflows::LogSink::default();
    workflows::use_sink(&logs);
    let run = cases::run(&requirement.id, input, &actions, &logs)
        .await
        .map_err(|e| vec![format!("the run failed: {e}")])?;
    let history = run.history();
    let events: Vec<Value> = history
        .events
        .iter()
        .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
        .collect();
    let mut m = Matcher::new(bindings);
    let status = run.status.to_string();
    m.result(requirement.expected_result(), &status, run.result.as_ref());
    m.events(requirement.expected_history(), &events);
    m.logs(requirement.expected_logs(), &logs.records());
    if m.errors.is_empty() {
        Ok(())
    } else {
        m.errors.push(format!(
            "the history:\n{}",
            serde_json::to_string_pretty(&events).unwrap_or_default()
        ));
        Err(m.errors)
    }
}

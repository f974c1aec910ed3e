//! Child contexts, crashes, transient failures, flat and virtual contexts,
//! unnamed operations and plugin hooks on the emulator.

use super::*;

/// `(EventType, Name, SubType, name of the parent)` of every event of the
/// operations under the root (execution and invocation events left out).
pub(super) fn tree(events: &[Value]) -> Vec<(String, String, String, String)> {
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

pub(super) fn expect_tree(
    events: &[Value],
    expected: &[(&str, &str, &str, &str)],
) -> Result<(), String> {
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
pub(super) fn position(
    events: &[Value],
    event_type: &str,
    name: &str,
    parent: &str,
) -> Result<usize, String> {
    tree(events)
        .iter()
        .position(|(t, n, _, p)| t == event_type && n == name && (parent.is_empty() || p == parent))
        .ok_or_else(|| format!("no {event_type} of {name:?} in {parent:?}"))
}

/// The payload of the `ContextSucceeded` event of `name`.
pub(super) fn context_result<'a>(events: &'a [Value], name: &str) -> Option<&'a str> {
    events
        .iter()
        .find(|e| e["EventType"] == "ContextSucceeded" && e["Name"] == name)
        .and_then(|e| e["ContextSucceededDetails"]["Result"]["Payload"].as_str())
}

pub(super) fn concurrency(stack: &Stack, scenario: &str) -> Result<(Value, Vec<Value>), String> {
    run(stack, "concurrency", json!({ "scenario": scenario }))
}

pub(super) fn nested_children(stack: &Stack) -> Result<(), String> {
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
pub(super) fn crash_in_step(stack: &Stack) -> Result<(), String> {
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
pub(super) fn transient_codec(stack: &Stack) -> Result<(), String> {
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
pub(super) fn ids_of(events: &[Value], name: &str) -> Result<(String, Option<String>), String> {
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
pub(super) fn flat_map(stack: &Stack) -> Result<(), String> {
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
pub(super) fn flat_parallel(stack: &Stack) -> Result<(), String> {
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
pub(super) fn virtual_child(stack: &Stack) -> Result<(), String> {
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

/// Custom subtypes reach the service's history as they were checkpointed,
/// and replay against it.
pub(super) fn custom_subtypes(stack: &Stack) -> Result<(), String> {
    let (execution, events) = concurrency(stack, "custom-subtypes")?;
    succeeded_with(&execution, "\"42\"")?;
    expect_tree(
        &events,
        &[
            ("StepStarted", "charge", "Payment", ""),
            ("StepSucceeded", "charge", "Payment", ""),
            ("ContextStarted", "reserve", "Reservation", ""),
            ("StepStarted", "hold", "Step", "reserve"),
            ("StepSucceeded", "hold", "Step", "reserve"),
            ("ContextSucceeded", "reserve", "Reservation", ""),
            ("WaitStarted", "settle", "Wait", ""),
            ("WaitSucceeded", "settle", "Wait", ""),
        ],
    )?;
    expect_invocations(&events, 2)
}

/// Unnamed operations record no Name, as AWS's SDKs record them.
pub(super) fn unnamed(stack: &Stack) -> Result<(), String> {
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
pub(super) fn plugin_hooks(stack: &Stack) -> Result<(), String> {
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

//! Maps and parallels on the emulator.

use super::*;

pub(super) fn child_fails(stack: &Stack) -> Result<(), String> {
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

pub(super) fn large_child(stack: &Stack) -> Result<(), String> {
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
    // The summary the code made of a result as large is what is recorded.
    check(
        context_result(&events, "summarized") == Some("307200 bytes of s"),
        || {
            format!(
                "summarized recorded {:?}",
                context_result(&events, "summarized")
            )
        },
    )?;
    expect_invocations(&events, 2)
}

pub(super) fn map_basic(stack: &Stack) -> Result<(), String> {
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

pub(super) fn empty_map(stack: &Stack) -> Result<(), String> {
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

pub(super) fn min_successful(stack: &Stack) -> Result<(), String> {
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

/// The result the batch `name` recorded, and its items' statuses.
fn recorded_batch(events: &[Value], name: &str) -> Result<(Value, Vec<String>), String> {
    let recorded: Value = serde_json::from_str(context_result(events, name).unwrap_or(""))
        .map_err(|e| format!("the {name} result is not JSON: {e}"))?;
    let statuses = recorded["all"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["status"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Ok((recorded, statuses))
}

pub(super) fn should_complete(stack: &Stack) -> Result<(), String> {
    let (execution, events) = concurrency(stack, "should-complete")?;
    succeeded_with(&execution, "\"CUSTOM_COMPLETION_FAILED FAILED total=2\"")?;
    let (recorded, statuses) = recorded_batch(&events, "quorum")?;
    check(
        statuses == ["SUCCEEDED", "FAILED"]
            && recorded["completionReason"] == "CUSTOM_COMPLETION_FAILED",
        || format!("the map recorded {recorded}"),
    )?;
    position(&events, "ContextSucceeded", "map-item-0", "quorum")?;
    position(&events, "ContextFailed", "map-item-1", "quorum")?;
    let t = tree(&events);
    check(
        !t.iter().any(|e| e.1 == "map-item-2" || e.1 == "map-item-3"),
        || format!("items 2 and 3 never start: {t:?}"),
    )?;
    // The map itself succeeds: its result says how the batch ended.
    position(&events, "ContextSucceeded", "quorum", "")?;
    expect_invocations(&events, 1)
}

pub(super) fn tolerated_failures(stack: &Stack) -> Result<(), String> {
    let (execution, events) = concurrency(stack, "tolerated-failures")?;
    succeeded_with(
        &execution,
        "\"FAILURE_TOLERANCE_EXCEEDED FAILED total=2 Failed,Failed\"",
    )?;
    // The recorded result holds the two branches that started, as AWS's
    // SDKs record it.
    let (recorded, statuses) = recorded_batch(&events, "fragile")?;
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

pub(super) fn wait_in_branch(stack: &Stack) -> Result<(), String> {
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

pub(super) fn parallel_in_map(stack: &Stack) -> Result<(), String> {
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

pub(super) fn index_order(stack: &Stack) -> Result<(), String> {
    let (execution, events) = concurrency(stack, "index-order")?;
    succeeded_with(&execution, "\"[0, 1, 2]\"")?;
    // Item 2 finished first, item 0 last; the result is in index order.
    let done = |i: usize| position(&events, "StepSucceeded", "work", &format!("map-item-{i}"));
    check(done(2)? < done(1)? && done(1)? < done(0)?, || {
        format!("completion order: {:?}", tree(&events))
    })
}

pub(super) fn large_batch(stack: &Stack) -> Result<(), String> {
    let (execution, events) = concurrency(stack, "large-batch")?;
    succeeded_with(&execution, "\"409600 bytes\"")?;
    let summary: Value = serde_json::from_str(context_result(&events, "big").unwrap_or(""))
        .map_err(|e| format!("the summary is not JSON: {e}"))?;
    check(
        summary["type"] == "MapResult"
            && summary["totalCount"] == 4
            && summary["successCount"] == 4
            && summary["completionReason"] == "ALL_COMPLETED"
            && summary["summary"] == "4 chunks",
        || format!("big recorded {summary}"),
    )?;
    let chunks = events
        .iter()
        .filter(|e| e["Name"] == "chunk" && e["EventType"] == "StepSucceeded")
        .count();
    check(chunks == 4, || format!("{chunks} chunks recorded"))?;
    expect_invocations(&events, 2)
}

pub(super) fn one_at_a_time(stack: &Stack) -> Result<(), String> {
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

pub(super) fn named_parallel(stack: &Stack) -> Result<(), String> {
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

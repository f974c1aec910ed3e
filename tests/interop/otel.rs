//! OpenTelemetry spans exported over OTLP from functions on the emulator.

use super::*;

/// The OTLP receiver the OpenTelemetry functions export to (started before
/// the stack, whose functions get its endpoint).
pub(super) static OTLP: std::sync::OnceLock<durable_yield_tests::otlp::OtlpReceiver> =
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
pub(super) fn otel(stack: &Stack, function: &str) -> Result<(), String> {
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

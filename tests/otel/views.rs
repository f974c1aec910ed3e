//! The two views: span trees, attributes, trace headers, derived ids.

use super::*;

/// AWS's two OTel plugin factories declare one exclusive group, and its
/// SDK refuses the second at cold start: a second `OtelPlugin` (either
/// view) is refused at registration, on the local runner and on the Lambda
/// function, and the one registered first writes the spans alone.
#[tokio::test]
async fn a_function_shows_one_view_a_second_otel_plugin_is_refused() {
    // As AWS's Python plugin 2.0.0 declares it on both factories.
    assert_eq!(
        durable_yield::plugin::OTEL_VIEW_GROUP,
        "aws-durable-execution-otel-view"
    );
    let (provider, exporter) = collecting();
    let (other, other_exporter) = collecting();
    let mut runner = LocalRunner::new();
    runner
        .try_plugin(OtelPlugin::from_provider(&provider).view(OtelView::Execution))
        .expect("the first view");
    let expected = [
        (
            OtelView::Invocation,
            "plugins durable_yield::otel::OtelPlugin (execution view) and \
             durable_yield::otel::OtelPlugin (invocation view) are mutually exclusive \
             (exclusive group 'aws-durable-execution-otel-view'): register only one \
             plugin of this group",
        ),
        (
            OtelView::Execution,
            "plugin durable_yield::otel::OtelPlugin (execution view) is registered more \
             than once in exclusive group 'aws-durable-execution-otel-view': register it \
             only once",
        ),
    ];
    for (view, message) in expected {
        let Err(refused) = runner.try_plugin(OtelPlugin::from_provider(&other).view(view)) else {
            panic!("a second OtelPlugin is refused");
        };
        assert_eq!(refused.group(), "aws-durable-execution-otel-view");
        assert_eq!(
            refused.registered(),
            "durable_yield::otel::OtelPlugin (execution view)"
        );
        assert_eq!(refused.to_string(), message);
    }
    let run = runner.run(&retry_wait_step, &()).await.unwrap();
    assert_eq!(run.result, Some(3));
    let spans = Spans(exporter.get_finished_spans().unwrap());
    // The execution view: one `Workflow` span, one span per operation.
    assert_eq!(spans.named("Workflow").len(), 1);
    assert!(other_exporter.get_finished_spans().unwrap().is_empty());

    let (mut function, _) = approval_function(&provider, OtelView::Invocation);
    let Err(refused) =
        function.try_plugin(OtelPlugin::from_provider(&other).view(OtelView::Execution))
    else {
        panic!("a second OtelPlugin is refused on Lambda too");
    };
    assert_eq!(
        refused.to_string(),
        "plugins durable_yield::otel::OtelPlugin (invocation view) and \
         durable_yield::otel::OtelPlugin (execution view) are mutually exclusive \
         (exclusive group 'aws-durable-execution-otel-view'): register only one plugin \
         of this group"
    );
}

// -------------------------------------------- a retry, a wait, a step

/// A step retried once (its first attempt fails), a wait, a step.
pub(super) async fn retry_wait_step(mut wf: Workflow, _: ()) -> Result<u32, StepError> {
    let a: u32 = wf
        .step_with(
            StepConfig::named("charge").retry(FixedDelay::new(Duration::from_secs(3), 3)),
            |ctx| async move {
                if ctx.attempt() == 1 {
                    Err(StepFailure::new("Declined", "try again"))
                } else {
                    Ok(1)
                }
            },
        )
        .await?;
    wf.wait("cool-off", Duration::from_secs(60)).await;
    let b: u32 = wf.step("ship", |_| async { Ok(2) }).await?;
    Ok(a + b)
}

/// otel-invocation-2 and -3: spans across invocations, in the invocation
/// view.
#[tokio::test]
async fn the_invocation_view_across_invocations() {
    let (spans, run) = traced(LocalRunner::new(), &retry_wait_step, OtelView::Invocation).await;
    assert_eq!(run.result, Some(3));
    // The first attempt fails (retry in 3 s); the second succeeds and the
    // wait starts; the wait is over and `ship` runs.
    assert_eq!(run.invocations, 3);
    spans.check_common(&run.arn, OtelView::Invocation);

    let workflow = spans.one("Workflow");
    assert_eq!(text(workflow, "durable.execution.status"), "SUCCEEDED");
    assert_eq!(workflow.status, Status::Ok);
    let invocations = spans.named("Invocation");
    let seen: Vec<(String, String)> = invocations
        .iter()
        .map(|s| {
            (
                text(s, "durable.invocation.first"),
                text(s, "durable.invocation.status"),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("true".into(), "PENDING".into()),
            ("false".into(), "PENDING".into()),
            ("false".into(), "SUCCEEDED".into()),
        ]
    );
    assert!(invocations.iter().all(|s| s.status == Status::Ok));
    let invocation_of = |span: &SpanData| {
        invocations
            .iter()
            .position(|i| i.span_context.span_id() == span.parent_span_id)
    };

    // `charge`: STARTED in invocation 1 (no attempt number, status
    // unset), SUCCEEDED in invocation 2 after attempt 2.
    let started = spans.with_status("charge", "STARTED");
    let succeeded = spans.with_status("charge", "SUCCEEDED");
    assert_eq!(invocation_of(started), Some(0));
    assert_eq!(invocation_of(succeeded), Some(1));
    assert_eq!(keys(started), sorted(OPERATION));
    assert_eq!(keys(succeeded), sorted(FINISHED_STEP));
    assert_eq!(started.status, Status::Unset);
    assert_eq!(succeeded.status, Status::Ok);
    assert_eq!(text(succeeded, "durable.attempt.number"), "2");
    assert_eq!(text(started, "durable.operation.type"), "STEP");
    assert_eq!(text(started, "durable.operation.subtype"), "Step");
    let id = text(started, "durable.operation.id");
    assert_eq!(text(succeeded, "durable.operation.id"), id);
    assert!(started.end_time <= succeeded.start_time, "before");
    // The first span has the derived id; the continuation a fresh one.
    assert_ne!(
        started.span_context.span_id(),
        succeeded.span_context.span_id()
    );

    // Its attempts, under the operation span of their invocation.
    let first = spans.one("charge attempt 1");
    let second = spans.one("charge attempt 2");
    assert_eq!(first.parent_span_id, started.span_context.span_id());
    assert_eq!(second.parent_span_id, succeeded.span_context.span_id());
    assert_eq!(keys(first), sorted(ATTEMPT));
    assert_eq!(keys(second), sorted(ATTEMPT));
    assert_eq!(text(first, "durable.attempt.outcome"), "FAILED");
    assert!(matches!(first.status, Status::Error { .. }));
    assert_eq!(text(second, "durable.attempt.outcome"), "SUCCEEDED");
    assert_eq!(second.status, Status::Ok);
    assert!(first.end_time <= second.start_time);

    // The wait: STARTED in invocation 2, SUCCEEDED in invocation 3.
    let wait_started = spans.with_status("cool-off", "STARTED");
    let wait_over = spans.with_status("cool-off", "SUCCEEDED");
    assert_eq!(
        (invocation_of(wait_started), invocation_of(wait_over)),
        (Some(1), Some(2))
    );
    assert_eq!(keys(wait_started), sorted(OPERATION));
    assert_eq!(keys(wait_over), sorted(OPERATION));
    assert_eq!(text(wait_over, "durable.operation.type"), "WAIT");
    assert_eq!(text(wait_over, "durable.operation.subtype"), "Wait");
    assert!(wait_started.end_time <= wait_over.start_time);

    // `ship` in invocation 3, after the wait.
    let ship = spans.with_status("ship", "SUCCEEDED");
    assert_eq!(invocation_of(ship), Some(2));
    assert_eq!(keys(ship), sorted(FINISHED_STEP));
    assert_eq!(text(ship, "durable.attempt.number"), "1");
    assert!(wait_over.end_time <= ship.start_time);

    // Children lie within their parents (Workflow included).
    for s in &spans.0 {
        // (The synthetic root is a zero-length anchor: the Workflow span
        // outlasts it, as AWS's requirements allow.)
        if let Some(parent) = spans.parent(s).filter(|p| p.name != "DurableExecutionRoot") {
            assert!(
                parent.start_time <= s.start_time && s.end_time <= parent.end_time,
                "{} outside {}",
                s.name,
                parent.name
            );
        }
    }
    // Nothing else (the synthetic root once per invocation).
    assert_eq!(spans.0.len(), 3 + 1 + 3 + 2 + 2 + 2 + 1 + 1);
}

/// With Lambda's trace header (the local runner passes one per invocation
/// when asked, as Lambda does with tracing on): the execution is on the
/// header's trace, `Workflow` is parented to the segment the header names
/// (Lambda's, not exported here) and no synthetic root is written; a span
/// continuing an operation an earlier invocation began links to its first
/// span, then to `Workflow` (what AWS's otel-invocation-2 and -3 ask).
#[tokio::test]
async fn a_trace_header_parents_the_workflow_and_continuations_link_their_first_span() {
    let runner = LocalRunner::new().lambda_trace_headers();
    let (spans, run) = traced(runner, &retry_wait_step, OtelView::Invocation).await;
    assert_eq!(run.invocations, 3);
    assert!(spans.named("DurableExecutionRoot").is_empty());
    let trace = spans.0[0].span_context.trace_id();
    for s in &spans.0 {
        assert_eq!(s.span_context.trace_id(), trace, "one trace: {}", s.name);
        assert_ne!(s.parent_span_id, SpanId::INVALID, "{} has a parent", s.name);
    }
    let workflow = spans.one("Workflow");
    assert!(spans.parent(workflow).is_none(), "the segment is Lambda's");
    // Each `Invocation` goes under its own invocation's segment (the
    // header's Parent, new per invocation); `Workflow`, written by the
    // last invocation, under the last one's.
    let segments: Vec<SpanId> = spans
        .named("Invocation")
        .iter()
        .map(|s| s.parent_span_id)
        .collect();
    assert_eq!(segments.len(), 3);
    assert!(
        segments
            .iter()
            .all(|p| spans.0.iter().all(|s| s.span_context.span_id() != *p))
    );
    assert_eq!(
        std::collections::HashSet::<&SpanId>::from_iter(&segments).len(),
        3,
        "{segments:?}"
    );
    assert_eq!(segments.last(), Some(&workflow.parent_span_id));
    let workflow_id = workflow.span_context.span_id();
    let links = |s: &SpanData| -> Vec<SpanId> {
        s.links
            .links
            .iter()
            .map(|l| l.span_context.span_id())
            .collect()
    };
    // `cool-off` began in invocation 2 and is over in invocation 3;
    // `charge` began in invocation 1 and succeeded in invocation 2.
    for name in ["cool-off", "charge"] {
        let first = spans.with_status(name, "STARTED");
        let later = spans.with_status(name, "SUCCEEDED");
        assert_eq!(links(first), [workflow_id], "{name}");
        assert_eq!(
            links(later),
            [first.span_context.span_id(), workflow_id],
            "{name}"
        );
        assert_ne!(later.span_context.span_id(), first.span_context.span_id());
    }
    // Spans of operations that begin and end in one invocation link to
    // `Workflow` only.
    assert_eq!(links(spans.with_status("ship", "SUCCEEDED")), [workflow_id]);
}

/// The span current around an invocation (a Lambda instrumentation's
/// invocation span) parents its `Invocation` span when it is on the
/// execution's trace, as in AWS's plugins; a span on another trace does
/// not, and `Invocation` stays under the execution's ancestor.
#[tokio::test(flavor = "current_thread")]
async fn an_invocation_goes_under_the_span_around_it_when_on_the_executions_trace() {
    use durable_yield::ExecutionStatus;
    use opentelemetry::Context;
    use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceState};
    let around = SpanId::from_bytes([7; 8]);
    for (same_trace, view) in [
        (true, OtelView::Invocation),
        (true, OtelView::Execution),
        (false, OtelView::Invocation),
    ] {
        let (provider, exporter) = collecting();
        let execution = LocalRunner::new()
            .plugin(OtelPlugin::from_provider(&provider).view(view))
            .start(&())
            .unwrap();
        // The first invocation alone: its spans tell the execution's trace.
        execution.invoke(&retry_wait_step).await;
        let trace = exporter.get_finished_spans().unwrap()[0]
            .span_context
            .trace_id();
        let guard = Context::new()
            .with_remote_span_context(SpanContext::new(
                if same_trace {
                    trace
                } else {
                    TraceId::from_bytes([9; 16])
                },
                around,
                TraceFlags::SAMPLED,
                true,
                TraceState::default(),
            ))
            .attach();
        while execution.status() == ExecutionStatus::Running {
            execution.advance_time();
            execution.invoke(&retry_wait_step).await;
        }
        drop(guard);
        assert_eq!(execution.invocations(), 3);
        let spans = Spans(exporter.get_finished_spans().unwrap());
        let root = spans.named("DurableExecutionRoot")[0]
            .span_context
            .span_id();
        let parents: Vec<SpanId> = spans
            .named("Invocation")
            .iter()
            .map(|s| s.parent_span_id)
            .collect();
        let later = if same_trace { around } else { root };
        assert_eq!(
            parents,
            [root, later, later],
            "{view:?}, same trace: {same_trace}"
        );
        // `Workflow` stays under the execution's ancestor either way.
        assert_eq!(spans.one("Workflow").parent_span_id, root);
        assert!(spans.0.iter().all(|s| s.span_context.trace_id() == trace));
    }
}

/// A durable function a local execution invokes runs with the runner's
/// plugins, and with trace headers on, on the invoking execution's trace
/// (its START carried the header): both executions' spans, one trace, each
/// `Workflow` under its own invocation segment.
#[tokio::test]
async fn an_invoked_local_function_is_traced_on_the_invokers_trace() {
    async fn target(_: Workflow, input: serde_json::Value) -> Result<serde_json::Value, StepError> {
        Ok(input)
    }
    async fn invoking(
        mut wf: Workflow,
        _: (),
    ) -> Result<serde_json::Value, durable_yield::InvokeError> {
        wf.invoke("target", &serde_json::json!("ping")).await
    }
    let runner = LocalRunner::new()
        .lambda_trace_headers()
        .register_workflow("target", target);
    let (spans, run) = traced(runner, &invoking, OtelView::Invocation).await;
    let target_arn = run.invoked[0]
        .run
        .as_ref()
        .map(|r| r.arn.clone())
        .unwrap_or_default();
    assert_ne!(target_arn, run.arn);
    let workflows = spans.named("Workflow");
    let arns: BTreeSet<String> = workflows
        .iter()
        .map(|w| text(w, "durable.execution.arn"))
        .collect();
    assert_eq!(arns, BTreeSet::from([run.arn.clone(), target_arn.clone()]));
    let trace = workflows[0].span_context.trace_id();
    assert!(spans.0.iter().all(|s| s.span_context.trace_id() == trace));
    assert!(
        workflows
            .iter()
            .all(|w| spans.parent(w).is_none() && w.parent_span_id != SpanId::INVALID)
    );
    // The target's invocation lies between the invoker's two.
    let invocations = spans.named("Invocation");
    let of = |arn: &str| -> Vec<&SpanData> {
        invocations
            .iter()
            .copied()
            .filter(|s| text(s, "durable.execution.arn") == arn)
            .collect()
    };
    let (mine, theirs) = (of(&run.arn), of(&target_arn));
    assert_eq!((mine.len(), theirs.len()), (2, 1));
    assert!(mine[0].end_time <= theirs[0].start_time && theirs[0].end_time <= mine[1].start_time);
}

// ---------------------------- contexts, a parallel, a map, a callback

/// A child context, a parallel of two branches, a map of two items (each
/// a step), a retried step, and a wait-for-callback answered 30 s later.
pub(super) async fn tree(mut wf: Workflow, _: ()) -> Result<String, StepError> {
    let child: u32 = wf
        .child("otel-child", |mut wf| async move {
            wf.step("otel-child-step", |_| async { Ok(1u32) }).await
        })
        .await?;
    let branches = vec![
        Branch::named("branch-a", |mut wf: Workflow| async move {
            wf.step("step-a", |_| async { Ok(2u32) }).await
        }),
        Branch::named("branch-b", |mut wf: Workflow| async move {
            wf.step("step-b", |_| async { Ok(3u32) }).await
        }),
    ];
    let parallel = wf
        .parallel("otel-parallel", branches)
        .await?
        .into_values()?;
    let map = wf
        .map("otel-map", vec![4u32, 5], |mut wf, x, _| async move {
            wf.step("map-step", move |_| async move { Ok(x) }).await
        })
        .await?
        .into_values()?;
    let retried: u32 = wf
        .step_with(
            StepConfig::named("otel-retry").retry(FixedDelay::new(Duration::from_secs(1), 2)),
            |ctx| async move {
                if ctx.attempt() == 1 {
                    Err(StepFailure::new("Flaky", "first attempt fails"))
                } else {
                    Ok(6)
                }
            },
        )
        .await?;
    let answer: String = wf
        .wait_for_callback_with(
            WaitForCallbackConfig::named("otel-callback").timeout(Duration::from_secs(3600)),
            |_, _| async { Ok(()) },
        )
        .await?;
    let total = child + parallel.iter().sum::<u32>() + map.iter().sum::<u32>() + retried;
    Ok(format!("{total} {answer}"))
}

pub(super) fn answered() -> LocalRunner {
    LocalRunner::new().answer_callback(
        "otel-callback create callback id",
        CallbackAnswer::raw_success("\"yes\"").after(Duration::from_secs(30)),
    )
}

/// otel-invocation-5, -6, -7, -10: every operation span under its
/// context's span, attempts under their operation, across invocations.
#[tokio::test]
async fn the_invocation_view_nests_operations_under_their_contexts() {
    let (spans, run) = traced(answered(), &tree, OtelView::Invocation).await;
    assert_eq!(run.result.as_deref(), Some("21 yes"), "{:?}", run.error);
    // The retry, then the callback.
    assert_eq!(run.invocations, 3);
    spans.check_common(&run.arn, OtelView::Invocation);

    let parent_of = |name: &str, status: &str| {
        let span = spans.with_status(name, status);
        spans.parent_name(span)
    };
    assert_eq!(parent_of("otel-child", "SUCCEEDED"), "Invocation");
    assert_eq!(parent_of("otel-child-step", "SUCCEEDED"), "otel-child");
    assert_eq!(parent_of("otel-parallel", "SUCCEEDED"), "Invocation");
    assert_eq!(parent_of("branch-a", "SUCCEEDED"), "otel-parallel");
    assert_eq!(parent_of("branch-b", "SUCCEEDED"), "otel-parallel");
    assert_eq!(parent_of("step-a", "SUCCEEDED"), "branch-a");
    assert_eq!(parent_of("step-b", "SUCCEEDED"), "branch-b");
    assert_eq!(parent_of("otel-map", "SUCCEEDED"), "Invocation");
    let steps = spans.named("map-step");
    assert_eq!(steps.len(), 2);
    let mut items = BTreeSet::new();
    for step in &steps {
        let item = spans.parent(step).expect("a map item span");
        assert_eq!(text(item, "durable.operation.subtype"), "MapIteration");
        assert_eq!(spans.parent_name(item), "otel-map");
        items.insert(item.span_context.span_id().to_string());
        assert_eq!(keys(step), sorted(FINISHED_STEP));
        let attempt = spans
            .0
            .iter()
            .find(|a| a.parent_span_id == step.span_context.span_id())
            .expect("its attempt");
        assert_eq!(attempt.name, "map-step attempt 1");
        assert_eq!(keys(attempt), sorted(ATTEMPT));
    }
    assert_eq!(items.len(), 2, "each step under its own item");
    for name in ["otel-child-step", "step-a", "step-b"] {
        let step = spans.with_status(name, "SUCCEEDED");
        let attempt = spans.one(&format!("{name} attempt 1"));
        assert_eq!(attempt.parent_span_id, step.span_context.span_id());
    }
    // Contexts carry no attempt number.
    for name in ["otel-child", "otel-parallel", "branch-a", "otel-map"] {
        let span = spans.with_status(name, "SUCCEEDED");
        assert_eq!(keys(span), sorted(OPERATION), "{name}");
        assert_eq!(text(span, "durable.operation.type"), "CONTEXT");
    }

    // The wait-for-callback: its context STARTED in invocation 2 and
    // SUCCEEDED in invocation 3; the callback likewise, under the
    // context's span of the same invocation; the submitter under the
    // first.
    let waiting = spans.with_status("otel-callback", "STARTED");
    let done = spans.with_status("otel-callback", "SUCCEEDED");
    assert_eq!(
        text(waiting, "durable.operation.subtype"),
        "WaitForCallback"
    );
    assert_eq!(keys(waiting), sorted(OPERATION));
    assert_eq!(keys(done), sorted(OPERATION));
    let callback = "otel-callback create callback id";
    let created = spans.with_status(callback, "STARTED");
    let answered = spans.with_status(callback, "SUCCEEDED");
    assert_eq!(created.parent_span_id, waiting.span_context.span_id());
    assert_eq!(answered.parent_span_id, done.span_context.span_id());
    assert_eq!(text(answered, "durable.operation.type"), "CALLBACK");
    assert_eq!(text(answered, "durable.operation.subtype"), "Callback");
    assert_eq!(keys(answered), sorted(OPERATION));
    assert!(created.end_time <= answered.start_time);
    let submitter = spans.with_status("otel-callback submitter", "SUCCEEDED");
    assert_eq!(submitter.parent_span_id, waiting.span_context.span_id());
    assert_eq!(keys(submitter), sorted(FINISHED_STEP));

    // The retried step: its failed attempt under its STARTED span.
    let retry_started = spans.with_status("otel-retry", "STARTED");
    assert_eq!(keys(retry_started), sorted(OPERATION));
    let failed = spans.one("otel-retry attempt 1");
    assert_eq!(failed.parent_span_id, retry_started.span_context.span_id());
    assert!(matches!(failed.status, Status::Error { .. }));

    for s in &spans.0 {
        // (The synthetic root is a zero-length anchor: the Workflow span
        // outlasts it, as AWS's requirements allow.)
        if let Some(parent) = spans.parent(s).filter(|p| p.name != "DurableExecutionRoot") {
            assert!(
                parent.start_time <= s.start_time && s.end_time <= parent.end_time,
                "{} outside {}",
                s.name,
                parent.name
            );
        }
    }
}

/// otel-execution-1 to -10: one span per operation for the whole
/// execution, under the Workflow span or its context's, linked to the
/// invocation that wrote it; attempts under their operation, inside the
/// invocation they link to.
#[tokio::test]
async fn the_execution_view_has_one_span_per_operation() {
    let (spans, run) = traced(answered(), &tree, OtelView::Execution).await;
    assert_eq!(run.result.as_deref(), Some("21 yes"), "{:?}", run.error);
    spans.check_common(&run.arn, OtelView::Execution);
    assert_eq!(spans.named("Invocation").len(), 3);

    // Every operation recorded has exactly one span, with its recorded
    // status; nothing else is an operation span.
    let operation_spans: Vec<&SpanData> = spans
        .0
        .iter()
        .filter(|s| attr(s, "durable.operation.status").is_some())
        .collect();
    let recorded: Vec<_> = run
        .operations
        .iter()
        .filter(|o| o.op_type != OperationType::Execution)
        .collect();
    assert_eq!(
        operation_spans.len(),
        recorded.len(),
        "{:#?}",
        spans.names()
    );
    for op in &recorded {
        let mine: Vec<&&SpanData> = operation_spans
            .iter()
            .filter(|s| text(s, "durable.operation.id") == op.id.as_str())
            .collect();
        assert_eq!(mine.len(), 1, "{:?}", op.name);
        let span = mine[0];
        assert_eq!(
            text(span, "durable.operation.status"),
            op.status.to_string()
        );
        let expected = if op.op_type == OperationType::Step {
            FINISHED_STEP
        } else {
            OPERATION
        };
        assert_eq!(keys(span), sorted(expected), "{:?}", op.name);
        // Under its context's span, or the Workflow span.
        let parent = spans.parent(span).expect("a parent");
        match op.parent_id {
            Some(p) => assert_eq!(
                text(parent, "durable.operation.id"),
                p.as_str(),
                "{:?} under {}: {:#?}",
                op.name,
                parent.name,
                spans.names()
            ),
            None => assert_eq!(parent.name, "Workflow"),
        }
        // It started and ended when the service recorded it, or earlier:
        // the SDK saw the start before its START was sent.
        let end = UNIX_EPOCH + Duration::from_millis(op.end_timestamp.unwrap() as u64);
        assert!(
            span.end_time <= end + Duration::from_millis(1),
            "{:?}",
            op.name
        );
        assert!(span.start_time <= span.end_time);
    }

    // The callback ended between invocations: its span ends when the
    // service recorded the answer, 30 s after it was created.
    let callback = spans.one("otel-callback create callback id");
    let record = run.operation("otel-callback create callback id").unwrap();
    assert_eq!(
        callback.end_time,
        UNIX_EPOCH + Duration::from_millis(record.end_timestamp.unwrap() as u64)
    );
    assert_eq!(spans.parent_name(callback), "otel-callback");

    // The retried step's attempts were written by two invocations, both
    // under its one span (written by the second).
    let retry = spans.one("otel-retry");
    let attempts = [
        spans.one("otel-retry attempt 1"),
        spans.one("otel-retry attempt 2"),
    ];
    for attempt in attempts {
        assert_eq!(attempt.parent_span_id, retry.span_context.span_id());
        assert_eq!(keys(attempt), sorted(ATTEMPT));
        // Inside the invocation it links to.
        let invocation = spans
            .by_id(attempt.links.links[0].span_context.span_id())
            .unwrap();
        assert!(
            invocation.start_time <= attempt.start_time && attempt.end_time <= invocation.end_time
        );
    }
    assert_ne!(
        attempts[0].links.links[0].span_context.span_id(),
        attempts[1].links.links[0].span_context.span_id(),
        "two invocations"
    );
    assert!(attempts[0].end_time <= attempts[1].start_time);
    assert!(matches!(spans.one("otel-retry").status, Status::Ok));
    // A step's span starts no later than its first attempt.
    assert!(retry.start_time <= attempts[0].start_time);

    // The Workflow span: under the synthetic root, from the execution's
    // start.
    let workflow = spans.one("Workflow");
    assert_eq!(spans.parent_name(workflow), "DurableExecutionRoot");
    assert_eq!(workflow.status, Status::Ok);
    let start = run.operations[0].start_timestamp.unwrap();
    assert_eq!(
        workflow.start_time,
        UNIX_EPOCH + Duration::from_millis(start as u64)
    );
    // The trace id carries the start time in seconds, as X-Ray expects.
    let trace = workflow.span_context.trace_id().to_string();
    assert_eq!(&trace[..8], format!("{:08x}", start / 1000));
}

/// Derived ids depend on the execution only: another execution has other
/// ones; the same invocation handled again (a retried invocation, another
/// process) writes the same trace, Workflow span id and first operation
/// span ids, in either view; without the id generator nothing is derived.
#[tokio::test]
async fn derived_ids_depend_on_the_execution_only() {
    let mut seen = Vec::new();
    for view in [
        OtelView::Invocation,
        OtelView::Execution,
        OtelView::Invocation,
    ] {
        let (provider, exporter) = collecting();
        let (function, _) = approval_function(&provider, view);
        function.handle(envelope(5_000, false)).await.unwrap();
        let spans = Spans(exporter.get_finished_spans().unwrap());
        let workflow = spans.one("Workflow");
        // `after` starts in this invocation: its (first) span has the
        // derived id in both views.
        let after = spans.with_status("after", "SUCCEEDED");
        seen.push((
            workflow.span_context.trace_id(),
            workflow.span_context.span_id(),
            after.span_context.span_id(),
        ));
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");

    let (invocation, run_a) =
        traced(LocalRunner::new(), &retry_wait_step, OtelView::Invocation).await;
    let (execution, run_b) =
        traced(LocalRunner::new(), &retry_wait_step, OtelView::Execution).await;
    assert_ne!(run_a.arn, run_b.arn);
    // Different executions: different traces and Workflow ids.
    let (wa, wb) = (invocation.one("Workflow"), execution.one("Workflow"));
    assert_ne!(wa.span_context.trace_id(), wb.span_context.trace_id());
    assert_ne!(wa.span_context.span_id(), wb.span_context.span_id());
    // Without the id generator, nothing is derived: the Workflow span has
    // an id of its own, not the one its invocations and operations point
    // to.
    let exporter = InMemorySpanExporter::default();
    let plain = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    LocalRunner::new()
        .plugin(OtelPlugin::from_provider(&plain))
        .run(&retry_wait_step, &())
        .await
        .unwrap();
    let spans = Spans(exporter.get_finished_spans().unwrap());
    let workflow = spans.one("Workflow");
    let root = &spans.named("DurableExecutionRoot")[0];
    let invocation = &spans.named("Invocation")[0];
    assert_ne!(
        invocation.parent_span_id,
        root.span_context.span_id(),
        "the Invocation's parent is the derived root id, which the root span lacks"
    );
    let ship = spans.with_status("ship", "SUCCEEDED");
    let linked: Vec<SpanId> = ship
        .links
        .links
        .iter()
        .map(|l| l.span_context.span_id())
        .collect();
    assert!(!linked.contains(&workflow.span_context.span_id()));
}

//! Failed operations, condition checks, virtual contexts and executions
//! that never end.

use super::*;

/// A step that fails (no retry) and is handled, a child context that
/// fails, a parallel whose one branch fails and a map whose one item fails
/// (failures tolerated), then the execution fails.
pub(super) async fn failures(mut wf: Workflow, _: ()) -> Result<u32, StepError> {
    let handled: Result<u32, StepError> = wf
        .step_with(
            StepConfig::named("otel-handled-failure").retry(durable_yield::retry::NoRetry),
            |_| async { Err(StepFailure::new("Declined", "no funds")) },
        )
        .await;
    assert!(handled.is_err());
    let child: Result<u32, StepError> = wf
        .child("otel-failed-child", |_wf| async move {
            Err::<u32, _>("the child failed")
        })
        .await;
    assert!(child.is_err());
    let branches = vec![
        Branch::named("otel-failed-branch", |_wf: Workflow| async move {
            Err::<u32, _>("the branch failed")
        }),
        Branch::named("otel-good-branch", |_wf: Workflow| async move {
            Ok::<_, &str>(1u32)
        }),
    ];
    let parallel = wf
        .parallel_with(
            durable_yield::ParallelConfig::named("otel-failed-parallel")
                .completion(durable_yield::CompletionPolicy::all()),
            branches,
        )
        .await?;
    assert_eq!(parallel.failure_count(), 1);
    let map = wf
        .map_with(
            durable_yield::MapConfig::named("otel-failed-map")
                .completion(durable_yield::CompletionPolicy::all()),
            vec![0u32, 1],
            |_wf, x, _| async move {
                if x == 0 {
                    Err("the item failed")
                } else {
                    Ok(x)
                }
            },
        )
        .await?;
    assert_eq!(map.failure_count(), 1);
    // The execution fails with a step that fails.
    wf.step_with(
        StepConfig::named("otel-fatal").retry(durable_yield::retry::NoRetry),
        |_| async { Err::<u32, _>(StepFailure::new("Fatal", "the workflow gives up")) },
    )
    .await
}

/// otel-invocation-4, -8, -12, -13, -14, -19 and their execution-view
/// twins: failed operations are ERROR with their status, the batches
/// around failed items SUCCEEDED and OK, the failed invocation and the
/// Workflow ERROR with `FAILED`.
#[tokio::test]
async fn failed_operations_and_executions_are_errors_in_both_views() {
    for view in [OtelView::Invocation, OtelView::Execution] {
        let (spans, run) = traced::<_, u32>(LocalRunner::new(), &failures, view).await;
        assert_eq!(run.status, durable_yield::ExecutionStatus::Failed);
        assert_eq!(run.invocations, 1);
        spans.check_common(&run.arn, view);
        let workflow = spans.one("Workflow");
        assert_eq!(text(workflow, "durable.execution.status"), "FAILED");
        assert!(matches!(workflow.status, Status::Error { .. }), "{view:?}");
        let invocation = spans.one("Invocation");
        assert_eq!(text(invocation, "durable.invocation.status"), "FAILED");
        assert!(matches!(invocation.status, Status::Error { .. }));

        let step = spans.with_status("otel-handled-failure", "FAILED");
        assert_eq!(keys(step), sorted(FINISHED_STEP));
        assert_eq!(text(step, "durable.attempt.number"), "1");
        assert!(
            matches!(step.status, Status::Error { ref description } if description == "no funds")
        );
        let attempt = spans.one("otel-handled-failure attempt 1");
        assert_eq!(text(attempt, "durable.attempt.outcome"), "FAILED");
        assert!(matches!(attempt.status, Status::Error { .. }));
        assert_eq!(attempt.parent_span_id, step.span_context.span_id());

        let child = spans.with_status("otel-failed-child", "FAILED");
        assert_eq!(keys(child), sorted(OPERATION));
        assert_eq!(
            text(child, "durable.operation.subtype"),
            "RunInChildContext"
        );
        assert!(matches!(child.status, Status::Error { .. }));

        for (batch, item, sub_type) in [
            (
                "otel-failed-parallel",
                "otel-failed-branch",
                "ParallelBranch",
            ),
            ("otel-failed-map", "map-item-0", "MapIteration"),
        ] {
            let batch = spans.with_status(batch, "SUCCEEDED");
            assert_eq!(batch.status, Status::Ok);
            assert_eq!(keys(batch), sorted(OPERATION));
            let item = spans.with_status(item, "FAILED");
            assert_eq!(text(item, "durable.operation.subtype"), sub_type);
            assert_eq!(keys(item), sorted(OPERATION));
            assert!(matches!(item.status, Status::Error { .. }));
            assert_eq!(item.parent_span_id, batch.span_context.span_id());
        }
    }
}

// ---------------------------------------------------- wait-for-condition

/// A condition met at its second check, a second after the first.
pub(super) async fn condition(mut wf: Workflow, _: ()) -> Result<u32, StepError> {
    let strategy = durable_yield::retry::FixedDelay::new(Duration::from_secs(1), 5);
    let config = durable_yield::ConditionConfig::named("otel-condition").strategy(strategy);
    wf.wait_for_condition_with(config, 0u32, |_, n| async move {
        Ok(if n + 1 >= 2 {
            durable_yield::Condition::Met(n + 1)
        } else {
            durable_yield::Condition::NotMet(n + 1)
        })
    })
    .await
}

/// otel-invocation-9 and otel-execution-9: a condition polled across two
/// invocations; its checks are attempt spans of subtype
/// `WaitForCondition`, an unmet check SUCCEEDED too.
#[tokio::test]
async fn condition_checks_are_attempts_across_invocations() {
    let (spans, run) = traced(LocalRunner::new(), &condition, OtelView::Invocation).await;
    assert_eq!(run.result, Some(2));
    assert_eq!(run.invocations, 2);
    spans.check_common(&run.arn, OtelView::Invocation);
    let started = spans.with_status("otel-condition", "STARTED");
    assert_eq!(keys(started), sorted(OPERATION));
    assert_eq!(started.status, Status::Unset);
    assert_eq!(text(started, "durable.operation.type"), "STEP");
    assert_eq!(
        text(started, "durable.operation.subtype"),
        "WaitForCondition"
    );
    let met = spans.with_status("otel-condition", "SUCCEEDED");
    assert_eq!(keys(met), sorted(FINISHED_STEP));
    assert_eq!(text(met, "durable.attempt.number"), "2");
    for (n, parent) in [(1, started), (2, met)] {
        let check = spans.one(&format!("otel-condition attempt {n}"));
        assert_eq!(keys(check), sorted(ATTEMPT));
        assert_eq!(text(check, "durable.operation.subtype"), "WaitForCondition");
        assert_eq!(text(check, "durable.attempt.outcome"), "SUCCEEDED");
        assert_eq!(check.status, Status::Ok);
        assert_eq!(check.parent_span_id, parent.span_context.span_id());
    }

    let (spans, run) = traced(LocalRunner::new(), &condition, OtelView::Execution).await;
    spans.check_common(&run.arn, OtelView::Execution);
    let op = spans.one("otel-condition");
    assert_eq!(text(op, "durable.operation.status"), "SUCCEEDED");
    for n in [1, 2] {
        let check = spans.one(&format!("otel-condition attempt {n}"));
        assert_eq!(check.parent_span_id, op.span_context.span_id());
    }
}

// ------------------- a virtual context, a failed callback, an open wait

/// otel-invocation-20 and otel-execution-20: a virtual child context,
/// which records nothing, still has its span (under Invocation, or under
/// Workflow in the execution view), and its step under the context around
/// it (the step records that one as its parent).
#[tokio::test]
async fn a_virtual_context_has_a_span_in_both_views() {
    let workflow = |mut wf: Workflow, _: ()| async move {
        wf.child_with(
            durable_yield::ChildConfig::named("otel-virtual-context").virtual_context(),
            |mut wf| async move { wf.step("inside", |_| async { Ok(1u32) }).await },
        )
        .await
    };
    for (view, top) in [
        (OtelView::Invocation, "Invocation"),
        (OtelView::Execution, "Workflow"),
    ] {
        let (spans, run) = traced(LocalRunner::new(), &workflow, view).await;
        assert_eq!(run.result, Some(1));
        assert!(
            run.operation("otel-virtual-context").is_none(),
            "not recorded"
        );
        spans.check_common(&run.arn, view);
        let context = spans.one("otel-virtual-context");
        assert_eq!(text(context, "durable.operation.type"), "CONTEXT");
        assert_eq!(
            text(context, "durable.operation.subtype"),
            "RunInChildContext"
        );
        assert_eq!(
            text(context, "durable.operation.name"),
            "otel-virtual-context"
        );
        assert_eq!(context.status, Status::Ok);
        assert_eq!(spans.parent_name(context), top, "{view:?}");
        let step = spans.with_status("inside", "SUCCEEDED");
        assert_eq!(spans.parent_name(step), top, "{view:?}");
    }
}

/// otel-invocation-17 and otel-execution-17: a wait-for-callback whose
/// callback fails: its context and callback end FAILED and ERROR in the
/// invocation that sees the answer, which fails, and so does Workflow.
#[tokio::test]
async fn a_failed_callback_is_an_error_in_both_views() {
    let workflow = |mut wf: Workflow, _: ()| async move {
        wf.wait_for_callback::<String, _, _>("otel-failed-callback", |_, _| async { Ok(()) })
            .await
    };
    for view in [OtelView::Invocation, OtelView::Execution] {
        let runner = LocalRunner::new().answer_callback(
            "otel-failed-callback create callback id",
            CallbackAnswer::failure(durable_yield::model::ErrorObject::new(
                "Rejected",
                "the approver said no",
            ))
            .after(Duration::from_secs(30)),
        );
        let (spans, run) = traced::<_, String>(runner, &workflow, view).await;
        assert_eq!(run.status, durable_yield::ExecutionStatus::Failed);
        assert_eq!(run.invocations, 2);
        spans.check_common(&run.arn, view);
        assert!(matches!(spans.one("Workflow").status, Status::Error { .. }));
        let last = spans.named("Invocation")[1];
        assert_eq!(text(last, "durable.invocation.status"), "FAILED");
        assert!(matches!(last.status, Status::Error { .. }));
        let context = spans.with_status("otel-failed-callback", "FAILED");
        let callback = spans.with_status("otel-failed-callback create callback id", "FAILED");
        for span in [context, callback] {
            assert_eq!(keys(span), sorted(OPERATION), "{}", span.name);
            assert!(matches!(span.status, Status::Error { .. }), "{}", span.name);
        }
        assert_eq!(callback.parent_span_id, context.span_context.span_id());
        assert_eq!(text(callback, "durable.operation.type"), "CALLBACK");
    }
}

/// otel-invocation-15 and otel-execution-15: an execution that never ends
/// (it times out during a wait) has no Workflow span; its invocation is
/// PENDING and, per invocation, the wait's span says STARTED, status unset.
#[tokio::test]
async fn an_execution_that_never_ends_has_no_workflow_span() {
    let workflow = |mut wf: Workflow, _: ()| async move {
        wf.wait("otel-interrupted-wait", Duration::from_secs(3600))
            .await;
        Ok::<_, StepError>(())
    };
    for view in [OtelView::Invocation, OtelView::Execution] {
        let (provider, exporter) = collecting();
        let execution = LocalRunner::new()
            .plugin(OtelPlugin::from_provider(&provider).view(view))
            .start(&())
            .unwrap();
        execution.invoke(&workflow).await.unwrap();
        let spans = Spans(exporter.get_finished_spans().unwrap());
        assert!(spans.named("Workflow").is_empty(), "{view:?}");
        let invocation = spans.one("Invocation");
        assert_eq!(text(invocation, "durable.invocation.status"), "PENDING");
        assert_eq!(invocation.status, Status::Ok);
        match view {
            OtelView::Invocation => {
                let wait = spans.with_status("otel-interrupted-wait", "STARTED");
                assert_eq!(keys(wait), sorted(OPERATION));
                assert_eq!(wait.status, Status::Unset);
                assert_eq!(wait.parent_span_id, invocation.span_context.span_id());
                // The synthetic root, Invocation, the wait.
                assert_eq!(spans.0.len(), 3);
            }
            _ => assert_eq!(spans.0.len(), 2, "an open operation has no span yet"),
        }
    }
}

//! Bad input, panics and rejected checkpoints end the execution with a
//! typed error; nothing panics out of the runner.

use std::time::Duration;

use durable_yield::model::OperationStatus as S;
use durable_yield::{ExecutionStatus, LocalRunner, StepError, Workflow};
use serde::Deserialize;

#[tokio::test]
async fn a_panicking_step_body_is_a_failed_step() {
    let workflow = |mut wf: Workflow, _: ()| async move {
        let r: Result<u32, StepError> = wf
            .step("boom", |_| async {
                if true {
                    panic!("kaboom");
                }
                Ok(1)
            })
            .await;
        let e = r.unwrap_err();
        Ok::<_, StepError>(format!("{:?}: {:?}", e.error_type(), e.message()))
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(
        run.result.as_deref(),
        Some("Some(\"StepPanicked\"): Some(\"the step body panicked: kaboom\")")
    );
    assert_eq!(run.operation("boom").unwrap().status, S::Failed);
}

#[tokio::test]
async fn a_panicking_workflow_fails_the_execution() {
    let workflow = |mut wf: Workflow, _: ()| async move {
        let v: u32 = wf.step("one", |_| async { Ok(1) }).await?;
        if v == 1 {
            panic!("workflow bug");
        }
        Ok::<_, StepError>(())
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    let e = run.error.unwrap();
    assert_eq!(e.error_type.as_deref(), Some("WorkflowPanicked"));
    let m = e.error_message.unwrap();
    assert!(m.contains("workflow bug") && m.contains("\"one\""), "{m}");
}

#[derive(Debug, Deserialize, serde::Serialize)]
struct Order {
    id: u64,
}

#[tokio::test]
async fn undecodable_input_fails_the_execution() {
    let workflow = |_wf: Workflow, order: Order| async move { Ok::<_, StepError>(order.id) };
    let execution = LocalRunner::new().start(&"not an order").unwrap();
    execution.invoke(&workflow).await.unwrap();
    let run = execution.finish::<u64>().unwrap();
    assert_eq!(run.status, ExecutionStatus::Failed);
    let e = run.error.unwrap();
    assert_eq!(e.error_type.as_deref(), Some("InvalidInput"));
    assert!(e.error_message.unwrap().contains("Order"));
}

#[tokio::test]
async fn a_name_the_service_would_reject_fails_before_anything_is_sent() {
    // The service only accepts printable ASCII names: the step is refused
    // when it is called, not when the service rejects its checkpoint.
    let workflow = |mut wf: Workflow, _: ()| async move {
        let _: u32 = wf.step("café", |_| async { Ok(1) }).await?;
        Ok::<_, StepError>(())
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    let e = run.error.unwrap();
    assert_eq!(e.error_type.as_deref(), Some("InvalidName"));
    let message = e.error_message.unwrap();
    assert!(
        message.contains("printable ASCII") && message.contains("\"café\""),
        "{message}"
    );
    assert_eq!(run.operations.len(), 1, "nothing was checkpointed");
}

#[tokio::test]
async fn the_workflow_error_becomes_the_execution_error() {
    #[derive(Debug)]
    struct OutOfStock;
    impl std::fmt::Display for OutOfStock {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("out of stock")
        }
    }
    impl std::error::Error for OutOfStock {}
    let workflow = |mut wf: Workflow, _: ()| async move {
        wf.wait("w", Duration::from_secs(1)).await;
        Err::<(), _>(OutOfStock)
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    let e = run.error.unwrap();
    assert_eq!(e.error_type.as_deref(), Some("OutOfStock"));
    assert_eq!(e.error_message.as_deref(), Some("out of stock"));
    assert_eq!(run.invocations, 2);
}

#[tokio::test]
async fn a_runaway_execution_hits_the_invocation_budget() {
    let workflow = |mut wf: Workflow, _: ()| async move {
        for i in 0..10u32 {
            wf.wait(format!("w{i}"), Duration::from_secs(1)).await;
        }
        Ok::<_, StepError>(())
    };
    let err = LocalRunner::new()
        .max_invocations(3)
        .run(&workflow, &())
        .await
        .unwrap_err();
    assert_eq!(err, durable_yield::local::LocalError::TooManyInvocations(3));
    assert!(
        err.to_string().contains("LocalRunner::max_invocations"),
        "says what to do: {err}"
    );
}

#[tokio::test]
async fn a_result_too_large_for_the_response_travels_by_checkpoint() {
    let workflow = |mut wf: Workflow, len: usize| async move {
        wf.wait("w", Duration::from_secs(1)).await;
        Ok::<_, StepError>("y".repeat(len))
    };
    let len = 6 * 1024 * 1024 - 20;
    let run = LocalRunner::new().run(&workflow, &len).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded);
    assert_eq!(run.result.map(|r| r.len()), Some(len));
    // The execution was closed by the function's EXECUTION checkpoint,
    // before the invocation returned (with an empty result).
    use durable_yield::local::TimelineEvent;
    let position =
        |wanted: fn(&TimelineEvent) -> bool| run.timeline.events.iter().position(wanted).unwrap();
    let closed = position(|e| matches!(e, TimelineEvent::Closed { .. }));
    let returned = position(|e| matches!(e, TimelineEvent::Returned { invocation: 2, .. }));
    assert!(closed < returned, "{:#?}", &run.timeline.events[1..]);
}

/// A `StepFailure` ends any body the same way: returned from a child
/// context, a map item, a parallel branch or the workflow, the recorded
/// error is the failure's own type, message and data.
#[tokio::test]
async fn a_step_failure_keeps_its_type_and_data_from_any_body() {
    use durable_yield::{Branch, CompletionPolicy, MapConfig, ParallelConfig, StepFailure};
    let failure = |what: &str| {
        StepFailure::new("OutOfStock", format!("no {what}"))
            .with_data(&serde_json::json!({"sku": what}))
            .unwrap()
    };
    let workflow = move |mut wf: Workflow, _: ()| async move {
        let child: Result<u32, StepError> = wf
            .child("reserve", move |_wf| async move {
                Err::<u32, _>(failure("child"))
            })
            .await;
        let child = child.unwrap_err();
        assert_eq!(child.error_type(), Some("OutOfStock"));
        let items = wf
            .map_with(
                MapConfig::named("items").completion(CompletionPolicy::all()),
                vec![1u32],
                move |_wf, _, _| async move { Err::<u32, _>(failure("item")) },
            )
            .await?;
        let (_, item) = items.errors().next().unwrap();
        assert_eq!(item.error_type.as_deref(), Some("OutOfStock"));
        assert_eq!(item.error_message.as_deref(), Some("no item"));
        let branches = wf
            .parallel_with(
                ParallelConfig::named("branches").completion(CompletionPolicy::all()),
                vec![Branch::named("b", move |_wf: Workflow| async move {
                    Err::<u32, _>(failure("branch"))
                })],
            )
            .await?;
        let (_, branch) = branches.errors().next().unwrap();
        assert_eq!(branch.error_type.as_deref(), Some("OutOfStock"));
        // The workflow's own error, with `?`.
        Err::<u32, _>(failure("workflow"))?;
        Ok::<_, StepFailure>(0)
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Failed);
    let e = run.error.clone().unwrap();
    assert_eq!(e.error_type.as_deref(), Some("OutOfStock"));
    assert_eq!(e.error_message.as_deref(), Some("no workflow"));
    assert_eq!(e.error_data.as_deref(), Some(r#"{"sku":"workflow"}"#));
    let reserve = run.operation("reserve").unwrap();
    assert_eq!(reserve.status, S::Failed);
    let recorded = reserve
        .context_details
        .as_ref()
        .unwrap()
        .error
        .as_ref()
        .unwrap();
    assert_eq!(recorded.error_type.as_deref(), Some("OutOfStock"));
    assert_eq!(recorded.error_data.as_deref(), Some(r#"{"sku":"child"}"#));
}

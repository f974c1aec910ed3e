//! Custom subtypes of steps and child contexts (`StepConfig::sub_type`,
//! `ChildConfig::sub_type`, AWS's `sub_type` / `subType`): recorded,
//! checked on replay, validated before anything is checkpointed.

use durable_yield::StepConfig;

use super::*;

/// A "Payment" step and a "Reservation" child context around a default
/// step, then a wait: a second invocation replays them all.
fn labelled(
    step_sub_type: &'static str,
    child_sub_type: &'static str,
) -> impl Fn(
    Workflow,
    (),
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<u32, StepError>> + Send>>
+ Send
+ Sync {
    move |mut wf: Workflow, _: ()| {
        Box::pin(async move {
            let charged: u32 = wf
                .step_with(
                    StepConfig::named("charge").sub_type(step_sub_type),
                    |_| async { Ok(40) },
                )
                .await?;
            let config = ChildConfig::named("reserve").sub_type(child_sub_type);
            let reserved: u32 = wf
                .child_with(config, |mut wf| async move {
                    wf.step("hold", |_| async { Ok(2u32) }).await
                })
                .await?;
            wf.wait("settle", Duration::from_secs(5)).await;
            Ok(charged + reserved)
        })
    }
}

#[tokio::test]
async fn custom_subtypes_are_recorded_and_replay() {
    let run = LocalRunner::new()
        .run(&labelled("Payment", "Reservation"), &())
        .await
        .unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.result, Some(42));
    assert_eq!(run.invocations, 2, "the second replays both");
    let sub_type = |name| find(&run.operations, name).sub_type.as_deref();
    assert_eq!(sub_type("charge"), Some("Payment"));
    assert_eq!(sub_type("reserve"), Some("Reservation"));
    assert_eq!(sub_type("hold"), Some("Step"), "the default inside it");
    assert_eq!(sub_type("settle"), Some("Wait"));
}

#[tokio::test]
async fn an_empty_subtype_keeps_the_default() {
    let run = LocalRunner::new()
        .run(&labelled("", ""), &())
        .await
        .unwrap();
    assert_eq!(run.result, Some(42));
    assert_eq!(
        find(&run.operations, "charge").sub_type.as_deref(),
        Some("Step")
    );
    assert_eq!(
        find(&run.operations, "reserve").sub_type.as_deref(),
        Some("RunInChildContext")
    );
}

#[tokio::test]
async fn changing_a_subtype_under_an_execution_in_flight_is_non_deterministic() {
    for (v1, v2) in [
        (
            labelled("Payment", "Reservation"),
            labelled("Refund", "Reservation"),
        ),
        (
            labelled("Payment", "Reservation"),
            labelled("Payment", "Hold"),
        ),
        (
            labelled("Payment", "Reservation"),
            labelled("", "Reservation"),
        ),
    ] {
        changed_in_flight(&v1, &v2).await;
    }
}

#[tokio::test]
async fn an_invalid_subtype_fails_before_anything_is_checkpointed() {
    let ran = Counter::new();
    for (step, child, named) in [
        ("not valid", "Reservation", "charge"),
        ("Payment", "a.b", "reserve"),
        ("Payment", "x23456789012345678901234567890123", "reserve"),
    ] {
        let workflow = {
            let ran = ran.clone();
            move |mut wf: Workflow, _: ()| {
                let ran = ran.clone();
                async move {
                    wf.step_with(StepConfig::named("charge").sub_type(step), move |_| {
                        ran.hit();
                        async { Ok(1u32) }
                    })
                    .await?;
                    wf.child_with(ChildConfig::named("reserve").sub_type(child), |_| async {
                        Ok::<_, StepError>(())
                    })
                    .await
                }
            }
        };
        let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
        assert_eq!(run.status, ExecutionStatus::Failed);
        let error = run.error.unwrap();
        assert_eq!(error.error_type.as_deref(), Some("InvalidConfig"));
        let message = error.error_message.unwrap_or_default();
        assert!(
            message.contains(named) && message.contains("sub_type must be 1 to 32 characters"),
            "{message}"
        );
        assert!(
            run.operations
                .iter()
                .all(|o| o.name.as_deref() != Some(named)),
            "{named} was checkpointed"
        );
    }
    assert_eq!(ran.get(), 2, "the invalid step's body never ran");
}

//! Child contexts: ids, replay from the result, failures as values,
//! ReplayChildren.

use super::*;

#[tokio::test]
async fn nested_child_contexts_number_their_own_operations() {
    let steps = Counter::new();
    let workflow = {
        let steps = steps.clone();
        move |mut wf: Workflow, x: u32| {
            let steps = steps.clone();
            async move {
                let inner: u32 = wf
                    .child("outer", move |mut wf| async move {
                        let s = steps.clone();
                        let a: u32 = wf
                            .step("in-outer", move |_| async move {
                                s.hit();
                                Ok(x + 1)
                            })
                            .await?;
                        let b: u32 = wf
                            .child("inner", move |mut wf| async move {
                                wf.wait("nap", Duration::from_secs(10)).await;
                                let s = steps.clone();
                                wf.step("in-inner", move |_| async move {
                                    s.hit();
                                    Ok(a * 10)
                                })
                                .await
                            })
                            .await?;
                        Ok::<_, StepError>(b)
                    })
                    .await?;
                let after: u32 = wf
                    .step("after", move |_| async move { Ok(inner + 1) })
                    .await?;
                Ok::<_, StepError>(after)
            }
        }
    };
    let run = LocalRunner::new().run(&workflow, &4u32).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.result, Some(51));
    assert_eq!(
        run.invocations, 2,
        "the wait in the grandchild suspends once"
    );
    assert_eq!(steps.get(), 2, "each step body ran once");

    // PROTOCOL.md §5 / OPERATIONS.md §2.3: A = H("1"), its step H(A-1), the
    // grandchild B = H(A-2), its wait H(B-1) and step H(B-2); then H("2").
    let mut root = Ids::root();
    let a = root.next_id().0;
    let mut in_a = Ids::child(a);
    let a1 = in_a.next_id().0;
    let b = in_a.next_id().0;
    let mut in_b = Ids::child(b);
    let (b1, b2) = (in_b.next_id().0, in_b.next_id().0);
    let after = root.next_id().0;
    let ops = &run.operations;
    let by_name = |n| find(ops, n);
    let expect = [
        ("outer", a, None, T::Context, "RunInChildContext"),
        ("in-outer", a1, Some(a), T::Step, "Step"),
        ("inner", b, Some(a), T::Context, "RunInChildContext"),
        ("nap", b1, Some(b), T::Wait, "Wait"),
        ("in-inner", b2, Some(b), T::Step, "Step"),
        ("after", after, None, T::Step, "Step"),
    ];
    for (name, id, parent, t, sub) in expect {
        let op = by_name(name);
        assert_eq!(op.id, id, "{name}");
        assert_eq!(op.parent_id, parent, "{name}");
        assert_eq!(op.op_type, t, "{name}");
        assert_eq!(op.sub_type.as_deref(), Some(sub), "{name}");
        assert_eq!(op.status, S::Succeeded, "{name}");
    }
    assert_eq!(context_result(by_name("inner")), Some("50"));
    assert_eq!(context_result(by_name("outer")), Some("50"));
    assert_eq!(replay_children(by_name("outer")), Some(false));
}

#[tokio::test]
async fn a_completed_child_replays_from_its_result_without_its_children() {
    // After the child completes, the service stops sending its children;
    // the replay must not need them (the local runner leaves them out too).
    let body_runs = Counter::new();
    let workflow = {
        let body_runs = body_runs.clone();
        move |mut wf: Workflow, _: ()| {
            let body_runs = body_runs.clone();
            async move {
                let v: String = wf
                    .child("group", move |mut wf| async move {
                        body_runs.hit();
                        wf.step("one", |_| async { Ok("a".to_owned()) }).await
                    })
                    .await?;
                wf.wait("later", Duration::from_secs(60)).await;
                Ok::<_, StepError>(v)
            }
        }
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.result.as_deref(), Some("a"));
    assert_eq!(run.invocations, 2);
    assert_eq!(body_runs.get(), 1, "the child's body did not run on replay");
}

#[tokio::test]
async fn a_failing_child_is_a_value_the_parent_handles() {
    #[derive(Debug)]
    struct OutOfStock;
    impl std::fmt::Display for OutOfStock {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("no stock left")
        }
    }
    impl std::error::Error for OutOfStock {}
    let workflow = |mut wf: Workflow, _: ()| async move {
        let reserved: Result<u32, StepError> = wf
            .child("reserve", |mut wf| async move {
                let left: u32 = wf
                    .step("check", |_| async { Ok(0u32) })
                    .await
                    .map_err(|_| OutOfStock)?;
                if left == 0 {
                    return Err(OutOfStock);
                }
                Ok(left)
            })
            .await;
        let error = reserved.expect_err("the child failed");
        assert_eq!(error.operation_kind(), "child context");
        assert_eq!(error.step_name(), Some("reserve"));
        let fallback: String = wf
            .step("backorder", move |_| async move {
                Ok(format!(
                    "backordered after {}",
                    error.error_type().unwrap_or("?")
                ))
            })
            .await?;
        Ok::<_, StepError>(fallback)
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.result.as_deref(), Some("backordered after OutOfStock"));
    let child = find(&run.operations, "reserve");
    assert_eq!(child.status, S::Failed);
    let error = child
        .context_details
        .as_ref()
        .unwrap()
        .error
        .as_ref()
        .unwrap();
    assert_eq!(error.error_type.as_deref(), Some("OutOfStock"));
    assert_eq!(error.error_message.as_deref(), Some("no stock left"));
}

#[tokio::test]
async fn a_large_child_result_is_rebuilt_from_its_children() {
    let runs = Counter::new();
    let workflow = {
        let runs = runs.clone();
        move |mut wf: Workflow, _: ()| {
            let runs = runs.clone();
            async move {
                let big: String = wf
                    .child("big", move |mut wf| async move {
                        let mut parts = Vec::new();
                        for i in 0..3 {
                            let runs = runs.clone();
                            let part: String = wf
                                .step(format!("part-{i}"), move |_| async move {
                                    runs.hit();
                                    Ok(format!("{i}").repeat(100 * 1024))
                                })
                                .await?;
                            parts.push(part);
                        }
                        Ok::<_, StepError>(parts.concat())
                    })
                    .await?;
                wf.wait("pause", Duration::from_secs(1)).await;
                let len: usize = wf
                    .step("len", move |_| async move { Ok(big.len()) })
                    .await?;
                Ok::<_, StepError>(len)
            }
        }
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.result, Some(300 * 1024));
    assert_eq!(
        runs.get(),
        3,
        "replay rebuilt the result without running the steps"
    );
    let big = find(&run.operations, "big");
    assert_eq!(replay_children(big), Some(true));
    assert_eq!(context_result(big), Some(""));
    // The second invocation rebuilt it and sent nothing for the child.
    let updates_for_big = run
        .timeline
        .events
        .iter()
        .filter(|e| matches!(e, durable_yield::local::TimelineEvent::Applied { id, .. } if *id == big.id))
        .count();
    assert_eq!(updates_for_big, 2, "START and SUCCEED, once");
}

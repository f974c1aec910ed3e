//! Flat map and parallel, and virtual child contexts: no CONTEXT of their
//! own, operations parented and numbered as AWS's SDKs do it
//! (OPERATIONS.md §2.4, §3.1), replay by running the body again.

use std::time::Duration;

use durable_yield::id::operation_id;
use durable_yield::model::{Operation, OperationId, OperationStatus as S, OperationType as T};
use durable_yield::{
    BatchStatus, Branch, ChildConfig, CompletionPolicy, CompletionReason, ExecutionStatus,
    LocalRunner, MapConfig, Nesting, ParallelConfig, StepError, Workflow,
};
use durable_yield_tests::Counter;
use durable_yield_tests::Ids;

fn id_of(ops: &[Operation], name: &str) -> OperationId {
    ops.iter()
        .find(|o| o.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no operation named {name:?}: {ops:?}"))
        .id
}

fn parent_of(ops: &[Operation], name: &str) -> Option<OperationId> {
    ops.iter()
        .find(|o| o.name.as_deref() == Some(name))
        .and_then(|o| o.parent_id)
}

/// The example of OPERATIONS.md §2.4: at the root, a virtual child holding
/// steps a and b, then step c: ids `H(H("1")-1)`, `H(H("1")-2)`, `H("2")`,
/// none with a ParentId. The virtual body runs again after the wait; its
/// steps replay.
#[tokio::test]
async fn a_virtual_child_records_nothing_of_its_own() {
    let runs = Counter::new();
    let workflow = {
        let runs = runs.clone();
        move |mut wf: Workflow, _: ()| {
            let runs = runs.clone();
            async move {
                let ab: u32 = wf
                    .child_with(ChildConfig::named("group").virtual_context(), {
                        let runs = runs.clone();
                        move |mut wf| async move {
                            let r = runs.clone();
                            let a: u32 = wf
                                .step("a", move |_| async move {
                                    r.hit();
                                    Ok(1)
                                })
                                .await?;
                            let b: u32 = wf
                                .step("b", move |_| async move {
                                    runs.hit();
                                    Ok(a + 1)
                                })
                                .await?;
                            Ok::<_, StepError>(a + b)
                        }
                    })
                    .await?;
                let c: u32 = wf.step("c", move |_| async move { Ok(ab * 10) }).await?;
                wf.wait("w", Duration::from_secs(5)).await;
                Ok::<_, StepError>(c)
            }
        }
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.result, Some(30));
    assert_eq!(run.invocations, 2);
    assert_eq!(runs.get(), 2, "each step body ran once");
    let ops = &run.operations;
    assert!(
        ops.iter().all(|o| o.op_type != T::Context),
        "no CONTEXT recorded: {ops:?}"
    );
    let virtual_id = operation_id(None, 1);
    let mut inside = Ids::child(virtual_id);
    assert_eq!(id_of(ops, "a"), inside.next_id().0);
    assert_eq!(id_of(ops, "b"), inside.next_id().0);
    assert_eq!(id_of(ops, "c"), operation_id(None, 2));
    for name in ["a", "b", "c", "w"] {
        assert_eq!(parent_of(ops, name), None, "{name} has no parent");
    }
}

/// Inside a recorded child, a virtual child's operations are parented to
/// the recorded child (the nearest recorded context).
#[tokio::test]
async fn a_virtual_child_parents_its_operations_to_the_nearest_recorded_context() {
    let workflow = |mut wf: Workflow, _: ()| async move {
        wf.child("outer", |mut wf| async move {
            wf.child_with(ChildConfig::new().virtual_context(), |mut wf| async move {
                wf.child_with(ChildConfig::new().virtual_context(), |mut wf| async move {
                    wf.step("deep", |_| async { Ok(5u32) }).await
                })
                .await
            })
            .await
        })
        .await
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.result, Some(5));
    let ops = &run.operations;
    let outer = id_of(ops, "outer");
    assert_eq!(parent_of(ops, "deep"), Some(outer));
    // outer -> virtual v1 = H(outer-1) -> virtual v2 = H(v1-1) -> deep = H(v2-1).
    let v1 = Ids::child(outer).next_id().0;
    let v2 = Ids::child(v1).next_id().0;
    assert_eq!(id_of(ops, "deep"), Ids::child(v2).next_id().0);
    assert_eq!(
        ops.iter().filter(|o| o.op_type == T::Context).count(),
        1,
        "only outer is recorded"
    );
}

/// A virtual child's error reaches its caller like a recorded child's,
/// and nothing is recorded for it.
#[tokio::test]
async fn a_failing_virtual_child_returns_its_error() {
    let workflow = |mut wf: Workflow, _: ()| async move {
        let r: Result<u32, StepError> = wf
            .child_with(ChildConfig::named("v").virtual_context(), |_| async {
                Err::<u32, _>("no stock")
            })
            .await;
        let e = r.unwrap_err();
        Ok::<_, StepError>(e.message().unwrap_or("").to_owned())
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.result.as_deref(), Some("no stock"));
    assert_eq!(run.operations.len(), 1, "only the EXECUTION");
}

/// Code that records a child where a virtual one now stands (or the
/// reverse) is non-deterministic.
#[tokio::test]
async fn a_recorded_context_where_a_virtual_one_runs_is_non_deterministic() {
    fn v(
        recorded: bool,
    ) -> impl Fn(Workflow, ()) -> durable_yield_tests::BoxFuture<Result<u32, StepError>> + Send + Sync
    {
        move |mut wf: Workflow, _: ()| {
            Box::pin(async move {
                let mut config = ChildConfig::named("g");
                if !recorded {
                    config = config.virtual_context();
                }
                let x: u32 = wf
                    .child_with(config, |mut wf| async move {
                        wf.step("s", |_| async { Ok(1u32) }).await
                    })
                    .await?;
                wf.wait("w", Duration::from_secs(5)).await;
                Ok(x)
            })
        }
    }
    let execution = LocalRunner::new().start(&()).unwrap();
    execution.invoke(&v(true)).await.unwrap();
    execution.advance_time();
    execution.invoke(&v(false)).await.unwrap();
    let run = execution.finish::<u32>().unwrap();
    assert_eq!(run.status, ExecutionStatus::Failed);
    let error = run.error.unwrap();
    assert_eq!(
        error.error_type.as_deref(),
        Some("NonDeterministicExecution")
    );
    let message = error.error_message.unwrap_or_default();
    assert!(message.contains("virtual"), "{message}");
}

/// The example of OPERATIONS.md §3.1 under FLAT: items record no CONTEXT;
/// the operations inside item i have ids `H(H(M-i)-n)` and the map as
/// their parent.
#[tokio::test]
async fn a_flat_map_records_items_operations_under_the_map() {
    let runs = Counter::new();
    let workflow = {
        let runs = runs.clone();
        move |mut wf: Workflow, _: ()| {
            let runs = runs.clone();
            async move {
                let config = MapConfig::named("m").nesting(Nesting::Flat);
                let r = wf
                    .map_with(config, 0..3u32, move |mut wf, x, _| {
                        let runs = runs.clone();
                        async move {
                            if x == 1 {
                                wf.wait(format!("nap-{x}"), Duration::from_secs(3)).await;
                            }
                            wf.step(format!("s-{x}"), move |_| async move {
                                runs.hit();
                                Ok(x * 10)
                            })
                            .await
                        }
                    })
                    .await?;
                assert_eq!(r.status(), BatchStatus::Succeeded);
                r.into_values()
            }
        }
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.result, Some(vec![0, 10, 20]));
    assert_eq!(run.invocations, 2, "item 1's wait suspended the first");
    assert_eq!(
        runs.get(),
        3,
        "each step body ran once, replays re-ran none"
    );
    let ops = &run.operations;
    let map = id_of(ops, "m");
    assert_eq!(map, operation_id(None, 1));
    assert_eq!(
        ops.iter()
            .filter(|o| o.op_type == T::Context)
            .map(|o| o.name.as_deref())
            .collect::<Vec<_>>(),
        vec![Some("m")],
        "no MapIteration contexts"
    );
    for (i, name) in [(0, "s-0"), (1, "nap-1"), (2, "s-2")] {
        let branch = Ids::branch(&map, i);
        assert_eq!(id_of(ops, name), Ids::child(branch).next_id().0);
        assert_eq!(parent_of(ops, name), Some(map), "{name}");
    }
    let mut item1 = Ids::child(Ids::branch(&map, 1));
    item1.next_id();
    assert_eq!(id_of(ops, "s-1"), item1.next_id().0);
    let m = ops.iter().find(|o| o.id == map).unwrap();
    assert_eq!(m.status, S::Succeeded);
}

/// Completion policies count flat branches as they end; a branch that
/// never started leaves nothing.
#[tokio::test]
async fn a_flat_parallel_fails_fast_and_min_successful_ends_it() {
    async fn run(policy: CompletionPolicy) -> (durable_yield::BatchResult<u32>, Vec<Operation>) {
        let workflow = move |mut wf: Workflow, _: ()| {
            let policy = policy.clone();
            async move {
                let config = ParallelConfig::named("p")
                    .max_concurrency(1)
                    .nesting(Nesting::Flat)
                    .completion(policy);
                let branches = vec![
                    Branch::new(|mut wf: Workflow| async move {
                        wf.step("ok-0", |_| async { Ok(1u32) }).await
                    }),
                    Branch::new(|mut wf: Workflow| async move {
                        let config = durable_yield::StepConfig::named("bad-1")
                            .retry(durable_yield::retry::NoRetry);
                        wf.step_with(config, |_| async {
                            Err::<u32, _>(durable_yield::StepFailure::new("Broken", "no"))
                        })
                        .await
                    }),
                    Branch::new(|mut wf: Workflow| async move {
                        wf.step("ok-2", |_| async { Ok(3u32) }).await
                    }),
                ];
                wf.parallel_with(config, branches).await
            }
        };
        let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
        (run.result.unwrap(), run.operations)
    }
    let (fast, ops) = run(CompletionPolicy::fail_fast()).await;
    assert_eq!(
        fast.completion_reason(),
        CompletionReason::FailureToleranceExceeded
    );
    assert_eq!(
        (fast.total_count(), fast.status()),
        (2, BatchStatus::Failed)
    );
    assert!(ops.iter().all(|o| o.name.as_deref() != Some("ok-2")));
    assert_eq!(
        ops.iter()
            .find(|o| o.name.as_deref() == Some("bad-1"))
            .unwrap()
            .status,
        S::Failed
    );
    let (first, _) = run(CompletionPolicy::default().min_successful(1)).await;
    assert_eq!(
        first.completion_reason(),
        CompletionReason::MinSuccessfulReached
    );
    assert_eq!(first.total_count(), 1);
}

/// A flat map whose result is too large to checkpoint is rebuilt on replay
/// by running its branches again over their recorded operations.
#[tokio::test]
async fn a_large_flat_map_is_rebuilt_from_its_operations() {
    let runs = Counter::new();
    let workflow = {
        let runs = runs.clone();
        move |mut wf: Workflow, _: ()| {
            let runs = runs.clone();
            async move {
                let config = MapConfig::named("big").nesting(Nesting::Flat);
                let r = wf
                    .map_with(config, 0..4u32, move |mut wf, x, _| {
                        let runs = runs.clone();
                        async move {
                            wf.step("chunk", move |_| async move {
                                runs.hit();
                                Ok(format!("{x}").repeat(100 * 1024))
                            })
                            .await
                        }
                    })
                    .await?;
                wf.wait("pause", Duration::from_secs(1)).await;
                Ok::<_, StepError>(r.successes().map(String::len).sum::<usize>())
            }
        }
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.result, Some(400 * 1024));
    assert_eq!(runs.get(), 4, "the rebuild ran no step body");
    let map = run
        .operations
        .iter()
        .find(|o| o.name.as_deref() == Some("big"))
        .unwrap();
    assert_eq!(
        map.context_details.as_ref().and_then(|d| d.replay_children),
        Some(true)
    );
}

/// A history written with nested items, replayed by code that asks for
/// flat ones, is non-deterministic (a branch CONTEXT stands at a flat
/// branch's id).
#[tokio::test]
async fn nested_history_replayed_as_flat_is_non_deterministic() {
    fn v(
        nesting: Nesting,
    ) -> impl Fn(Workflow, ()) -> durable_yield_tests::BoxFuture<Result<u32, StepError>> + Send + Sync
    {
        move |mut wf: Workflow, _: ()| {
            Box::pin(async move {
                let config = MapConfig::named("m").nesting(nesting);
                let r = wf
                    .map_with(config, 0..2u32, |mut wf, x, _| async move {
                        wf.wait("w", Duration::from_secs(5)).await;
                        wf.step("s", move |_| async move { Ok(x) }).await
                    })
                    .await?;
                Ok(r.into_values()?.into_iter().sum())
            })
        }
    }
    let execution = LocalRunner::new().start(&()).unwrap();
    execution.invoke(&v(Nesting::Nested)).await.unwrap();
    execution.advance_time();
    execution.invoke(&v(Nesting::Flat)).await.unwrap();
    let run = execution.finish::<u32>().unwrap();
    assert_eq!(run.status, ExecutionStatus::Failed);
    assert_eq!(
        run.error.unwrap().error_type.as_deref(),
        Some("NonDeterministicExecution")
    );
}

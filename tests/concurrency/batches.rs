//! Maps and parallels: completion order, concurrency, completion policies,
//! windows, suspension, large results, configurations.

use super::*;

/// A workflow returning the values of a map.
pub(super) type MapWorkflow = Box<
    dyn Fn(
            Workflow,
            (),
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<Vec<u64>, StepError>> + Send>,
        > + Send
        + Sync,
>;

/// A map of `order.len()` items whose step bodies finish in `order` (item
/// `order[0]` first, then `order[1]`, ...), each returning `i * 10`. No
/// sleeps: every body waits for its turn, so the completion order is the
/// one asked for whatever the scheduler does; the order they really
/// finished in is pushed to `finished`.
pub(super) fn ordered_map(order: Vec<u64>, finished: Arc<Mutex<Vec<u64>>>) -> MapWorkflow {
    let turn = Arc::new(tokio::sync::watch::channel(0usize).0);
    Box::new(move |mut wf: Workflow, _: ()| {
        let (order, finished, turn) = (order.clone(), finished.clone(), turn.clone());
        Box::pin(async move {
            let n = order.len() as u64;
            let result = wf
                .map("items", 0..n, move |mut wf, item, _| {
                    let position = order.iter().position(|&i| i == item).unwrap();
                    let (finished, turn) = (finished.clone(), turn.clone());
                    async move {
                        wf.step("work", move |_| async move {
                            let mut rx = turn.subscribe();
                            rx.wait_for(|&t| t == position).await?;
                            finished.lock().unwrap().push(item);
                            turn.send_modify(|t| *t += 1);
                            Ok(item * 10)
                        })
                        .await
                    }
                })
                .await?;
            result.into_values()
        })
    })
}

/// What is recorded about an operation, apart from timestamps.
pub(super) fn recorded(ops: &[Operation]) -> Vec<String> {
    let mut v: Vec<String> = ops
        .iter()
        .filter(|o| o.op_type != T::Execution)
        .map(|o| {
            format!(
                "{} {:?} {:?} {} {:?} {:?} {:?}",
                o.id,
                o.parent_id.map(|p| p.to_string()),
                o.name,
                o.status,
                o.sub_type,
                context_result(o),
                o.step_details.as_ref().and_then(|d| d.result.clone())
            )
        })
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completion_order_changes_nothing_that_is_recorded() {
    let orders = [
        vec![0, 1, 2, 3, 4],
        vec![4, 3, 2, 1, 0],
        vec![2, 4, 0, 3, 1],
    ];
    let mut runs = Vec::new();
    for order in orders {
        let finished = Arc::new(Mutex::new(Vec::new()));
        let workflow = ordered_map(order.clone(), finished.clone());
        let run = LocalRunner::new()
            .execution_name("same")
            .run(&workflow, &())
            .await
            .unwrap();
        // The bodies really finished in this order.
        assert_eq!(*finished.lock().unwrap(), order);
        runs.push(run);
    }
    let (a, b, c) = (&runs[0], &runs[1], &runs[2]);
    for run in [a, b, c] {
        assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
        assert_eq!(run.result, Some(vec![0, 10, 20, 30, 40]), "index order");
    }
    assert_eq!(recorded(&a.operations), recorded(&b.operations));
    assert_eq!(recorded(&a.operations), recorded(&c.operations));
    // Items are children of the map, named map-item-<i>, ids H("<map>-<i>").
    let map = find(&a.operations, "items");
    assert_eq!(map.sub_type.as_deref(), Some("Map"));
    for i in 0..5u64 {
        let item = find(&a.operations, &format!("map-item-{i}"));
        assert_eq!(item.id, Ids::branch(&map.id, i));
        assert_eq!(item.parent_id, Some(map.id));
        assert_eq!(item.sub_type.as_deref(), Some("MapIteration"));
        let step = a
            .operations
            .iter()
            .find(|o| o.parent_id == Some(item.id))
            .unwrap();
        assert_eq!(step.id, Ids::child(item.id).next_id().0);
    }
    assert_eq!(
        context_result(map),
        Some(
            r#"{"all":[{"index":0,"status":"SUCCEEDED","result":0,"error":null},{"index":1,"status":"SUCCEEDED","result":10,"error":null},{"index":2,"status":"SUCCEEDED","result":20,"error":null},{"index":3,"status":"SUCCEEDED","result":30,"error":null},{"index":4,"status":"SUCCEEDED","result":40,"error":null}],"completionReason":"ALL_COMPLETED"}"#
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn step_bodies_of_different_branches_run_at_the_same_time() {
    // No timing: every body waits at a barrier until all twenty are
    // inside, which only ends if they really run at the same time (one
    // after another, the first would wait forever: the timeout says so).
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let workflow = {
        let barrier = barrier.clone();
        move |mut wf: Workflow, _: ()| {
            let barrier = barrier.clone();
            async move {
                let r = wf
                    .map("overlap", 0..20u32, move |mut wf, i, _| {
                        let barrier = barrier.clone();
                        async move {
                            wf.step("work", move |_| async move {
                                barrier.wait().await;
                                Ok(i)
                            })
                            .await
                        }
                    })
                    .await?;
                r.into_values()
            }
        }
    };
    let run = tokio::time::timeout(
        Duration::from_secs(60),
        LocalRunner::new().run(&workflow, &()),
    )
    .await
    .expect("the twenty step bodies never were all running at once")
    .unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.result, Some((0..20).collect::<Vec<u32>>()));
}

#[tokio::test]
async fn an_empty_map_is_one_request() {
    let workflow = |mut wf: Workflow, _: ()| async move {
        let r: BatchResult<u32> = wf
            .map("nothing", Vec::<u32>::new(), |_, x, _| async move {
                Ok::<_, StepError>(x)
            })
            .await?;
        assert_eq!(r.completion_reason(), CompletionReason::AllCompleted);
        assert_eq!(r.total_count(), 0);
        Ok::<_, StepError>(r.into_values()?.len())
    };
    let execution = LocalRunner::new().start(&()).unwrap();
    execution.invoke(&workflow).await;
    assert_eq!(execution.checkpoint_requests(), 1);
    let run = execution.finish::<usize>().unwrap();
    assert_eq!(run.result, Some(0));
    let map = find(&run.operations, "nothing");
    assert_eq!(
        context_result(map),
        Some(r#"{"all":[],"completionReason":"ALL_COMPLETED"}"#)
    );
}

#[tokio::test]
async fn min_successful_stops_early_and_starts_no_more() {
    let started = Counter::new();
    let workflow = {
        let started = started.clone();
        move |mut wf: Workflow, _: ()| {
            let started = started.clone();
            async move {
                let config = MapConfig::named("first-two")
                    .max_concurrency(1)
                    .completion(CompletionPolicy::default().min_successful(2));
                let r = wf
                    .map_with(config, 0..4u32, move |mut wf, x, _| {
                        let started = started.clone();
                        async move {
                            started.hit();
                            wf.step("x", move |_| async move { Ok(x) }).await
                        }
                    })
                    .await?;
                assert_eq!(
                    r.completion_reason(),
                    CompletionReason::MinSuccessfulReached
                );
                let statuses: Vec<_> = r.items().iter().map(|i| i.status).collect();
                // The two branches that never started are no items (as
                // in AWS's SDKs: the total counts the started ones).
                assert_eq!(
                    statuses,
                    vec![BatchItemStatus::Succeeded, BatchItemStatus::Succeeded]
                );
                assert_eq!(r.total_count(), 2);
                assert_eq!(r.status(), BatchStatus::Succeeded);
                r.into_values()
            }
        }
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.result, Some(vec![0, 1]));
    assert_eq!(started.get(), 2);
    assert!(
        run.operation("map-item-2").is_none(),
        "never started, never recorded"
    );
}

#[tokio::test]
async fn exceeding_the_tolerated_failures_ends_the_batch() {
    let workflow = |mut wf: Workflow, _: ()| async move {
        let config = MapConfig::named("fragile")
            .max_concurrency(1)
            .completion(CompletionPolicy::default().tolerated_failure_count(1));
        let r = wf
            .map_with(config, 0..3u32, |mut wf, x, _| async move {
                let config =
                    durable_yield::StepConfig::named("fail").retry(durable_yield::retry::NoRetry);
                wf.step_with(config, move |_| async move {
                    Err::<u32, _>(durable_yield::StepFailure::new(
                        "Broken",
                        format!("item {x}"),
                    ))
                })
                .await
            })
            .await?;
        assert_eq!(
            r.completion_reason(),
            CompletionReason::FailureToleranceExceeded
        );
        assert_eq!(r.failure_count(), 2);
        // Item 2 never started: two items, status FAILED.
        assert_eq!(r.total_count(), 2);
        assert_eq!(r.status(), BatchStatus::Failed);
        let first = r.into_values().unwrap_err();
        Ok::<_, StepError>(first.message().unwrap_or("").to_owned())
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.result.as_deref(), Some("item 0"));
    assert!(run.operation("map-item-2").is_none());
    assert_eq!(run.operation("map-item-1").unwrap().status, S::Failed);
}

#[tokio::test]
async fn fail_fast_is_the_default_and_all_runs_everything() {
    async fn run(policy: Option<CompletionPolicy>) -> BatchResult<u32> {
        let workflow = move |mut wf: Workflow, _: ()| {
            let policy = policy.clone();
            async move {
                let mut config = ParallelConfig::named("p").max_concurrency(1);
                if let Some(p) = policy {
                    config = config.completion(p);
                }
                let branches = vec![
                    Branch::new(|_| async { Err::<u32, _>("boom") }),
                    Branch::new(|_| async { Ok::<u32, &str>(2) }),
                ];
                wf.parallel_with(config, branches).await
            }
        };
        LocalRunner::new()
            .run(&workflow, &())
            .await
            .unwrap()
            .result
            .unwrap()
    }
    let fast = run(None).await;
    assert_eq!(
        fast.completion_reason(),
        CompletionReason::FailureToleranceExceeded
    );
    assert_eq!(fast.total_count(), 1, "branch 1 never started");
    assert_eq!(fast.status(), BatchStatus::Failed);
    let all = run(Some(CompletionPolicy::all())).await;
    assert_eq!(all.completion_reason(), CompletionReason::AllCompleted);
    assert_eq!(all.success_count(), 1);
    assert_eq!(all.failure_count(), 1);
    assert_eq!(
        all.errors().next().unwrap().1.error_message.as_deref(),
        Some("boom")
    );
}

/// `fail_fast()` keeps failing fast when a threshold is added to it; the
/// default with only `min_successful` tolerates failures (AWS's rule).
#[tokio::test]
async fn fail_fast_keeps_its_meaning_with_min_successful() {
    async fn run(policy: CompletionPolicy) -> BatchResult<u32> {
        let workflow = move |mut wf: Workflow, _: ()| {
            let policy = policy.clone();
            async move {
                let config = ParallelConfig::named("p")
                    .max_concurrency(1)
                    .completion(policy);
                let branches = vec![
                    Branch::new(|_| async { Err::<u32, _>("boom") }),
                    Branch::new(|_| async { Ok::<u32, &str>(2) }),
                    Branch::new(|_| async { Ok::<u32, &str>(3) }),
                ];
                wf.parallel_with(config, branches).await
            }
        };
        let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
        run.result.unwrap()
    }
    let fast = run(CompletionPolicy::fail_fast().min_successful(1)).await;
    assert_eq!(
        fast.completion_reason(),
        CompletionReason::FailureToleranceExceeded
    );
    assert_eq!(
        (fast.total_count(), fast.status()),
        (1, BatchStatus::Failed)
    );
    let tolerant = run(CompletionPolicy::default().min_successful(1)).await;
    assert_eq!(
        tolerant.completion_reason(),
        CompletionReason::MinSuccessfulReached
    );
    assert_eq!(tolerant.total_count(), 2);
    assert_eq!(tolerant.success_count(), 1);
    assert_eq!(tolerant.status(), BatchStatus::Failed);
    assert_eq!(tolerant.status().to_string(), "FAILED");
    // Failures are tolerated until one branch succeeded.
    let quorum = run(CompletionPolicy::all().min_successful(1)).await;
    assert_eq!(
        quorum.completion_reason(),
        CompletionReason::MinSuccessfulReached
    );
    assert_eq!(quorum.total_count(), 2);
    assert_eq!(quorum.successes().copied().collect::<Vec<_>>(), vec![2]);
    // All branches ended: ALL_COMPLETED comes before MIN_SUCCESSFUL_REACHED
    // (AWS's order), though the second success was also the quorum.
    let all = run(CompletionPolicy::all().min_successful(2)).await;
    assert_eq!(all.completion_reason(), CompletionReason::AllCompleted);
    assert_eq!(all.successes().copied().collect::<Vec<_>>(), vec![2, 3]);
}

#[tokio::test]
async fn a_wait_in_one_branch_does_not_hold_back_the_others() {
    let workflow = |mut wf: Workflow, _: ()| async move {
        let r = wf
            .map("mixed", 0..3u32, |mut wf, x, _| async move {
                if x == 1 {
                    wf.wait("slow", Duration::from_secs(30)).await;
                }
                wf.step("done", move |_| async move { Ok(x) }).await
            })
            .await?;
        r.into_values()
    };
    let execution = LocalRunner::new().start(&()).unwrap();
    execution.invoke(&workflow).await;
    // After the first invocation, items 0 and 2 are done; 1 waits.
    let ops = execution.operations();
    let status = |name: &str| find(&ops, name).status;
    assert_eq!(status("map-item-0"), S::Succeeded);
    assert_eq!(status("map-item-2"), S::Succeeded);
    assert_eq!(status("map-item-1"), S::Started);
    assert_eq!(status("mixed"), S::Started);
    durable_yield_tests::drive(&execution, &workflow, 5)
        .await
        .unwrap();
    let run = execution.finish::<Vec<u32>>().unwrap();
    assert_eq!(run.result, Some(vec![0, 1, 2]));
    assert_eq!(run.invocations, 2);
}

#[tokio::test]
async fn a_map_over_more_items_than_its_window_runs_them_all_in_one_invocation() {
    const N: u32 = (2 * ADMISSION_WINDOW + 100) as u32;
    let workflow = |mut wf: Workflow, max_concurrency: Option<usize>| async move {
        let mut config = MapConfig::named("many");
        if let Some(n) = max_concurrency {
            config = config.max_concurrency(n);
        }
        let r = wf
            .map_with(config, 0..N, |mut wf, x, _| async move {
                wf.step("x", move |_| async move { Ok(u64::from(x)) }).await
            })
            .await?;
        Ok::<_, StepError>(r.into_values()?.into_iter().sum::<u64>())
    };
    let recorded = |ops: &[Operation]| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = ops
            .iter()
            .filter(|o| o.op_type != T::Execution)
            .map(|o| (o.id.as_str().to_owned(), o.status.to_string()))
            .collect();
        v.sort();
        v
    };
    let mut runs = Vec::new();
    for max_concurrency in [None, Some(N as usize)] {
        let execution = LocalRunner::new().start(&max_concurrency).unwrap();
        execution.invoke(&workflow).await;
        let requests = execution.checkpoint_requests();
        let run = execution.finish::<u64>().unwrap();
        assert_eq!(run.result, Some(u64::from(N) * u64::from(N - 1) / 2));
        assert_eq!(run.invocations, 1);
        // The execution, the map, and each item with its step.
        assert_eq!(run.operations.len(), 2 + 2 * N as usize);
        runs.push((recorded(&run.operations), requests));
    }
    // In windows or all at once, the same operations are recorded.
    assert!(runs[0].0 == runs[1].0, "different operations were recorded");
    // And about as many requests carry them (40 against 36 here).
    let (windowed, at_once) = (runs[0].1, runs[1].1);
    assert!(
        windowed <= at_once + at_once / 4,
        "{windowed} requests in windows, {at_once} all at once"
    );
}

#[tokio::test]
async fn max_concurrency_one_with_a_wait_in_each_item() {
    let workflow = |mut wf: Workflow, _: ()| async move {
        let config = MapConfig::named("one-by-one").max_concurrency(1);
        let r = wf
            .map_with(config, 0..3u32, |mut wf, x, _| async move {
                wf.wait("breathe", Duration::from_secs(5)).await;
                wf.step("x", move |_| async move { Ok(x) }).await
            })
            .await?;
        r.into_values()
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.result, Some(vec![0, 1, 2]));
    assert_eq!(run.invocations, 4, "one suspension per item");
    assert_eq!(run.elapsed, Duration::from_secs(15), "one after another");
    // Item i+1 started only after item i finished.
    let item = |i| find(&run.operations, &format!("map-item-{i}")).clone();
    assert!(item(1).start_timestamp >= item(0).end_timestamp);
    assert!(item(2).start_timestamp >= item(1).end_timestamp);
}

#[tokio::test]
async fn a_parallel_inside_a_map_item() {
    let workflow = |mut wf: Workflow, _: ()| async move {
        let r = wf
            .map("outer", 0..2u32, |mut wf, x, _| async move {
                let inner = wf
                    .parallel(
                        "inner",
                        vec![
                            Branch::named("double", move |mut wf| async move {
                                wf.step("d", move |_| async move { Ok(x * 2) }).await
                            }),
                            Branch::named("square", move |mut wf| async move {
                                wf.wait("w", Duration::from_secs(2)).await;
                                wf.step("s", move |_| async move { Ok(x * x) }).await
                            }),
                        ],
                    )
                    .await?;
                Ok::<_, StepError>(inner.into_values()?.iter().sum::<u32>())
            })
            .await?;
        r.into_values()
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.result, Some(vec![0, 3]));
    let ops = &run.operations;
    let items: Vec<_> = ops
        .iter()
        .filter(|o| o.name.as_deref() == Some("inner"))
        .collect();
    assert_eq!(items.len(), 2);
    for inner in items {
        assert_eq!(inner.sub_type.as_deref(), Some("Parallel"));
        let parent = ops.iter().find(|o| Some(o.id) == inner.parent_id).unwrap();
        assert_eq!(parent.sub_type.as_deref(), Some("MapIteration"));
        let branches: Vec<_> = ops
            .iter()
            .filter(|o| o.parent_id == Some(inner.id))
            .collect();
        assert_eq!(branches.len(), 2);
        assert!(
            branches
                .iter()
                .all(|b| b.sub_type.as_deref() == Some("ParallelBranch"))
        );
    }
}

#[tokio::test]
async fn a_large_batch_result_is_rebuilt_from_the_branches() {
    let runs = Counter::new();
    let workflow = {
        let runs = runs.clone();
        move |mut wf: Workflow, _: ()| {
            let runs = runs.clone();
            async move {
                let r = wf
                    .map("big", 0..4u32, move |mut wf, x, _| {
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
                let total: usize = r.successes().map(String::len).sum();
                Ok::<_, StepError>(total)
            }
        }
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.result, Some(400 * 1024));
    assert_eq!(runs.get(), 4);
    assert_eq!(
        batch_summary(&run.operations, "big"),
        serde_json::json!({
            "type": "MapResult", "totalCount": 4, "completionReason": "ALL_COMPLETED",
            "startedIndexes": [], "startedCount": 0, "successCount": 4, "failureCount": 0,
            "status": "SUCCEEDED"
        })
    );
}

#[tokio::test]
async fn a_named_parallel_suspends_and_replays() {
    let runs = Counter::new();
    let workflow = {
        let runs = runs.clone();
        move |mut wf: Workflow, _: ()| {
            let (r1, r2) = (runs.clone(), runs.clone());
            async move {
                let r = wf
                    .parallel_with(
                        ParallelConfig::named("fan"),
                        vec![
                            Branch::named("email", move |mut wf| async move {
                                wf.wait("throttle", Duration::from_secs(3)).await;
                                wf.step("send", move |_| async move {
                                    r1.hit();
                                    Ok("mailed".to_owned())
                                })
                                .await
                            }),
                            Branch::named("sms", move |mut wf| async move {
                                wf.step("send", move |_| async move {
                                    r2.hit();
                                    Ok("texted".to_owned())
                                })
                                .await
                            }),
                        ],
                    )
                    .await?;
                Ok::<_, StepError>(r.into_values()?.join("+"))
            }
        }
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.result.as_deref(), Some("mailed+texted"));
    assert_eq!(run.invocations, 2);
    assert_eq!(runs.get(), 2, "the sms branch did not run again on replay");
    for name in ["email", "sms"] {
        let b = find(&run.operations, name);
        assert_eq!(b.sub_type.as_deref(), Some("ParallelBranch"));
        assert_eq!(b.status, S::Succeeded);
    }
}

#[tokio::test]
async fn branches_still_running_when_the_batch_ends_are_abandoned() {
    let workflow = |mut wf: Workflow, _: ()| async move {
        let config =
            MapConfig::named("race").completion(CompletionPolicy::default().min_successful(1));
        let r = wf
            .map_with(config, 0..2u32, |mut wf, x, _| async move {
                if x == 1 {
                    wf.wait("slow", Duration::from_secs(60)).await;
                }
                wf.step("x", move |_| async move { Ok(x) }).await
            })
            .await?;
        let statuses: Vec<_> = r.items().iter().map(|i| i.status).collect();
        assert_eq!(
            statuses,
            vec![BatchItemStatus::Succeeded, BatchItemStatus::Started]
        );
        r.into_values()
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.result, Some(vec![0]));
    // The abandoned branch keeps its START; nothing more of it was sent.
    assert_eq!(find(&run.operations, "map-item-1").status, S::Started);
    assert!(run.operation("x").is_some());
    assert_eq!(
        run.operations
            .iter()
            .filter(|o| o.name.as_deref() == Some("x"))
            .count(),
        1
    );
}

#[tokio::test]
async fn invalid_batch_configurations_fail_before_anything_is_checkpointed() {
    let workflow = |mut wf: Workflow, _: ()| async move {
        let config = MapConfig::named("bad").max_concurrency(0);
        let r = wf
            .map_with(
                config,
                0..2u32,
                |_, x, _| async move { Ok::<_, StepError>(x) },
            )
            .await?;
        r.into_values()
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Failed);
    let error = run.error.unwrap();
    assert_eq!(error.error_type.as_deref(), Some("InvalidConfig"));
    assert!(
        error
            .error_message
            .unwrap()
            .contains("max_concurrency must be at least 1")
    );
    assert_eq!(run.operations.len(), 1, "only the EXECUTION operation");
}

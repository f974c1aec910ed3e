//! Custom completion predicates (`CompletionPolicy::should_complete`, AWS's
//! `should_complete` / `shouldComplete`): when they are asked and what they
//! see, the reasons and statuses they produce, what is checkpointed, and
//! replay.

use durable_yield::{CompletionDecision, CompletionItem, CompletionStatus, Nesting, StepFailure};

use super::*;

/// Every branch's status as a predicate saw it: `-` not started, `R`
/// started (running or waiting), `S` succeeded, `F` failed.
fn seen(status: &CompletionStatus<'_>) -> String {
    status
        .items
        .iter()
        .map(|item| match item.status() {
            None => '-',
            Some(BatchItemStatus::Started) => 'R',
            Some(BatchItemStatus::Succeeded) => 'S',
            Some(BatchItemStatus::Failed) => 'F',
            Some(other) => panic!("a predicate never sees {other:?}"),
        })
        .collect()
}

/// Two successes end the batch as succeeded, three failures as failed.
fn quorum(status: &CompletionStatus<'_>) -> CompletionDecision {
    if status.success_count >= 2 {
        CompletionDecision::succeed()
    } else if status.failure_count >= 3 {
        CompletionDecision::fail()
    } else {
        CompletionDecision::Continue
    }
}

/// A step that fails (no retry) for odd `x` and returns `x` otherwise.
async fn odd_fails(mut wf: Workflow, x: u32) -> Result<u32, StepError> {
    let config = durable_yield::StepConfig::named("work").retry(durable_yield::retry::NoRetry);
    wf.step_with(config, move |_| async move {
        if x % 2 == 1 {
            Err(StepFailure::new("Odd", format!("item {x}")))
        } else {
            Ok(x)
        }
    })
    .await
}

#[tokio::test]
async fn a_predicate_is_asked_before_each_start_and_after_each_end() {
    let views = Arc::new(Mutex::new(Vec::new()));
    let workflow = {
        let views = views.clone();
        move |mut wf: Workflow, _: ()| {
            let views = views.clone();
            async move {
                let policy = CompletionPolicy::should_complete(move |s| {
                    assert_eq!(s.total_count, 5);
                    assert_eq!(s.completed_count, s.success_count + s.failure_count);
                    views.lock().unwrap().push(seen(s));
                    quorum(s)
                });
                let config = MapConfig::named("quorum")
                    .max_concurrency(1)
                    .completion(policy);
                let r = wf
                    .map_with(config, 0..5u32, |wf, x, _| odd_fails(wf, x))
                    .await?;
                assert_eq!(
                    r.completion_reason(),
                    CompletionReason::CustomCompletionSucceeded
                );
                // Succeeded by the decision, though item 1 failed.
                assert_eq!(r.status(), BatchStatus::Succeeded);
                assert!(r.has_failures());
                let statuses: Vec<_> = r.items().iter().map(|i| i.status).collect();
                assert_eq!(
                    statuses,
                    [
                        BatchItemStatus::Succeeded,
                        BatchItemStatus::Failed,
                        BatchItemStatus::Succeeded
                    ]
                );
                Ok::<_, StepError>(r.successes().copied().collect::<Vec<_>>())
            }
        }
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.result, Some(vec![0, 2]));
    // Before any branch starts, before each further start (the last
    // started one running) and after each end; a failure alone ends
    // nothing.
    assert_eq!(
        *views.lock().unwrap(),
        [
            "-----", "R----", "S----", "SR---", "SF---", "SFR--", "SFS--"
        ]
    );
    let map = find(&run.operations, "quorum");
    assert_eq!(map.status, S::Succeeded);
    assert_eq!(
        context_result(map),
        Some(
            r#"{"all":[{"index":0,"status":"SUCCEEDED","result":0,"error":null},{"index":1,"status":"FAILED","result":null,"error":{"ErrorType":"Odd","ErrorMessage":"item 1","ErrorData":null,"StackTrace":null}},{"index":2,"status":"SUCCEEDED","result":2,"error":null}],"completionReason":"CUSTOM_COMPLETION_SUCCEEDED"}"#
        )
    );
    assert!(run.operation("map-item-3").is_none(), "never started");
}

#[tokio::test]
async fn a_failed_decision_fails_the_batch_though_no_branch_failed() {
    let workflow = |mut wf: Workflow, _: ()| async move {
        // Give up once branch 0 succeeded alone: a quorum that needs
        // branches 0 and 1 together cannot be met (branch 1 fails).
        let policy = CompletionPolicy::should_complete(|s| {
            match (s.items[0].status(), s.items[1].status()) {
                (Some(BatchItemStatus::Succeeded), Some(BatchItemStatus::Succeeded)) => {
                    CompletionDecision::succeed()
                }
                (Some(BatchItemStatus::Succeeded), None) => CompletionDecision::fail(),
                _ => CompletionDecision::Continue,
            }
        });
        let config = MapConfig::named("pair")
            .max_concurrency(1)
            .completion(policy);
        let r = wf
            .map_with(config, 0..3u32, |wf, x, _| odd_fails(wf, x))
            .await?;
        assert_eq!(
            r.completion_reason(),
            CompletionReason::CustomCompletionFailed
        );
        assert_eq!(r.status(), BatchStatus::Failed);
        assert!(!r.has_failures());
        r.into_values()
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Failed);
    let error = run.error.expect("the execution's error");
    assert_eq!(error.error_type.as_deref(), Some("BatchCompletionError"));
    assert!(
        error
            .error_message
            .as_deref()
            .is_some_and(|m| m.contains("CUSTOM_COMPLETION_FAILED")),
        "{error:?}"
    );
    // The map operation itself succeeded: its result says how it ended.
    let map = find(&run.operations, "pair");
    assert_eq!(map.status, S::Succeeded);
    assert_eq!(
        context_result(map),
        Some(
            r#"{"all":[{"index":0,"status":"SUCCEEDED","result":0,"error":null}],"completionReason":"CUSTOM_COMPLETION_FAILED"}"#
        )
    );
}

#[tokio::test]
async fn a_predicate_can_end_the_batch_before_any_branch_starts() {
    let started = Counter::new();
    let workflow = {
        let started = started.clone();
        move |mut wf: Workflow, _: ()| {
            let started = started.clone();
            async move {
                let policy = CompletionPolicy::should_complete(|s| {
                    assert_eq!(seen(s), "---");
                    CompletionDecision::succeed()
                });
                let r = wf
                    .map_with(
                        MapConfig::named("nothing").completion(policy),
                        0..3u32,
                        move |wf, x, _| {
                            started.hit();
                            odd_fails(wf, x)
                        },
                    )
                    .await?;
                assert_eq!(r.total_count(), 0);
                Ok::<_, StepError>(r.completion_reason().as_str().to_owned())
            }
        }
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.result.as_deref(), Some("CUSTOM_COMPLETION_SUCCEEDED"));
    assert_eq!(started.get(), 0);
    assert_eq!(
        context_result(find(&run.operations, "nothing")),
        Some(r#"{"all":[],"completionReason":"CUSTOM_COMPLETION_SUCCEEDED"}"#)
    );
    assert!(
        run.operations
            .iter()
            .all(|o| o.sub_type.as_deref() != Some("MapIteration")),
        "no branch recorded"
    );
}

#[tokio::test]
async fn a_batch_that_ended_replays_its_decision_without_asking_again() {
    let asked = Counter::new();
    // The predicate's calls counted so far, at the start of each invocation.
    let at_entry = Arc::new(Mutex::new(Vec::new()));
    let workflow = {
        let (asked, at_entry) = (asked.clone(), at_entry.clone());
        move |mut wf: Workflow, _: ()| {
            let (asked, at_entry) = (asked.clone(), at_entry.clone());
            async move {
                at_entry.lock().unwrap().push(asked.get());
                let policy = CompletionPolicy::should_complete(move |s| {
                    asked.hit();
                    quorum(s)
                });
                // Item x waits x + 1 seconds, then succeeds: each wait ends
                // in an invocation of its own.
                let r = wf
                    .map_with(
                        MapConfig::named("slow").completion(policy),
                        0..3u64,
                        |mut wf, x, _| async move {
                            wf.wait("pause", Duration::from_secs(x + 1)).await;
                            wf.step("work", move |_| async move { Ok(x) }).await
                        },
                    )
                    .await?;
                wf.wait("after", Duration::from_secs(10)).await;
                let statuses: Vec<_> = r.items().iter().map(|i| i.status).collect();
                assert_eq!(
                    statuses,
                    [
                        BatchItemStatus::Succeeded,
                        BatchItemStatus::Succeeded,
                        BatchItemStatus::Started
                    ]
                );
                Ok::<_, StepError>(format!("{} {:?}", r.completion_reason(), r.status()))
            }
        }
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    assert_eq!(
        run.result.as_deref(),
        Some("CUSTOM_COMPLETION_SUCCEEDED Succeeded")
    );
    // Five invocations: all items waiting (asked before each start and
    // once all run); item 0 done; item 1 done (the decision); item 2's
    // abandoned wait ending (the service still wakes the function up);
    // the wait after the map. The last two replay the decision and ask
    // nothing.
    let entries = at_entry.lock().unwrap().clone();
    assert_eq!(entries, [0, 4, 9, 14, 14]);
    assert_eq!(asked.get(), 14, "asked again after the batch ended");
    // Item 2 was still waiting: abandoned, its CONTEXT never finished.
    assert_eq!(find(&run.operations, "map-item-2").status, S::Started);
    assert_eq!(find(&run.operations, "slow").status, S::Succeeded);
}

#[tokio::test]
async fn a_predicate_with_thresholds_is_an_invalid_configuration() {
    let workflow = |mut wf: Workflow, _: ()| async move {
        let policy = CompletionPolicy::should_complete(quorum).min_successful(1);
        let r = wf
            .map_with(
                MapConfig::named("mixed").completion(policy),
                0..2u32,
                |wf, x, _| odd_fails(wf, x),
            )
            .await?;
        Ok::<_, StepError>(r.success_count())
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Failed);
    let error = run.error.clone().unwrap();
    assert_eq!(error.error_type.as_deref(), Some("InvalidConfig"));
    assert!(
        error
            .error_message
            .as_deref()
            .is_some_and(|m| m.contains("should_complete cannot be combined with min_successful")),
        "{error:?}"
    );
    assert!(run.operation("mixed").is_none(), "nothing checkpointed");
}

#[tokio::test]
async fn a_panicking_predicate_fails_the_execution_as_workflow_code_does() {
    let workflow = |mut wf: Workflow, _: ()| async move {
        let policy = CompletionPolicy::should_complete(|s| {
            if s.completed_count == 1 {
                panic!("no verdict");
            }
            CompletionDecision::Continue
        });
        let r = wf
            .map_with(
                MapConfig::named("fragile").completion(policy),
                0..2u32,
                |wf, x, _| odd_fails(wf, x * 2),
            )
            .await?;
        Ok::<_, StepError>(r.success_count())
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Failed);
    let error = run.error.unwrap();
    assert_eq!(error.error_type.as_deref(), Some("WorkflowPanicked"));
    let message = error.error_message.unwrap_or_default();
    assert!(
        message.contains("in the completion predicate: no verdict") && message.contains("fragile"),
        "{message}"
    );
}

#[tokio::test]
async fn a_flat_parallel_shows_its_branch_names_to_the_predicate() {
    let names = Arc::new(Mutex::new(Vec::new()));
    let workflow = {
        let names = names.clone();
        move |mut wf: Workflow, _: ()| {
            let names = names.clone();
            async move {
                let policy = CompletionPolicy::should_complete(move |s| {
                    let listed: Vec<_> = s.items.iter().map(CompletionItem::name).collect();
                    names.lock().unwrap().push(format!("{listed:?}"));
                    // Done once "primary" succeeded.
                    match s.items.iter().find(|i| i.name() == Some("primary")) {
                        Some(i) if i.status() == Some(BatchItemStatus::Succeeded) => {
                            CompletionDecision::succeed()
                        }
                        _ => CompletionDecision::Continue,
                    }
                });
                let config = ParallelConfig::named("lookup")
                    .max_concurrency(1)
                    .nesting(Nesting::Flat)
                    .completion(policy);
                let r = wf
                    .parallel_with(
                        config,
                        vec![
                            Branch::named("primary", |mut wf| async move {
                                wf.step("ask", |_| async { Ok(1u32) }).await
                            }),
                            Branch::new(|mut wf| async move {
                                wf.step("ask", |_| async { Ok(2u32) }).await
                            }),
                        ],
                    )
                    .await?;
                Ok::<_, StepError>((r.completion_reason(), r.into_values()?))
            }
        }
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    assert_eq!(
        run.result,
        Some((CompletionReason::CustomCompletionSucceeded, vec![1]))
    );
    assert!(
        names
            .lock()
            .unwrap()
            .iter()
            .all(|n| n == r#"[Some("primary"), None]"#)
    );
    // Flat: the second branch never started, so nothing of it is recorded.
    let steps = run
        .operations
        .iter()
        .filter(|o| o.op_type == T::Step)
        .count();
    assert_eq!(steps, 1);
}

#[tokio::test]
async fn a_summarized_result_keeps_the_recorded_decision_on_replay() {
    let asked = Counter::new();
    let workflow = {
        let asked = asked.clone();
        move |mut wf: Workflow, _: ()| {
            let asked = asked.clone();
            async move {
                // Fail once two large values are in: too large to checkpoint
                // whole, the result is rebuilt from the branches on replay.
                let policy = CompletionPolicy::should_complete(move |s| {
                    asked.hit();
                    if s.success_count >= 2 {
                        CompletionDecision::fail()
                    } else {
                        CompletionDecision::Continue
                    }
                });
                let r = wf
                    .map_with(
                        MapConfig::named("big")
                            .max_concurrency(1)
                            .completion(policy),
                        0..4u32,
                        |mut wf, x, _| async move {
                            wf.step("chunk", move |_| async move {
                                Ok(format!("{x}").repeat(150 * 1024))
                            })
                            .await
                        },
                    )
                    .await?;
                wf.wait("pause", Duration::from_secs(1)).await;
                Ok::<_, StepError>(format!(
                    "{} {} {}",
                    r.completion_reason(),
                    r.status(),
                    r.total_count()
                ))
            }
        }
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    assert_eq!(
        run.result.as_deref(),
        Some("CUSTOM_COMPLETION_FAILED FAILED 2")
    );
    assert_eq!(
        batch_summary(&run.operations, "big"),
        serde_json::json!({
            "type": "MapResult", "totalCount": 2, "completionReason": "CUSTOM_COMPLETION_FAILED",
            "startedIndexes": [], "startedCount": 0, "successCount": 2, "failureCount": 0,
            "status": "FAILED"
        })
    );
    // Asked only in the first invocation (before each start, after each
    // end): the replay rebuilt the result with the recorded reason.
    assert_eq!(asked.get(), 5);
}

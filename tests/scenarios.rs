//! The end-to-end scenarios of the .NET SDK's first pull request that need
//! no retries, on the local runner: step-wait-step, multiple steps, wait
//! only, a longer wait, replay determinism and a failing step.

use std::time::{Duration, Instant};

use durable_yield::model::{OperationStatus as S, OperationType as T};
use durable_yield::retry::NoRetry;
use durable_yield::{ExecutionStatus, LocalRunner, StepConfig, StepError, Workflow};
use durable_yield_tests::Ids;
use durable_yield_tests::{Counter, shape, step_result};

#[tokio::test]
async fn step_wait_step() {
    let (first, second) = (Counter::new(), Counter::new());
    let workflow = {
        let (first, second) = (first.clone(), second.clone());
        move |mut wf: Workflow, name: String| {
            let (first, second) = (first.clone(), second.clone());
            async move {
                let greeting: String = wf
                    .step("greet", move |_| async move {
                        first.hit();
                        Ok(format!("hello {name}"))
                    })
                    .await?;
                wf.wait("pause", Duration::from_secs(5)).await;
                let shout: String = wf
                    .step("shout", move |_| async move {
                        second.hit();
                        Ok(greeting.to_uppercase())
                    })
                    .await?;
                Ok::<_, StepError>(shout)
            }
        }
    };
    let run = LocalRunner::new()
        .run(&workflow, &"ada".to_owned())
        .await
        .unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded);
    assert_eq!(run.result.as_deref(), Some("HELLO ADA"));
    assert_eq!(run.invocations, 2);
    assert_eq!(run.elapsed, Duration::from_secs(5));
    assert_eq!((first.get(), second.get()), (1, 1));
    assert_eq!(
        shape(&run.operations),
        vec![
            (T::Execution, None, S::Started),
            (T::Step, Some("greet"), S::Succeeded),
            (T::Wait, Some("pause"), S::Succeeded),
            (T::Step, Some("shout"), S::Succeeded),
        ]
    );
    assert_eq!(step_result(&run.operations[1]), Some("\"hello ada\""));
    assert_eq!(step_result(&run.operations[3]), Some("\"HELLO ADA\""));
    let wait = run.operations[2].wait_details.as_ref().unwrap();
    assert_eq!(
        wait.scheduled_end_timestamp,
        run.operations[2].start_timestamp.map(|t| t + 5000)
    );
}

#[tokio::test]
async fn multiple_steps_use_protocol_ids_and_run_once() {
    let runs = Counter::new();
    let workflow = {
        let runs = runs.clone();
        move |mut wf: Workflow, start: u64| {
            let runs = runs.clone();
            async move {
                let mut total = start;
                for i in 0..5u64 {
                    let runs = runs.clone();
                    total = wf
                        .step(format!("add-{i}"), move |ctx| async move {
                            runs.hit();
                            assert_eq!(ctx.attempt(), 1);
                            Ok(total + i)
                        })
                        .await?;
                }
                Ok::<_, StepError>(total)
            }
        }
    };
    let run = LocalRunner::new().run(&workflow, &100u64).await.unwrap();
    assert_eq!(run.result, Some(110));
    assert_eq!(run.invocations, 1);
    assert_eq!(runs.get(), 5);
    let mut ids = Ids::root();
    for (i, op) in run.operations[1..].iter().enumerate() {
        assert_eq!(op.id, ids.next_id().0, "operation {i} has the protocol id");
        assert_eq!(op.name.as_deref(), Some(format!("add-{i}").as_str()));
        assert_eq!(op.sub_type.as_deref(), Some("Step"));
        assert_eq!(op.status, S::Succeeded);
        assert_eq!(op.step_details.as_ref().unwrap().attempt, Some(1));
    }
}

#[tokio::test]
async fn wait_only() {
    let workflow = |mut wf: Workflow, _: ()| async move {
        wf.wait("only", Duration::from_secs(10)).await;
        Ok::<_, StepError>("done".to_owned())
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.result.as_deref(), Some("done"));
    assert_eq!(run.invocations, 2);
    assert_eq!(run.elapsed, Duration::from_secs(10));
    assert_eq!(
        shape(&run.operations),
        vec![
            (T::Execution, None, S::Started),
            (T::Wait, Some("only"), S::Succeeded),
        ]
    );
}

#[tokio::test]
async fn longer_wait_costs_no_wall_time() {
    let workflow = |mut wf: Workflow, _: ()| async move {
        wf.wait("a-week", Duration::from_secs(7 * 24 * 3600)).await;
        wf.wait("a-year", Duration::from_secs(31_622_400)).await;
        Ok::<_, StepError>(())
    };
    let wall = Instant::now();
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded);
    assert_eq!(run.invocations, 3);
    assert_eq!(run.elapsed, Duration::from_secs(7 * 24 * 3600 + 31_622_400));
    // The runner skips time instead of sleeping.
    assert!(wall.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn replay_hands_workflow_code_the_recorded_values() {
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<(u32, u128)>>> = Arc::default();
    let runs = Counter::new();
    let invocation = Counter::new();
    let workflow = {
        let (seen, runs, invocation) = (seen.clone(), runs.clone(), invocation.clone());
        move |mut wf: Workflow, _: ()| {
            let (seen, runs) = (seen.clone(), runs.clone());
            let n = invocation.hit();
            async move {
                // A body whose result differs every time it runs.
                let stamp: u128 = wf
                    .step("stamp", move |_| async move {
                        runs.hit();
                        Ok(std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap()
                            .as_nanos())
                    })
                    .await?;
                seen.lock().unwrap().push((n, stamp));
                wf.wait("w1", Duration::from_secs(1)).await;
                wf.wait("w2", Duration::from_secs(1)).await;
                Ok::<_, StepError>(stamp)
            }
        }
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.invocations, 3);
    assert_eq!(
        runs.get(),
        1,
        "the body ran exactly once across invocations"
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert!(
        seen.iter().all(|s| s.1 == seen[0].1),
        "every invocation saw the same value: {seen:?}"
    );
    assert_eq!(run.result, Some(seen[0].1));
}

#[derive(Debug)]
struct Declined {
    code: u16,
}

impl std::fmt::Display for Declined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "card declined with code {}", self.code)
    }
}

impl std::error::Error for Declined {}

#[tokio::test]
async fn a_failing_step_fails_the_execution_with_its_error() {
    let after = Counter::new();
    let workflow = {
        let after = after.clone();
        move |mut wf: Workflow, _: ()| {
            let after = after.clone();
            async move {
                let _: u32 = wf
                    .step("charge", |_| async { Err(Declined { code: 51 }.into()) })
                    .await?;
                let _: () = wf
                    .step("ship", move |_| async move {
                        after.hit();
                        Ok(())
                    })
                    .await?;
                Ok::<_, StepError>(())
            }
        }
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Failed);
    assert_eq!(after.get(), 0);
    let error = run.error.clone().unwrap();
    assert_eq!(
        error.error_message.as_deref(),
        Some("card declined with code 51")
    );
    assert_eq!(error.error_type.as_deref(), Some("Declined"));
    let step = run.operation("charge").unwrap();
    assert_eq!(step.status, S::Failed);
    assert_eq!(
        step.step_details.as_ref().unwrap().error.as_ref(),
        Some(&error)
    );
    assert!(run.operation("ship").is_none());
}

#[tokio::test]
async fn a_handled_step_error_is_the_same_on_replay() {
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let runs = Counter::new();
    let workflow = {
        let (seen, runs) = (seen.clone(), runs.clone());
        move |mut wf: Workflow, _: ()| {
            let (seen, runs) = (seen.clone(), runs.clone());
            async move {
                // No retries: this test is about replaying a failed step.
                let charged: Result<u32, _> = wf
                    .step_with(
                        StepConfig::named("charge").retry(NoRetry),
                        move |_| async move {
                            runs.hit();
                            Err(Declined { code: 5 }.into())
                        },
                    )
                    .await;
                let error = charged.unwrap_err();
                seen.lock().unwrap().push(error.to_string());
                wf.wait("before-fallback", Duration::from_secs(2)).await;
                let fallback: String = wf
                    .step("invoice", |_| async { Ok("invoice sent".to_owned()) })
                    .await?;
                Ok::<_, StepError>(format!("{fallback} after: {}", error.message().unwrap()))
            }
        }
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(
        run.result.as_deref(),
        Some("invoice sent after: card declined with code 5")
    );
    assert_eq!(runs.get(), 1);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "first run and replay");
    assert_eq!(seen[0], seen[1]);
    assert!(
        seen[0].starts_with("step \"charge\" failed: "),
        "{}",
        seen[0]
    );
}

#[tokio::test]
async fn large_histories_are_paged_in() {
    let workflow = |mut wf: Workflow, n: u32| async move {
        let mut sum = 0u32;
        for i in 0..n {
            sum += wf
                .step(format!("s{i}"), move |_| async move { Ok(i) })
                .await?;
            if i % 4 == 3 {
                wf.wait(format!("w{i}"), Duration::from_secs(1)).await;
            }
        }
        Ok::<_, StepError>(sum)
    };
    let paged = LocalRunner::new()
        .page_size(3)
        .run(&workflow, &20u32)
        .await
        .unwrap();
    let whole = LocalRunner::new().run(&workflow, &20u32).await.unwrap();
    assert_eq!(paged.result, Some(190));
    // The same operations, apart from each execution's own id.
    assert_eq!(paged.operations[1..], whole.operations[1..]);
    assert_eq!(paged.operations.len(), whole.operations.len());
    assert_eq!(paged.invocations, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_send_and_run_on_a_multithreaded_runtime() {
    let workflow = |mut wf: Workflow, x: u32| async move {
        let y: u32 = wf
            .step("inc", move |_| async move {
                tokio::task::yield_now().await; // real async work inside a body is fine
                Ok(x + 1)
            })
            .await?;
        wf.wait("w", Duration::from_secs(1)).await;
        Ok::<_, StepError>(y)
    };
    let handle = tokio::spawn(async move { LocalRunner::new().run(&workflow, &1u32).await });
    let run = handle.await.unwrap().unwrap();
    assert_eq!(run.result, Some(2));
}

#[tokio::test]
async fn unnamed_operations_are_recorded_without_names_and_replay() {
    use durable_yield::WaitConfig;
    let runs = Counter::new();
    let workflow = {
        let runs = runs.clone();
        move |mut wf: Workflow, _: ()| {
            let runs = runs.clone();
            async move {
                let v: u8 = wf
                    .step_with(StepConfig::new(), move |_| async move {
                        runs.hit();
                        Ok(9)
                    })
                    .await?;
                wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
                Ok::<_, StepError>(v)
            }
        }
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.result, Some(9));
    assert_eq!(runs.get(), 1);
    assert_eq!(
        shape(&run.operations),
        vec![
            (T::Execution, None, S::Started),
            (T::Step, None, S::Succeeded),
            (T::Wait, None, S::Succeeded),
        ]
    );
}

/// With an execution timeout, an execution still waiting when its time
/// runs out ends TIMED_OUT at that virtual instant, as the service ends it
/// (an `ExecutionTimedOut` event with the service's message, no further
/// invocation); one that ends in time is not affected.
#[tokio::test]
async fn an_execution_that_outlives_its_timeout_times_out() {
    async fn waits(mut wf: Workflow, minutes: u64) -> Result<u32, StepError> {
        let n: u32 = wf.step("before", |_| async { Ok(1) }).await?;
        wf.wait("long", Duration::from_secs(minutes * 60)).await;
        Ok(n)
    }
    let runner = LocalRunner::new().execution_timeout(Duration::from_secs(600));
    let run = runner.run(&waits, &60).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::TimedOut);
    assert_eq!(run.status.to_string(), "TIMED_OUT");
    assert_eq!(run.result, None);
    let error = run.error.clone().expect("the timeout's error");
    assert_eq!(
        error.error_message.as_deref(),
        Some("Execution timed out after 600 seconds.")
    );
    assert_eq!(run.invocations, 1, "no invocation for the timeout");
    assert_eq!(run.elapsed, Duration::from_secs(600));
    let history = run.history();
    let last = history.events.last().expect("events");
    let last = serde_json::to_value(last).unwrap();
    assert_eq!(last["EventType"], "ExecutionTimedOut");
    assert_eq!(
        last["ExecutionTimedOutDetails"]["Error"]["Payload"]["ErrorMessage"],
        "Execution timed out after 600 seconds."
    );
    assert_eq!(run.operation("long").map(|o| o.status), Some(S::Started));

    // Five minutes of waiting fit in ten.
    let run = runner.run(&waits, &5).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded);
    assert_eq!(run.result, Some(1));
}

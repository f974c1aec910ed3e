//! Step retries, step semantics and typed step errors, on the local runner.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use durable_yield::codecs::MsgPack;
use durable_yield::local::CrashPoint;
use durable_yield::local::TimelineEvent;
use durable_yield::model::{OperationAction, OperationStatus as S};
use durable_yield::retry::{
    ExponentialBackoff, FailedAttempt, FixedDelay, Jitter, NoRetry, RetryStrategyExt,
};
use durable_yield::{
    ExecutionStatus, LocalRun, LocalRunner, StepConfig, StepError, StepFailure, StepSemantics,
    Workflow,
};
use durable_yield_tests::{Counter, drive};
use serde::{Deserialize, Serialize};

/// Records the attempt number of every run of a step body.
type Attempts = Arc<Mutex<Vec<u32>>>;

/// A boxed workflow future returning a string.
type StringRun = std::pin::Pin<Box<dyn Future<Output = Result<String, StepError>> + Send>>;

/// What workflow code saw of a failed step: its message and decoded data.
type Observed = Arc<Mutex<Vec<(String, Option<Declined>)>>>;

/// A workflow of one step, configured by `config`, whose body fails its
/// first `failures` attempts with `error_type`.
fn flaky(
    config: impl Fn() -> StepConfig + Send + Sync + 'static,
    failures: u32,
    error_type: &'static str,
) -> (
    impl Fn(Workflow, ()) -> StringRun + Send + Sync + 'static,
    Attempts,
) {
    let attempts: Attempts = Arc::default();
    let seen = attempts.clone();
    let workflow = move |mut wf: Workflow, _: ()| {
        let seen = seen.clone();
        let config = config();
        Box::pin(async move {
            wf.step_with(config, move |ctx| async move {
                seen.lock().unwrap().push(ctx.attempt());
                if ctx.attempt() <= failures {
                    Err(StepFailure::new(
                        error_type,
                        format!("attempt {} failed", ctx.attempt()),
                    ))
                } else {
                    Ok(format!("ok on attempt {}", ctx.attempt()))
                }
            })
            .await
        }) as StringRun
    };
    (workflow, attempts)
}

/// An at-most-once step "pay" with `retry`.
fn at_most_once(retry: impl durable_yield::retry::RetryStrategy) -> StepConfig {
    StepConfig::named("pay")
        .semantics(StepSemantics::AtMostOncePerRetry)
        .retry(retry)
}

fn seen(attempts: &Attempts) -> Vec<u32> {
    attempts.lock().unwrap().clone()
}

/// The actions of the checkpoint updates applied, in order.
fn actions(run: &LocalRun<String>) -> Vec<OperationAction> {
    run.timeline
        .events
        .iter()
        .filter_map(|e| match e {
            TimelineEvent::Applied { action, .. } => Some(*action),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_retried_step_succeeds() {
    let (workflow, attempts) = flaky(
        || StepConfig::named("flaky").retry(FixedDelay::new(Duration::from_secs(10), 5)),
        2,
        "Unavailable",
    );
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.result.as_deref(), Some("ok on attempt 3"));
    assert_eq!(seen(&attempts), vec![1, 2, 3]);
    assert_eq!(run.invocations, 3);
    assert_eq!(run.elapsed, Duration::from_secs(20));
    let op = run.operation("flaky").unwrap();
    assert_eq!(op.status, S::Succeeded);
    assert_eq!(op.step_details.as_ref().unwrap().attempt, Some(3));
    use OperationAction::*;
    assert_eq!(
        actions(&run),
        vec![Start, Retry, Start, Retry, Start, Succeed]
    );
}

#[tokio::test]
async fn exhausted_retries_fail_the_step_with_the_last_error() {
    let (workflow, attempts) = flaky(
        || StepConfig::named("flaky").retry(FixedDelay::new(Duration::from_secs(5), 3)),
        u32::MAX,
        "Unavailable",
    );
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Failed);
    assert_eq!(seen(&attempts), vec![1, 2, 3]);
    let error = run.error.clone().unwrap();
    assert_eq!(error.error_type.as_deref(), Some("Unavailable"));
    assert_eq!(error.error_message.as_deref(), Some("attempt 3 failed"));
    let op = run.operation("flaky").unwrap();
    assert_eq!(op.status, S::Failed);
    assert_eq!(op.step_details.as_ref().unwrap().attempt, Some(3));
    assert_eq!(run.elapsed, Duration::from_secs(10));
}

#[tokio::test]
async fn the_default_strategy_makes_six_jittered_attempts_deterministically() {
    let (workflow, attempts) = flaky(|| StepConfig::named("flaky"), u32::MAX, "Unavailable");
    let first = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(first.status, ExecutionStatus::Failed);
    assert_eq!(seen(&attempts), vec![1, 2, 3, 4, 5, 6]);
    // Full jitter: each delay is 1 s to its cap (5, 10, 20, 40, 60 s).
    assert!(first.elapsed >= Duration::from_secs(5));
    assert!(
        first.elapsed <= Duration::from_secs(135),
        "{:?}",
        first.elapsed
    );
    // Jitter is drawn from the execution (its ARN and id), the step and
    // the attempt: other executions of the same workflow get other delays
    // (each run here is a new execution with its own ARN). Replays never
    // re-draw: the delay is recorded with the RETRY.
    let mut elapsed = vec![first.elapsed];
    for _ in 0..3 {
        let (workflow, _) = flaky(|| StepConfig::named("flaky"), u32::MAX, "Unavailable");
        let other = LocalRunner::new().run(&workflow, &()).await.unwrap();
        assert_eq!(other.status, ExecutionStatus::Failed);
        elapsed.push(other.elapsed);
    }
    elapsed.dedup();
    assert!(
        elapsed.len() > 1,
        "every execution drew the same delays: {elapsed:?}"
    );
    // Without jitter, the documented delays exactly.
    let (plain, _) = flaky(
        || StepConfig::named("flaky").retry(ExponentialBackoff::new().jitter(Jitter::None)),
        u32::MAX,
        "Unavailable",
    );
    let run = LocalRunner::new().run(&plain, &()).await.unwrap();
    assert_eq!(run.elapsed, Duration::from_secs(5 + 10 + 20 + 40 + 60));
}

#[tokio::test]
async fn a_custom_strategy_decides() {
    let (workflow, attempts) = flaky(
        || {
            StepConfig::named("flaky").retry(|failed: &FailedAttempt| {
                (failed.attempt < 4).then(|| Duration::from_secs(u64::from(failed.attempt)))
            })
        },
        u32::MAX,
        "Unavailable",
    );
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(seen(&attempts), vec![1, 2, 3, 4]);
    assert_eq!(run.elapsed, Duration::from_secs(1 + 2 + 3));
    assert_eq!(run.status, ExecutionStatus::Failed);
}

#[tokio::test]
async fn only_some_errors_are_retried() {
    let strategy = || FixedDelay::new(Duration::from_secs(1), 5).only_error_types(["Unavailable"]);
    let (retried, attempts) = flaky(
        move || StepConfig::named("flaky").retry(strategy()),
        1,
        "Unavailable",
    );
    let run = LocalRunner::new().run(&retried, &()).await.unwrap();
    assert_eq!(run.result.as_deref(), Some("ok on attempt 2"));
    assert_eq!(seen(&attempts), vec![1, 2]);

    let (fatal, attempts) = flaky(
        move || StepConfig::named("flaky").retry(strategy()),
        1,
        "InvalidCard",
    );
    let run = LocalRunner::new().run(&fatal, &()).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Failed);
    assert_eq!(
        seen(&attempts),
        vec![1],
        "a non-retryable error fails at once"
    );
    assert_eq!(run.invocations, 1);
}

#[tokio::test]
async fn an_interrupted_at_most_once_attempt_is_a_failed_attempt() {
    let (workflow, attempts) = flaky(
        || at_most_once(FixedDelay::new(Duration::from_secs(1), 3)),
        0,
        "Unavailable",
    );
    let execution = LocalRunner::new().start(&()).unwrap();
    // Request 1 is the START; the process dies before request 2 (the
    // outcome) reaches the service.
    execution.inject_crash(2, CrashPoint::BeforeRequest);
    drive(&execution, &workflow, 10).await.unwrap();
    let run = execution.finish::<String>().unwrap();
    assert_eq!(run.result.as_deref(), Some("ok on attempt 2"));
    // The body ran in attempt 1 (whose outcome was lost) and in attempt 2;
    // never twice in one attempt.
    assert_eq!(seen(&attempts), vec![1, 2]);
    let op = run.operation("pay").unwrap();
    let details = op.step_details.as_ref().unwrap();
    assert_eq!(details.attempt, Some(2));
    assert_eq!(
        details.error.as_ref().and_then(|e| e.error_type.as_deref()),
        Some("StepInterrupted"),
        "the interrupted attempt's error is recorded with its retry"
    );
    use OperationAction::*;
    assert_eq!(actions(&run), vec![Start, Retry, Start, Succeed]);
}

#[tokio::test]
async fn an_interrupted_at_most_once_attempt_without_retries_fails_the_step() {
    let (workflow, attempts) = flaky(|| at_most_once(NoRetry), 0, "Unavailable");
    let execution = LocalRunner::new().start(&()).unwrap();
    execution.inject_crash(2, CrashPoint::AfterRequest);
    drive(&execution, &workflow, 10).await.unwrap();
    let run = execution.finish::<String>().unwrap();
    // Request 2 (the outcome) was applied, but the process died before the
    // response: the step had succeeded, and replay returns its result.
    assert_eq!(run.result.as_deref(), Some("ok on attempt 1"));
    assert_eq!(seen(&attempts), vec![1]);

    let execution = LocalRunner::new().start(&()).unwrap();
    let (workflow, attempts) = flaky(|| at_most_once(NoRetry), 0, "Unavailable");
    execution.inject_crash(2, CrashPoint::BeforeRequest);
    drive(&execution, &workflow, 10).await.unwrap();
    let run = execution.finish::<String>().unwrap();
    assert_eq!(run.status, ExecutionStatus::Failed);
    assert_eq!(
        run.error.as_ref().and_then(|e| e.error_type.as_deref()),
        Some("StepInterrupted")
    );
    assert_eq!(seen(&attempts), vec![1], "never run again silently");

    // The START was applied but its response lost: the body never ran.
    // The error says what is known, not that the body was running.
    let execution = LocalRunner::new().start(&()).unwrap();
    let (workflow, attempts) = flaky(|| at_most_once(NoRetry), 0, "Unavailable");
    execution.inject_crash(1, CrashPoint::AfterRequest);
    drive(&execution, &workflow, 10).await.unwrap();
    let run = execution.finish::<String>().unwrap();
    assert_eq!(seen(&attempts), Vec::<u32>::new(), "the body never started");
    let error = run.error.unwrap();
    assert_eq!(error.error_type.as_deref(), Some("StepInterrupted"));
    let message = error.error_message.unwrap();
    assert!(
        message.contains("was started (its START was recorded) but no outcome was recorded")
            && message.contains("in full, in part or not at all")
            && !message.contains("while it ran"),
        "{message}"
    );
}

#[tokio::test]
async fn an_interrupted_at_least_once_attempt_runs_again() {
    let (workflow, attempts) = flaky(|| StepConfig::named("pay"), 0, "Unavailable");
    let execution = LocalRunner::new().start(&()).unwrap();
    // START and SUCCEED travel in request 1; the process dies before it.
    execution.inject_crash(1, CrashPoint::BeforeRequest);
    drive(&execution, &workflow, 10).await.unwrap();
    let run = execution.finish::<String>().unwrap();
    assert_eq!(run.result.as_deref(), Some("ok on attempt 1"));
    assert_eq!(
        seen(&attempts),
        vec![1, 1],
        "at least once: attempt 1 ran twice"
    );
}

#[tokio::test]
async fn an_at_most_once_retry_costs_a_request_per_start() {
    let (workflow, attempts) = flaky(
        || at_most_once(FixedDelay::new(Duration::from_secs(1), 3)),
        1,
        "Unavailable",
    );
    let execution = LocalRunner::new().start(&()).unwrap();
    drive(&execution, &workflow, 10).await.unwrap();
    let run = execution.finish::<String>().unwrap();
    assert_eq!(run.result.as_deref(), Some("ok on attempt 2"));
    assert_eq!(seen(&attempts), vec![1, 2]);
    // START | RETRY | START | SUCCEED: each START acknowledged alone.
    assert_eq!(execution.checkpoint_requests(), 4);
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Declined {
    code: u16,
    reason: String,
}

#[tokio::test]
async fn workflow_code_matches_on_typed_errors_identically_on_replay() {
    let observed: Observed = Arc::default();
    let compensations = Counter::new();
    let workflow = {
        let (observed, compensations) = (observed.clone(), compensations.clone());
        move |mut wf: Workflow, _: ()| {
            let (observed, compensations) = (observed.clone(), compensations.clone());
            async move {
                let charged: Result<String, StepError> = wf
                    .step_with(
                        StepConfig::named("charge")
                            .retry(FixedDelay::new(Duration::from_secs(1), 2)),
                        |_| async {
                            Err(StepFailure::new("CardDeclined", "declined by the issuer")
                                .with_data_codec(
                                    &MsgPack,
                                    &Declined {
                                        code: 51,
                                        reason: "insufficient funds".into(),
                                    },
                                )?)
                        },
                    )
                    .await;
                let error = charged.unwrap_err();
                let data: Option<Declined> = error.data_with(&MsgPack).unwrap();
                observed
                    .lock()
                    .unwrap()
                    .push((error.to_string(), data.clone()));
                // Handle it: compensate, then go on after a wait.
                match error.error_type() {
                    Some("CardDeclined") => {
                        let _: () = wf
                            .step("notify-customer", move |_| async move {
                                compensations.hit();
                                Ok(())
                            })
                            .await?;
                    }
                    _ => return Err(error),
                }
                wf.wait("cool-off", Duration::from_secs(60)).await;
                Ok::<_, StepError>(format!("declined {}", data.map_or(0, |d| d.code)))
            }
        }
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.result.as_deref(), Some("declined 51"));
    assert_eq!(compensations.get(), 1);
    let observed = observed.lock().unwrap().clone();
    // Seen live after the last attempt, then replayed on the invocation
    // after the wait: the same error, the same data.
    assert_eq!(observed.len(), 2);
    assert_eq!(observed[0], observed[1]);
    assert_eq!(
        observed[0].0,
        "step \"charge\" failed: CardDeclined: declined by the issuer"
    );
    assert_eq!(
        observed[0].1,
        Some(Declined {
            code: 51,
            reason: "insufficient funds".into()
        })
    );
    // The data travelled as a MessagePack payload in ErrorData.
    let recorded = run
        .operation("charge")
        .unwrap()
        .step_details
        .as_ref()
        .unwrap();
    let data = recorded
        .error
        .as_ref()
        .unwrap()
        .error_data
        .as_deref()
        .unwrap();
    assert!(data.starts_with("msgpack:"), "{data}");
}

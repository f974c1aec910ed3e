//! Codecs of child results, code changes inside a child, the size of
//! operation futures, and a race in a window under crashes.

use super::*;

#[tokio::test]
async fn child_results_use_their_codec() {
    let workflow = |mut wf: Workflow, _: ()| async move {
        let config = ChildConfig::named("packed").codec(durable_yield::codecs::Bincode);
        let v: Vec<u16> = wf
            .child_with(config, |_| async { Ok::<_, StepError>(vec![1u16, 2, 3]) })
            .await?;
        Ok::<_, StepError>(v)
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.result, Some(vec![1, 2, 3]));
    let op = find(&run.operations, "packed");
    assert_ne!(context_result(op), Some("[1,2,3]"), "not JSON");
}

#[tokio::test]
async fn a_code_change_inside_a_child_is_non_deterministic() {
    let v1 = |mut wf: Workflow, _: ()| async move {
        wf.child("c", |mut wf| async move {
            wf.wait("w", Duration::from_secs(5)).await;
            Ok::<_, StepError>(1u32)
        })
        .await
    };
    let v2 = |mut wf: Workflow, _: ()| async move {
        wf.child("c", |mut wf| async move {
            wf.step("w", |_| async { Ok(2u32) }).await
        })
        .await
    };
    let error = changed_in_flight(&v1, &v2).await;
    let message = error.error_message.unwrap();
    assert!(message.contains("in context"), "{message}");
}

/// The future of each durable call lives as long as the call waits, one
/// per map item or branch at once (25,000 of them in a map at the
/// service's limit): what it holds beyond its own state (the fatal path's
/// error, an answer already consumed) is memory per item. Bounds with
/// some room over the sizes measured (a step's future was 952 bytes, 392
/// once the fatal path was boxed and the first answer consumed before the
/// second yield).
#[tokio::test]
async fn operation_futures_stay_small() {
    async fn measure(mut wf: Workflow, _: ()) -> Result<Vec<(String, usize, usize)>, StepError> {
        let mut sizes = Vec::new();
        let mut record = |name: &str, size, bound| sizes.push((name.to_owned(), size, bound));
        let step = wf.step("s", |_| async { Ok(1u32) });
        record("step", std::mem::size_of_val(&step), 448);
        drop(step);
        let wait = wf.wait("w", Duration::from_secs(1));
        record("wait", std::mem::size_of_val(&wait), 256);
        drop(wait);
        let child = wf.child("c", |_| async { Ok::<_, StepError>(1u32) });
        record("child", std::mem::size_of_val(&child), 384);
        drop(child);
        let callback = wf.create_callback::<u32>("cb");
        record("callback", std::mem::size_of_val(&callback), 320);
        drop(callback);
        let waiting = wf.wait_for_callback::<u32, _, _>("wfc", |_, _| async { Ok(()) });
        record("wait_for_callback", std::mem::size_of_val(&waiting), 640);
        drop(waiting);
        let invoke = wf.invoke::<u32, u32>("f", &1);
        record("invoke", std::mem::size_of_val(&invoke), 448);
        drop(invoke);
        Ok(sizes)
    }
    let run = LocalRunner::new().run(&measure, &()).await.unwrap();
    let sizes = run.result.unwrap();
    assert_eq!(sizes.len(), 6);
    for (name, size, bound) in sizes {
        assert!(
            size <= bound,
            "a {name} future is {size} bytes (bound {bound})"
        );
    }
}

/// The future of [`window_race`]: the item statuses and completion reason,
/// and the winners' values.
pub(super) type RaceFuture = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<(String, Vec<u32>), StepError>> + Send>,
>;

/// A race in a window of one branch (the `admission_window` test hook):
/// item 0 waits, so the window widens and item 1 (a child context, then a
/// step) wins; item 0 is abandoned and item 2 never starts. The body of
/// step `x` counts its runs in `runs`.
pub(super) fn window_race(
    runs: Counter,
) -> impl Fn(Workflow, ()) -> RaceFuture + Send + Sync + 'static {
    move |mut wf: Workflow, _: ()| {
        let runs = runs.clone();
        Box::pin(async move {
            let config = MapConfig::named("race")
                .admission_window(1)
                .completion(CompletionPolicy::default().min_successful(1));
            let r = wf
                .map_with(config, 0..3u32, move |mut wf, x, _| {
                    let runs = runs.clone();
                    async move {
                        if x == 0 {
                            wf.wait("slow", Duration::from_secs(60)).await;
                        }
                        let inner = wf
                            .child("c", move |mut wf| async move {
                                wf.step("inner", move |_| async move { Ok(x * 10) }).await
                            })
                            .await?;
                        wf.step("x", move |_| async move {
                            runs.hit();
                            Ok(inner + 1)
                        })
                        .await
                    }
                })
                .await?;
            let shape = format!(
                "{:?} {:?}",
                r.items().iter().map(|i| i.status).collect::<Vec<_>>(),
                r.completion_reason()
            );
            Ok((shape, r.into_values()?))
        })
    }
}

/// Invokes `execution` until it ends, at most `limit` times: a crashed
/// invocation is retried at once (as Lambda retries it), any other moves
/// the virtual clock to the next timer first. (With the clock moved after
/// a crash, item 0's wait of [`window_race`] would be over and item 0
/// would win: a different race, rightly.)
/// Returns the checkpoint requests the invocations that were not
/// crashed sent.
pub(super) async fn retrying<W>(
    execution: &durable_yield::LocalExecution,
    workflow: &W,
    limit: u32,
) -> u64
where
    W: durable_yield::WorkflowFn<(), (String, Vec<u32>)>,
{
    let mut requests = 0;
    for _ in 0..limit {
        if execution.status() != ExecutionStatus::Running {
            return requests;
        }
        if let Some(summary) = execution.invoke(workflow).await {
            requests += summary.checkpoints;
            execution.advance_time();
        }
    }
    panic!("still running after {limit} invocations");
}

/// [`window_race`] crashed before or after each checkpoint request in turn
/// ends as it does uninterrupted: the same result, the same operations and
/// statuses (item 0's CONTEXT and wait left STARTED, no item 2), and step
/// `x` run again only when the crash lost its outcome.
#[tokio::test]
async fn a_race_in_a_window_ends_the_same_under_a_crash_at_any_request() {
    use durable_yield::local::CrashPoint;
    use durable_yield_tests::shape;

    let runs = Counter::new();
    let plain = LocalRunner::new().start(&()).unwrap();
    let requests = retrying(&plain, &window_race(runs.clone()), 20).await;
    let expected = plain.finish::<(String, Vec<u32>)>().unwrap();
    assert_eq!(
        expected.status,
        ExecutionStatus::Succeeded,
        "{:?}",
        expected.error
    );
    let (statuses, values) = expected.result.clone().unwrap();
    assert_eq!(
        statuses,
        format!(
            "{:?} {:?}",
            [BatchItemStatus::Started, BatchItemStatus::Succeeded],
            CompletionReason::MinSuccessfulReached
        ),
        "item 0 abandoned, item 1 won, item 2 never started"
    );
    assert_eq!(values, vec![11]);
    assert_eq!(runs.get(), 1);
    assert!(
        !expected
            .operations
            .iter()
            .any(|o| o.name.as_deref() == Some("map-item-2")),
        "item 2 never started"
    );
    let (mut struck, mut reran) = (0, 0);
    for request in 1..=requests + 1 {
        for point in [CrashPoint::BeforeRequest, CrashPoint::AfterRequest] {
            let runs = Counter::new();
            let execution = LocalRunner::new().start(&()).unwrap();
            execution.inject_crash(request, point);
            retrying(&execution, &window_race(runs.clone()), 20).await;
            let run = execution.finish::<(String, Vec<u32>)>().unwrap();
            let at = format!("crash {point:?} request {request}");
            assert_eq!(run.status, expected.status, "{at}: {:?}", run.error);
            assert_eq!(run.result, expected.result, "{at}");
            assert_eq!(shape(&run.operations), shape(&expected.operations), "{at}");
            // Step `x` runs again only if the crash lost its outcome.
            assert!(runs.get() <= 2, "{at}: x ran {} times", runs.get());
            struck += usize::from(run.invocations > expected.invocations);
            reran += usize::from(runs.get() == 2);
        }
    }
    // The crashes struck (each costs an invocation), and some lost the
    // outcome of `x`, whose body then ran again.
    assert_eq!(struck as u64, 2 * requests, "every crash point struck");
    assert!(reran >= 1, "no crash lost the outcome of x");
}

//! Timeline pictures: a local run's history in the service's shape, read
//! back and drawn as a table and as an HTML Gantt page.

use std::time::Duration;

use durable_yield::history::{ExecutionHistory, Gantt};
use durable_yield::local::CallbackAnswer;
use durable_yield::retry::FixedDelay;
use durable_yield::{
    Branch, LocalRunner, MapConfig, ParallelConfig, StepConfig, StepError, StepFailure, Workflow,
};

/// An order: a flaky charge (retried), an approval callback, a cooling-off
/// wait, a child context that packs items in a map, a parallel notify
/// with a branch that waits, and a step that fails for good.
pub async fn order(mut wf: Workflow, _: ()) -> Result<String, StepError> {
    let charge: String = wf
        .step_with(
            StepConfig::named("charge").retry(FixedDelay::new(Duration::from_secs(20), 3)),
            |ctx| async move {
                if ctx.attempt() < 3 {
                    Err(StepFailure::new("Declined", "the card issuer is busy"))
                } else {
                    Ok("ch_42".to_owned())
                }
            },
        )
        .await?;
    let approved: bool = wf
        .wait_for_callback("approval", |_ctx, id| async move {
            let _ = id;
            Ok(())
        })
        .await?;
    wf.wait("cool-off", Duration::from_secs(60)).await;
    let packed: u32 = wf
        .child("pack", |mut wf| async move {
            let boxes = wf
                .map_with(
                    MapConfig::named("items").max_concurrency(2),
                    vec![1u32, 2, 3],
                    |mut wf, item, _| async move {
                        wf.step("box", move |_| async move { Ok(item) }).await
                    },
                )
                .await?;
            Ok::<u32, StepError>(boxes.into_values()?.into_iter().sum())
        })
        .await?;
    let sent = wf
        .parallel_with(
            ParallelConfig::named("notify"),
            vec![
                Branch::named("email", |mut wf| async move {
                    wf.wait("throttle", Duration::from_secs(30)).await;
                    wf.step("send", |_| async { Ok("mailed".to_owned()) }).await
                }),
                Branch::named("sms", |mut wf| async move {
                    wf.step("send", |_| async { Ok("texted".to_owned()) }).await
                }),
            ],
        )
        .await?;
    let _: Result<u32, StepError> = wf
        .step_with(
            StepConfig::named("loyalty").retry(durable_yield::retry::NoRetry),
            |_| async { Err(StepFailure::new("Unavailable", "loyalty service is down")) },
        )
        .await;
    Ok(format!(
        "{charge} approved={approved} packed={packed} {}",
        sent.into_values()?.join("+")
    ))
}

async fn run() -> (ExecutionHistory, durable_yield::LocalRun<String>) {
    let run = LocalRunner::new()
        .answer_callback(
            // The callback wait_for_callback creates in its context.
            "approval create callback id",
            CallbackAnswer::success(&true).after(Duration::from_secs(45 * 60)),
        )
        .run(&order, &())
        .await
        .unwrap();
    (run.history(), run)
}

#[tokio::test]
async fn a_local_history_reads_back_and_draws() {
    let (history, run) = run().await;
    assert_eq!(
        run.result.as_deref(),
        Some("ch_42 approved=true packed=6 mailed+texted")
    );
    // The history survives its JSON form.
    let json = history.to_json();
    let back = ExecutionHistory::from_json(&json).unwrap();
    assert_eq!(back, history);
    let gantt = Gantt::new(&back);
    if let Ok(dir) = std::env::var("TIMELINE_OUT") {
        std::fs::write(format!("{dir}/history.json"), &json).unwrap();
        std::fs::write(format!("{dir}/timeline.html"), gantt.to_html()).unwrap();
        std::fs::write(format!("{dir}/timeline.txt"), gantt.to_text()).unwrap();
    }
    assert_eq!(gantt.status, "SUCCEEDED");
    assert_eq!(gantt.invocations.len(), run.invocations as usize);
    // Every operation, each context followed by what it holds.
    let rows: Vec<(usize, &str, &str, &str)> = gantt
        .rows
        .iter()
        .map(|r| (r.depth, r.label(), r.op_type, r.status))
        .collect();
    assert_eq!(
        rows,
        [
            (0, "charge", "STEP", "SUCCEEDED"),
            (0, "approval", "CONTEXT", "SUCCEEDED"),
            (1, "approval create callback id", "CALLBACK", "SUCCEEDED"),
            (1, "approval submitter", "STEP", "SUCCEEDED"),
            (0, "cool-off", "WAIT", "SUCCEEDED"),
            (0, "pack", "CONTEXT", "SUCCEEDED"),
            (1, "items", "CONTEXT", "SUCCEEDED"),
            (2, "map-item-0", "CONTEXT", "SUCCEEDED"),
            (3, "box", "STEP", "SUCCEEDED"),
            (2, "map-item-1", "CONTEXT", "SUCCEEDED"),
            (3, "box", "STEP", "SUCCEEDED"),
            (2, "map-item-2", "CONTEXT", "SUCCEEDED"),
            (3, "box", "STEP", "SUCCEEDED"),
            (0, "notify", "CONTEXT", "SUCCEEDED"),
            (1, "email", "CONTEXT", "SUCCEEDED"),
            (2, "throttle", "WAIT", "SUCCEEDED"),
            (2, "send", "STEP", "SUCCEEDED"),
            (1, "sms", "CONTEXT", "SUCCEEDED"),
            (2, "send", "STEP", "SUCCEEDED"),
            (0, "loyalty", "STEP", "FAILED"),
        ]
    );
    // The charge: two failed attempts 20 s apart, then success.
    let charge = &gantt.rows[0];
    let attempts: Vec<(u64, bool, Option<f64>, f64)> = charge
        .attempts
        .iter()
        .map(|a| (a.number, a.failed, a.next_delay, a.end))
        .collect();
    assert_eq!(
        attempts,
        [
            (1, true, Some(20.0), 0.0),
            (2, true, Some(20.0), 20.0),
            (3, false, None, 40.0)
        ]
    );
    assert_eq!(charge.result.as_deref(), Some("\"ch_42\""));
    // The callback was answered 45 minutes after it started.
    let callback = &gantt.rows[2];
    assert_eq!(callback.end.unwrap() - callback.start, 45.0 * 60.0);
    assert_eq!(
        gantt.rows[19].error.as_deref(),
        Some("Unavailable: loyalty service is down")
    );
    let text = gantt.to_text();
    assert!(
        text.contains("duration  47 min 10 s over 6 invocation(s)"),
        "{text}"
    );
    let html = gantt.to_html();
    assert_eq!(html.matches(r#"<g class="bar "#).count(), 20);
    assert_eq!(html.matches(r#"class="delay""#).count(), 2);
    assert_eq!(html.matches(r#"class="cross""#).count(), 3);
}

//! Summaries of results too large to checkpoint (`ChildConfig::summary`,
//! `MapConfig::summary`, `ParallelConfig::summary`: AWS's
//! `summary_generator` / `summaryGenerator`).

use durable_yield::StepConfig;

use super::*;

/// 300 KiB of `c`: over the 256 KiB a context's result may checkpoint.
fn big(c: char) -> String {
    c.to_string().repeat(300 * 1024)
}

#[tokio::test]
async fn a_large_child_result_is_checkpointed_as_its_summary() {
    let made = Counter::new();
    let workflow = {
        let made = made.clone();
        move |mut wf: Workflow, _: ()| {
            let made = made.clone();
            async move {
                let config = ChildConfig::named("report").summary(move |text: &String| {
                    made.hit();
                    format!("{} bytes of {}", text.len(), &text[..1])
                });
                let report: String = wf
                    .child_with(config, |mut wf| async move {
                        wf.step("draft", |_| async { Ok(big('r')) }).await
                    })
                    .await?;
                // Small: checkpointed as it is, no summary asked for.
                let config = ChildConfig::named("note")
                    .summary(|_: &String| panic!("a result that fits needs no summary"));
                let note: String = wf
                    .child_with(config, |_| async { Ok::<_, StepError>("ok".to_owned()) })
                    .await?;
                wf.wait("pause", Duration::from_secs(1)).await;
                Ok::<_, StepError>(format!("{} {note}", report.len()))
            }
        }
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    assert_eq!(
        run.result.as_deref(),
        Some("307200 ok"),
        "rebuilt on replay"
    );
    let report = find(&run.operations, "report");
    assert_eq!(replay_children(report), Some(true));
    assert_eq!(context_result(report), Some("307200 bytes of r"));
    assert_eq!(
        context_result(find(&run.operations, "note")),
        Some("\"ok\"")
    );
    assert!(made.get() >= 1);
}

#[tokio::test]
async fn a_summary_never_outlives_its_context() {
    // A virtual child makes a summary nothing checkpoints; the large child
    // after it, with no generator, records an empty payload, not that text.
    let workflow = |mut wf: Workflow, _: ()| async move {
        let config = ChildConfig::named("scratch")
            .virtual_context()
            .summary(|_: &String| "stale".to_owned());
        let a: String = wf
            .child_with(config, |_| async { Ok::<_, StepError>(big('a')) })
            .await?;
        let b: String = wf
            .child("plain", |_| async { Ok::<_, StepError>(big('b')) })
            .await?;
        Ok::<_, StepError>(a.len() + b.len())
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.result, Some(2 * 300 * 1024));
    let plain = find(&run.operations, "plain");
    assert_eq!(replay_children(plain), Some(true));
    assert_eq!(context_result(plain), Some(""));
}

#[tokio::test]
async fn a_large_batch_summary_carries_the_callers_text() {
    let workflow = |mut wf: Workflow, _: ()| async move {
        let config = MapConfig::named("chunks")
            .summary(|r: &BatchResult<String>| format!("{} chunks", r.success_count()));
        let map = wf
            .map_with(config, 0..3u32, |mut wf, x, _| async move {
                let step = StepConfig::named("chunk");
                wf.step_with(step, move |_| async move {
                    Ok(big(char::from(b'a' + x as u8)).split_off(200 * 1024))
                })
                .await
            })
            .await?;
        let config = ParallelConfig::named("pair").summary(|r: &BatchResult<String>| {
            format!("{} of {}", r.success_count(), r.total_count())
        });
        let pair = wf
            .parallel_with(
                config,
                vec![
                    Branch::new(|_| async { Ok::<_, StepError>(big('x')) }),
                    Branch::new(|_| async { Ok::<_, StepError>("y".to_owned()) }),
                ],
            )
            .await?;
        wf.wait("pause", Duration::from_secs(1)).await;
        Ok::<_, StepError>(map.success_count() + pair.success_count())
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.result, Some(5));
    let summary = |name| batch_summary(&run.operations, name);
    assert_eq!(
        summary("chunks"),
        serde_json::json!({
            "type": "MapResult", "totalCount": 3, "completionReason": "ALL_COMPLETED",
            "startedIndexes": [], "startedCount": 0, "successCount": 3, "failureCount": 0,
            "status": "SUCCEEDED", "summary": "3 chunks"
        })
    );
    let pair = summary("pair");
    assert_eq!(pair["type"], "ParallelResult");
    assert_eq!(pair["summary"], "2 of 2");
    // The text is the last key, as AWS's SDKs write it.
    let text = context_result(find(&run.operations, "pair")).unwrap();
    assert!(text.ends_with(r#""summary":"2 of 2"}"#), "{text}");
}

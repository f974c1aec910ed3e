//! The workflows of the map (9-x) requirements.

use super::*;

/// The map configuration most requirements use: named "map", one item at
/// a time (a deterministic history).
pub(super) fn one_at_a_time<I>() -> MapConfig<I> {
    MapConfig::named("map").max_concurrency(1)
}

pub(super) fn values<T: Serialize>(
    result: BatchResult<T>,
) -> Result<Value, durable_yield::BoxError> {
    Ok(json!(result.into_values()?))
}

/// `{completionReason, status, successCount, failureCount, totalCount}`.
pub(super) fn projection<T>(result: &BatchResult<T>) -> Value {
    json!({
        "completionReason": result.completion_reason().as_str(),
        "status": result.status().as_str(),
        "successCount": result.success_count(),
        "failureCount": result.failure_count(),
        "totalCount": result.total_count(),
    })
}

pub(super) fn strings(input: &Value) -> Vec<String> {
    input
        .as_array()
        .map(|a| a.iter().map(text).collect())
        .unwrap_or_default()
}

pub(super) fn numbers(input: &Value) -> Vec<i64> {
    input
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default()
}

pub(super) async fn map_greetings(mut wf: Workflow, input: Value) -> Outcome {
    let result = wf
        .map_with(one_at_a_time(), strings(&input), |mut wf, item, _| async move {
            echo(&mut wf, "greet", format!("Hello, {item}!")).await
        })
        .await?;
    values(result)
}

pub(super) async fn map_doubles_unnamed(mut wf: Workflow, input: Value) -> Outcome {
    let config = MapConfig::new().max_concurrency(1);
    let result = wf
        .map_with(config, numbers(&input), |_, item, _| async move {
            Ok::<_, StepError>(item * 2)
        })
        .await?;
    values(result)
}

pub(super) async fn map_item_plus_index(mut wf: Workflow, input: Value) -> Outcome {
    let result = wf
        .map_with(
            one_at_a_time(),
            numbers(&input),
            |_, item, index| async move { Ok::<_, StepError>(item + index as i64) },
        )
        .await?;
    values(result)
}

pub(super) async fn map_empty(mut wf: Workflow, _: Value) -> Outcome {
    let result = wf
        .map_with(
            one_at_a_time(),
            Vec::<i64>::new(),
            |_, item, _| async move { Ok::<_, StepError>(item) },
        )
        .await?;
    values(result)
}

/// An item that fails when it is `"fail"` and returns itself otherwise.
pub(super) async fn ok_or_fail(
    _: Workflow,
    item: &'static str,
    _: usize,
) -> Result<String, StepFailure> {
    if item == "fail" {
        Err(StepFailure::new("Error", "the item fails"))
    } else {
        Ok(item.to_owned())
    }
}

pub(super) async fn map_fail_fast(mut wf: Workflow, _: Value) -> Outcome {
    let config = one_at_a_time().completion(CompletionPolicy::default().tolerated_failure_count(0));
    let result = wf
        .map_with(config, ["ok", "fail", "ok"], ok_or_fail)
        .await?;
    Ok(projection(&result))
}

pub(super) async fn map_rethrows(mut wf: Workflow, _: Value) -> Outcome {
    let config = one_at_a_time().completion(CompletionPolicy::default().tolerated_failure_count(0));
    let result = wf.map_with(config, ["fail", "ok"], ok_or_fail).await?;
    values(result)
}

pub(super) async fn map_min_successful(mut wf: Workflow, _: Value) -> Outcome {
    let config = one_at_a_time().completion(CompletionPolicy::default().min_successful(2));
    let result = wf
        .map_with(config, ["a", "b", "c", "d"], ok_or_fail)
        .await?;
    let p = projection(&result);
    Ok(json!({
        "completionReason": p["completionReason"],
        "successCount": p["successCount"],
        "totalCount": p["totalCount"],
    }))
}

pub(super) async fn map_one_failure_tolerated(mut wf: Workflow, _: Value) -> Outcome {
    let config = one_at_a_time().completion(CompletionPolicy::default().tolerated_failure_count(1));
    let result = wf
        .map_with(config, ["ok", "fail", "ok"], ok_or_fail)
        .await?;
    Ok(projection(&result))
}

pub(super) fn without_status(p: Value) -> Value {
    json!({
        "completionReason": p["completionReason"],
        "successCount": p["successCount"],
        "failureCount": p["failureCount"],
        "totalCount": p["totalCount"],
    })
}

pub(super) async fn map_failures_exceed_count(mut wf: Workflow, _: Value) -> Outcome {
    let config = one_at_a_time().completion(CompletionPolicy::default().tolerated_failure_count(1));
    let result = wf
        .map_with(config, ["fail", "fail", "ok"], ok_or_fail)
        .await?;
    Ok(without_status(projection(&result)))
}

pub(super) async fn map_failures_exceed_percentage(mut wf: Workflow, _: Value) -> Outcome {
    let config =
        one_at_a_time().completion(CompletionPolicy::default().tolerated_failure_percentage(25.0));
    let result = wf
        .map_with(config, ["fail", "fail", "ok", "ok"], ok_or_fail)
        .await?;
    Ok(without_status(projection(&result)))
}

pub(super) async fn map_concurrent(mut wf: Workflow, _: Value) -> Outcome {
    let config = MapConfig::named("map").max_concurrency(2);
    let result = wf
        .map_with(config, ["r0", "r1", "r2"], |_, item, _| async move {
            Ok::<_, StepError>(item.to_owned())
        })
        .await?;
    values(result)
}

pub(super) async fn map_flat(mut wf: Workflow, _: Value) -> Outcome {
    let config = one_at_a_time().nesting(Nesting::Flat);
    let result = wf
        .map_with(config, ["fa", "fb"], |mut wf, item, _| async move {
            echo(&mut wf, "item", item.to_owned()).await
        })
        .await?;
    values(result)
}

pub(super) async fn map_named_items(mut wf: Workflow, input: Value) -> Outcome {
    let config = one_at_a_time().item_namer(|item: &i64, _| format!("item-{item}"));
    let result = wf
        .map_with(config, numbers(&input), |_, item, _| async move {
            Ok::<_, StepError>(item * 10)
        })
        .await?;
    values(result)
}

pub(super) async fn map_item_codec(mut wf: Workflow, _: Value) -> Outcome {
    let config = MapConfig::named("serdes")
        .max_concurrency(1)
        .item_codec(WRAPPED);
    let result = wf
        .map_with(config, ["x", "y"], |_, item, _| async move {
            Ok::<_, StepError>(item.to_uppercase())
        })
        .await?;
    values(result)
}

pub(super) async fn map_wait_in_item(mut wf: Workflow, _: Value) -> Outcome {
    let result = wf
        .map_with(
            one_at_a_time(),
            [0_usize, 1],
            |mut wf, item, _| async move {
                if item == 1 {
                    wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
                }
                echo(&mut wf, "item", format!("r{item}")).await
            },
        )
        .await?;
    values(result)
}

pub(super) async fn map_large_results(mut wf: Workflow, _: Value) -> Outcome {
    let result = wf
        .map_with(one_at_a_time(), 0..4_usize, |_, item, _| async move {
            Ok::<_, StepError>(format!("{item}").repeat(70 * 1024))
        })
        .await?;
    Ok(json!({ "successCount": result.success_count(), "totalCount": result.total_count() }))
}

pub(super) async fn map_then_wait(mut wf: Workflow, _: Value) -> Outcome {
    let result = wf
        .map_with(one_at_a_time(), ["a", "b"], |_, item, _| async move {
            Ok::<_, StepError>(item.to_uppercase())
        })
        .await?;
    wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
    values(result)
}

pub(super) async fn map_failure_then_wait(mut wf: Workflow, _: Value) -> Outcome {
    let config = one_at_a_time().completion(CompletionPolicy::default().tolerated_failure_count(1));
    let result = wf.map_with(config, ["ok", "fail"], ok_or_fail).await?;
    wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
    Ok(projection(&result))
}

pub(super) async fn upper_map_with_batch_codec(
    wf: &mut Workflow,
) -> Result<BatchResult<String>, StepError> {
    let config = one_at_a_time().batch_codec(OP_SERDE);
    wf.map_with(config, ["x", "y"], |_, item, _| async move {
        Ok::<_, StepError>(item.to_uppercase())
    })
    .await
}

pub(super) async fn map_batch_codec(mut wf: Workflow, _: Value) -> Outcome {
    values(upper_map_with_batch_codec(&mut wf).await?)
}

pub(super) async fn map_batch_codec_then_wait(mut wf: Workflow, _: Value) -> Outcome {
    let result = upper_map_with_batch_codec(&mut wf).await?;
    wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
    values(result)
}

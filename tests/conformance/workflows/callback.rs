//! The workflows of the callbacks (4-x) requirements.

use super::*;

pub(super) async fn await_named(
    wf: &mut Workflow,
    config: CallbackConfig,
) -> Result<Value, CallbackError> {
    let callback = wf.create_callback::<Value>(config).await;
    wf.callback_result(&callback).await
}

pub(super) async fn callback_basic(mut wf: Workflow, input: Value) -> Outcome {
    Ok(await_named(&mut wf, CallbackConfig::named(text(&input))).await?)
}

pub(super) async fn callback_approval(mut wf: Workflow, _: Value) -> Outcome {
    Ok(await_named(&mut wf, CallbackConfig::named("approval")).await?)
}

pub(super) async fn callback_timeout(mut wf: Workflow, input: Value) -> Outcome {
    let config = CallbackConfig::named(text(&input)).timeout(Duration::from_secs(5));
    Ok(await_named(&mut wf, config).await?)
}

pub(super) async fn callback_heartbeat_timeout(mut wf: Workflow, input: Value) -> Outcome {
    let config = CallbackConfig::named(text(&input)).heartbeat_timeout(Duration::from_secs(5));
    Ok(await_named(&mut wf, config).await?)
}

pub(super) async fn callback_kept_alive(mut wf: Workflow, input: Value) -> Outcome {
    let config = CallbackConfig::named(text(&input)).heartbeat_timeout(Duration::from_secs(10));
    Ok(await_named(&mut wf, config).await?)
}

pub(super) async fn callback_then_step(mut wf: Workflow, input: Value) -> Outcome {
    let callback = wf
        .create_callback::<Value>(CallbackConfig::named(text(&input)))
        .await;
    echo(&mut wf, "between", "work".into()).await?;
    Ok(wf.callback_result(&callback).await?)
}

pub(super) async fn callback_timeout_then_step(mut wf: Workflow, input: Value) -> Outcome {
    let config = CallbackConfig::named(text(&input)).timeout(Duration::from_secs(5));
    let callback = wf.create_callback::<Value>(config).await;
    echo(&mut wf, "between", "work".into()).await?;
    Ok(wf.callback_result(&callback).await?)
}

pub(super) async fn callback_then_wait(mut wf: Workflow, input: Value) -> Outcome {
    let callback = wf
        .create_callback::<Value>(CallbackConfig::named(text(&input)))
        .await;
    wf.wait(WaitConfig::new(), Duration::from_secs(5)).await;
    Ok(wf.callback_result(&callback).await?)
}

pub(super) async fn callback_timeout_during_wait(mut wf: Workflow, input: Value) -> Outcome {
    let config = CallbackConfig::named(text(&input)).timeout(Duration::from_secs(3));
    let callback = wf.create_callback::<Value>(config).await;
    wf.wait(WaitConfig::new(), Duration::from_secs(6)).await;
    Ok(wf.callback_result(&callback).await?)
}

pub(super) async fn callback_then_wait_after(mut wf: Workflow, input: Value) -> Outcome {
    let value = await_named(&mut wf, CallbackConfig::named(text(&input))).await?;
    wf.wait(WaitConfig::new(), Duration::from_secs(2)).await;
    Ok(value)
}

pub(super) async fn callback_failure_caught(mut wf: Workflow, input: Value) -> Outcome {
    let message = match await_named(&mut wf, CallbackConfig::named(text(&input))).await {
        Ok(v) => format!("approved: {v}"),
        Err(e) => format!("rejected: {}", e.message().unwrap_or_default()),
    };
    wf.wait(WaitConfig::new(), Duration::from_secs(2)).await;
    Ok(json!(message))
}

pub(super) async fn callback_timeout_caught(mut wf: Workflow, input: Value) -> Outcome {
    let config = CallbackConfig::named(text(&input)).timeout(Duration::from_secs(3));
    let message = match await_named(&mut wf, config).await {
        Ok(v) => format!("answered: {v}"),
        Err(e) if e.is_timeout() => "timed out".to_owned(),
        Err(e) => return Err(e.into()),
    };
    wf.wait(WaitConfig::new(), Duration::from_secs(2)).await;
    Ok(json!(message))
}

/// Days from 1970-01-01 to the civil date `y-m-d` (proleptic Gregorian).
pub(super) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Epoch seconds of an RFC 3339 UTC time (`2026-01-01T00:00:00.000Z`).
pub(super) fn epoch_seconds(text: &str) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let days = days_from_civil(num(0..4)?, num(5..7)?, num(8..10)?);
    Some(days * 86_400 + num(11..13)? * 3_600 + num(14..16)? * 60 + num(17..19)?)
}

pub(super) async fn callback_with_date(mut wf: Workflow, input: Value) -> Outcome {
    let callback = wf
        .create_callback_with::<Value, _>(CallbackConfig::named(text(&input)).codec(WITH_DATE))
        .await;
    let received = wf.callback_result(&callback).await?;
    Ok(json!({ "received": received }))
}

pub(super) async fn callback_as_number(mut wf: Workflow, input: Value) -> Outcome {
    let callback = wf
        .create_callback_with::<i64, _>(CallbackConfig::named(text(&input)).codec(AS_NUMBER))
        .await;
    let count = wf.callback_result(&callback).await?;
    Ok(json!({ "count": count, "doubled": count * 2 }))
}

pub(super) fn names(input: &Value) -> (String, String) {
    let name = |i: usize| input.get(i).map(text).unwrap_or_default();
    (name(0), name(1))
}

pub(super) async fn callbacks_one_after_another(mut wf: Workflow, input: Value) -> Outcome {
    let (a, b) = names(&input);
    let first = await_named(&mut wf, CallbackConfig::named(a)).await?;
    let second = await_named(&mut wf, CallbackConfig::named(b)).await?;
    Ok(json!([first, second]))
}

pub(super) async fn callbacks_awaited_in_order(mut wf: Workflow, input: Value) -> Outcome {
    let (a, b) = names(&input);
    let first = wf.create_callback::<Value>(CallbackConfig::named(a)).await;
    let second = wf.create_callback::<Value>(CallbackConfig::named(b)).await;
    let first = wf.callback_result(&first).await?;
    let second = wf.callback_result(&second).await?;
    Ok(json!([first, second]))
}

pub(super) async fn callbacks_awaited_in_reverse(mut wf: Workflow, input: Value) -> Outcome {
    let (a, b) = names(&input);
    let first = wf.create_callback::<Value>(CallbackConfig::named(a)).await;
    let second = wf.create_callback::<Value>(CallbackConfig::named(b)).await;
    let second = wf.callback_result(&second).await?;
    let first = wf.callback_result(&first).await?;
    Ok(json!([first, second]))
}

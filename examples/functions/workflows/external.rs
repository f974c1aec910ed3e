//! Callbacks and wait-for-condition (the `external` function).

use super::*;

/// The scenarios of the `external` function: callbacks and
/// wait-for-condition, picked by the input's `scenario`.
pub(crate) async fn external(
    mut wf: Workflow,
    input: serde_json::Value,
) -> Result<String, StepError> {
    let secs = |key: &str| Duration::from_secs(input[key].as_u64().unwrap_or(0));
    match input["scenario"].as_str().unwrap_or("") {
        // One callback, with the time-outs of the input; its answer (or
        // how it ended) is the result.
        "callback" => {
            let config = CallbackConfig::named("approval")
                .timeout(secs("timeout"))
                .heartbeat_timeout(secs("heartbeat"));
            let cb = wf.create_callback_with::<String, _>(config).await;
            let id = cb.id().to_owned();
            let _: bool = wf
                .step("notify", move |_| async move { Ok(!id.is_empty()) })
                .await?;
            Ok(match wf.callback_result(&cb).await {
                Ok(v) => format!("value: {v}"),
                Err(e) => format!(
                    "{:?} {}: {}",
                    e.ending(),
                    e.error_type().unwrap_or(""),
                    e.message().unwrap_or("")
                ),
            })
        }
        // Two callbacks, awaited in the reverse order.
        "two-callbacks" => {
            let first = wf.create_callback::<u32>("first").await;
            let second = wf.create_callback::<u32>("second").await;
            let b = wf.callback_result(&second).await?;
            let a = wf.callback_result(&first).await?;
            Ok(format!("{a}-{b}"))
        }
        // A wait-for-callback whose submitter fails once and is retried.
        "wait-for-callback" => {
            let config = WaitForCallbackConfig::named("approval")
                .timeout(Duration::from_secs(60))
                .submitter_retry(FixedDelay::new(Duration::from_secs(1), 3));
            let verdict: String = wf
                .wait_for_callback_with(config, |ctx, id| async move {
                    if ctx.attempt() == 1 {
                        return Err(StepFailure::new("MailDown", format!("could not send {id}")));
                    }
                    Ok(())
                })
                .await?;
            Ok(format!("verdict: {verdict}"))
        }
        // A chained invoke of the function `target` with `input`.
        "invoke" => {
            let target = input["target"].as_str().unwrap_or("").to_owned();
            let result: Result<serde_json::Value, InvokeError> =
                wf.invoke(target, &input["input"]).await;
            Ok(match result {
                Ok(v) => format!("result: {v}"),
                Err(e) => format!("{:?} {}", e.ending(), e.error_type().unwrap_or("")),
            })
        }
        // A counter polled until it reaches `target`, 1 s then 2 s apart,
        // `max` checks at most.
        "condition" => {
            let target = input["target"].as_u64().unwrap_or(3);
            let strategy = ExponentialBackoff::new()
                .initial_delay(Duration::from_secs(1))
                .backoff_rate(2.0)
                .max_attempts(input["max"].as_u64().unwrap_or(10) as u32)
                .jitter(Jitter::None);
            let config = ConditionConfig::named("count").strategy(strategy);
            let n = wf
                .wait_for_condition_with(config, 0u64, move |_, n| async move {
                    Ok(if n + 1 >= target {
                        Condition::Met(n + 1)
                    } else {
                        Condition::NotMet(n + 1)
                    })
                })
                .await?;
            Ok(format!("reached {n}"))
        }
        other => Ok(format!("no scenario {other:?}")),
    }
}

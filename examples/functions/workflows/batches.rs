//! Replay-safe values, child contexts, maps and parallels (the `concurrency` function).

use super::*;

/// What [`replay_safe`] returns.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ReplaySafe {
    arn: String,
    key: String,
    now_ms: u64,
    token: u64,
    uuid: String,
    later_ms: u64,
}

/// The execution ARN, a step's idempotency key and replay-safe values,
/// recorded before a one-second wait and returned after it (by a replay).
pub(crate) async fn replay_safe(
    mut wf: Workflow,
    _: serde_json::Value,
) -> Result<ReplaySafe, StepError> {
    let arn = wf.execution_arn().to_owned();
    let key: String = wf
        .step("charge", |ctx| async move { Ok(ctx.idempotency_key()) })
        .await?;
    let ms = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    };
    let now_ms = ms(wf.now().await?);
    let token: u64 = wf.random().await?;
    let uuid = wf.uuid().await?;
    wf.wait("pause", Duration::from_secs(1)).await;
    let later_ms = ms(wf.now().await?);
    Ok(ReplaySafe {
        arn,
        key,
        now_ms,
        token,
        uuid,
        later_ms,
    })
}

/// An error of the user's, raised inside a child context.
#[derive(Debug)]
pub(crate) struct OutOfStock;

impl std::fmt::Display for OutOfStock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no stock left")
    }
}

impl std::error::Error for OutOfStock {}

/// Doubles `x` in a step named `double`.
pub(crate) async fn double(mut wf: Workflow, x: u64) -> Result<u64, StepError> {
    wf.step("double", move |_| async move { Ok(x * 2) }).await
}

/// JSON whose storage times out once per execution: the first value it
/// encodes in an execution fails transiently (`CodecError::Unavailable`),
/// which fails the invocation for the service to invoke it again.
#[derive(Clone, Copy)]
pub(crate) struct UnreachableOnce;

/// The executions whose [`UnreachableOnce`] encode has failed.
pub(crate) static UNREACHED: std::sync::Mutex<std::collections::BTreeSet<String>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

impl durable_yield::codecs::Codec for UnreachableOnce {
    fn id(&self) -> &str {
        "unreachable-once"
    }
    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        cx: &durable_yield::codecs::PayloadContext<'_>,
    ) -> Result<Vec<u8>, durable_yield::codecs::CodecError> {
        let first = UNREACHED
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(cx.execution_arn().to_owned());
        if first {
            return Err(durable_yield::codecs::CodecError::unavailable(
                self.id(),
                "the store timed out",
            ));
        }
        Json.encode(value, cx)
    }
    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        bytes: &[u8],
        cx: &durable_yield::codecs::PayloadContext<'_>,
    ) -> Result<T, durable_yield::codecs::CodecError> {
        Json.decode(bytes, cx)
    }
    fn is_text(&self) -> bool {
        true
    }
    fn tagged(&self) -> bool {
        false
    }
}

/// The scenarios of the `concurrency` function: child contexts, map and
/// parallel, picked by the input's `scenario`.
pub(crate) async fn concurrency(
    mut wf: Workflow,
    input: serde_json::Value,
) -> Result<String, StepError> {
    let scenario = input["scenario"].as_str().unwrap_or("").to_owned();
    match scenario.as_str() {
        // A map of two items whose steps end in the same round; the second
        // one's result cannot be encoded the first time ([`UnreachableOnce`]):
        // the invocation fails, and the service invokes the function again.
        // Each body run appends `item-<i>` to the file `marker`.
        "transient-codec" => {
            let marker = input["marker"].as_str().unwrap_or("").to_owned();
            let items = wf
                .map("items", vec![0u64, 1], move |mut wf, i: u64, _| {
                    let marker = marker.clone();
                    async move {
                        let body = move |_| async move {
                            let mut file = std::fs::OpenOptions::new()
                                .create(true)
                                .append(true)
                                .open(&marker)?;
                            writeln!(file, "item-{i}")?;
                            Ok(10 * (i + 1))
                        };
                        let config = StepConfig::named("work");
                        let v: u64 = if i == 0 {
                            wf.step_with(config, body).await?
                        } else {
                            wf.step_with(config.codec(UnreachableOnce), body).await?
                        };
                        Ok::<_, StepError>(v)
                    }
                })
                .await?;
            let sum: u64 = items.into_values()?.into_iter().sum();
            Ok(sum.to_string())
        }
        // A child holding a step and a grandchild that waits, then steps.
        "nested-children" => {
            let v: u64 = wf
                .child("outer", |mut wf| async move {
                    let a: u64 = wf.step("in-outer", |_| async { Ok(4u64) }).await?;
                    wf.child("inner", move |mut wf| async move {
                        wf.wait("nap", Duration::from_secs(1)).await;
                        wf.step("in-inner", move |_| async move { Ok(a * 10) })
                            .await
                    })
                    .await
                })
                .await?;
            Ok(format!("{v}"))
        }
        // A child that fails; the parent handles the error and goes on.
        "child-fails" => {
            let reserved: Result<u64, StepError> = wf
                .child("reserve", |mut wf| async move {
                    let left: u64 = wf
                        .step("check", |_| async { Ok(0u64) })
                        .await
                        .map_err(|_| OutOfStock)?;
                    if left == 0 { Err(OutOfStock) } else { Ok(left) }
                })
                .await;
            let error = reserved.err().map(|e| e.to_string()).unwrap_or_default();
            wf.step("backorder", move |_| async move {
                Ok(format!("handled: {error}"))
            })
            .await
        }
        // A child result over 256 KiB: checkpointed with ReplayChildren,
        // rebuilt by a replay after the wait.
        "large-child" => {
            let big: String = wf
                .child("big", |mut wf| async move {
                    let mut parts = String::new();
                    for i in 0..3 {
                        let part: String = wf
                            .step(format!("part-{i}"), move |_| async move {
                                Ok(format!("{i}").repeat(100 * 1024))
                            })
                            .await?;
                        parts.push_str(&part);
                    }
                    Ok::<_, StepError>(parts)
                })
                .await?;
            // As large, with a summary checkpointed instead.
            let config = ChildConfig::named("summarized")
                .summary(|text: &String| format!("{} bytes of s", text.len()));
            let summarized: String = wf
                .child_with(config, |_| async {
                    Ok::<_, StepError>("s".repeat(300 * 1024))
                })
                .await?;
            wf.wait("pause", Duration::from_secs(1)).await;
            assert_eq!(summarized.len(), big.len());
            Ok(format!("{} bytes", big.len()))
        }
        "map-basic" => {
            let r = wf
                .map("double-all", vec![1u64, 2, 3], |wf, x, _| double(wf, x))
                .await?;
            Ok(format!("{:?}", r.into_values()?))
        }
        "empty-map" => {
            let r = wf
                .map("nothing", Vec::<u64>::new(), |wf, x, _| double(wf, x))
                .await?;
            Ok(format!("{} {:?}", r.completion_reason(), r.into_values()?))
        }
        // 4 items one at a time, done after 2 successes.
        "min-successful" => {
            let config = MapConfig::named("first-two")
                .max_concurrency(1)
                .completion(CompletionPolicy::default().min_successful(2));
            let r = wf
                .map_with(config, vec![1u64, 2, 3, 4], |wf, x, _| double(wf, x))
                .await?;
            Ok(format!("{} {:?}", r.completion_reason(), r.into_values()?))
        }
        // 3 items one at a time, one failure tolerated: items 0 and 1 fail,
        // item 2 never starts.
        "tolerated-failures" => {
            let config = MapConfig::named("fragile")
                .max_concurrency(1)
                .completion(CompletionPolicy::default().tolerated_failure_count(1));
            let r = wf
                .map_with(config, vec![0u64, 1, 2], |mut wf, x, _| async move {
                    let config = StepConfig::named("try").retry(NoRetry);
                    wf.step_with(config, move |_| async move {
                        if x < 2 {
                            Err(StepFailure::new("Broken", format!("item {x} broke")))
                        } else {
                            Ok(x)
                        }
                    })
                    .await
                })
                .await?;
            let statuses: Vec<String> = r
                .items()
                .iter()
                .map(|i| format!("{:?}", i.status))
                .collect();
            Ok(format!(
                "{} {} total={} {}",
                r.completion_reason(),
                r.status(),
                r.total_count(),
                statuses.join(",")
            ))
        }
        // A custom predicate, 4 items one at a time: done after three
        // successes, failed at the first failure (item 1's): items 2 and 3
        // never start.
        "should-complete" => {
            let policy = CompletionPolicy::should_complete(|s| {
                if s.success_count >= 3 {
                    CompletionDecision::succeed()
                } else if s.failure_count >= 1 {
                    CompletionDecision::fail()
                } else {
                    CompletionDecision::Continue
                }
            });
            let config = MapConfig::named("quorum")
                .max_concurrency(1)
                .completion(policy);
            let r = wf
                .map_with(config, vec![0u64, 1, 2, 3], |mut wf, x, _| async move {
                    let config = StepConfig::named("ack").retry(NoRetry);
                    wf.step_with(config, move |_| async move {
                        if x == 1 {
                            Err(StepFailure::new("Unreachable", format!("replica {x}")))
                        } else {
                            Ok(x)
                        }
                    })
                    .await
                })
                .await?;
            Ok(batch_outcome(&r))
        }
        // Item 1 waits three seconds; items 0 and 2 finish meanwhile, in
        // the first invocation (long enough that a loaded machine does not
        // see the wait end before that invocation does).
        "wait-in-branch" => {
            let r = wf
                .map("mixed", vec![0u64, 1, 2], |mut wf, x, _| async move {
                    if x == 1 {
                        wf.wait("slow", Duration::from_secs(3)).await;
                    }
                    double(wf, x).await
                })
                .await?;
            Ok(format!("{:?}", r.into_values()?))
        }
        // Each map item runs a parallel of two branches.
        "parallel-in-map" => {
            let r = wf
                .map("outer", vec![1u64, 2], |mut wf, x, _| async move {
                    let inner = wf
                        .parallel(
                            "inner",
                            vec![
                                Branch::named("double", move |wf| double(wf, x)),
                                Branch::named("square", move |mut wf| async move {
                                    wf.step("square", move |_| async move { Ok(x * x) }).await
                                }),
                            ],
                        )
                        .await?;
                    Ok::<_, StepError>(inner.into_values()?.iter().sum::<u64>())
                })
                .await?;
            Ok(format!("{:?}", r.into_values()?))
        }
        // Item 0 is the slowest: it finishes last, its value comes first.
        "index-order" => {
            let r = wf
                .map("ordered", vec![0u64, 1, 2], |mut wf, x, _| async move {
                    wf.step("work", move |_| async move {
                        tokio::time::sleep(Duration::from_millis(300 - 150 * x)).await;
                        Ok(x)
                    })
                    .await
                })
                .await?;
            Ok(format!("{:?}", r.into_values()?))
        }
        // Four results of 100 KiB: the batch result is over 256 KiB.
        "large-batch" => {
            let config =
                MapConfig::named("big").summary(|r: &durable_yield::BatchResult<String>| {
                    format!("{} chunks", r.success_count())
                });
            let r = wf
                .map_with(config, vec![0u64, 1, 2, 3], |mut wf, x, _| async move {
                    wf.step("chunk", move |_| async move {
                        Ok(format!("{x}").repeat(100 * 1024))
                    })
                    .await
                })
                .await?;
            wf.wait("pause", Duration::from_secs(1)).await;
            let total: usize = r.successes().map(String::len).sum();
            Ok(format!("{total} bytes"))
        }
        // One item at a time, each waiting a second.
        "one-at-a-time" => {
            let config = MapConfig::named("serial").max_concurrency(1);
            let r = wf
                .map_with(config, vec![1u64, 2, 3], |mut wf, x, _| async move {
                    wf.wait("breathe", Duration::from_secs(1)).await;
                    double(wf, x).await
                })
                .await?;
            Ok(format!("{:?}", r.into_values()?))
        }
        // Named branches; one waits, so the invocation suspends and the
        // parallel is replayed.
        "named-parallel" => {
            let r = wf
                .parallel_with(
                    ParallelConfig::named("notify"),
                    vec![
                        Branch::named("email", |mut wf| async move {
                            wf.wait("throttle", Duration::from_secs(1)).await;
                            wf.step("send", |_| async { Ok("mailed".to_owned()) }).await
                        }),
                        Branch::named("sms", |mut wf| async move {
                            wf.step("send", |_| async { Ok("texted".to_owned()) }).await
                        }),
                    ],
                )
                .await?;
            Ok(r.into_values()?.join("+"))
        }
        // A flat map of 3 items (no CONTEXT per item); item 1 waits a
        // second, so the map is replayed by running the items again.
        "flat-map" => {
            let config = MapConfig::named("flat").nesting(Nesting::Flat);
            let r = wf
                .map_with(config, vec![1u64, 2, 3], |mut wf, x, _| async move {
                    if x == 2 {
                        wf.wait(format!("nap-{x}"), Duration::from_secs(1)).await;
                    }
                    wf.step(format!("double-{x}"), move |_| async move { Ok(x * 2) })
                        .await
                })
                .await?;
            Ok(format!("{} {:?}", r.status(), r.into_values()?))
        }
        // A flat parallel, one branch at a time, failing fast.
        "flat-parallel" => {
            let config = ParallelConfig::named("flat-p")
                .nesting(Nesting::Flat)
                .max_concurrency(1)
                .completion(CompletionPolicy::fail_fast());
            let r = wf
                .parallel_with(
                    config,
                    vec![
                        Branch::new(|mut wf| async move {
                            wf.step("first", |_| async { Ok(1u64) }).await
                        }),
                        Branch::new(|mut wf| async move {
                            let config = StepConfig::named("second").retry(NoRetry);
                            wf.step_with(config, |_| async {
                                Err::<u64, _>(StepFailure::new("Broken", "second broke"))
                            })
                            .await
                        }),
                        Branch::new(|mut wf| async move {
                            wf.step("third", |_| async { Ok(3u64) }).await
                        }),
                    ],
                )
                .await?;
            Ok(batch_outcome(&r))
        }
        // At the root: a virtual child holding steps a and b, then step c
        // (OPERATIONS.md §2.4's example), then a wait, so that the
        // virtual child runs again on replay.
        "virtual-child" => {
            let ab: u64 = wf
                .child_with(
                    ChildConfig::named("group").virtual_context(),
                    |mut wf| async move {
                        let a: u64 = wf.step("a", |_| async { Ok(1u64) }).await?;
                        let b: u64 = wf.step("b", move |_| async move { Ok(a + 1) }).await?;
                        Ok::<_, StepError>(a + b)
                    },
                )
                .await?;
            let c: u64 = wf.step("c", move |_| async move { Ok(ab * 10) }).await?;
            wf.wait("w", Duration::from_secs(1)).await;
            Ok(format!("{c}"))
        }
        // Custom subtypes: a "Payment" step, a "Reservation" child holding a
        // default step, then a wait (the second invocation replays them).
        "custom-subtypes" => {
            let charged: u64 = wf
                .step_with(StepConfig::named("charge").sub_type("Payment"), |_| async {
                    Ok(40u64)
                })
                .await?;
            let reserved: u64 = wf
                .child_with(
                    ChildConfig::named("reserve").sub_type("Reservation"),
                    |mut wf| async move { wf.step("hold", |_| async { Ok(2u64) }).await },
                )
                .await?;
            wf.wait("settle", Duration::from_secs(1)).await;
            Ok(format!("{}", charged + reserved))
        }
        // Unnamed operations: a step, a wait, a child, a wait-for-condition.
        "unnamed" => {
            let x: u64 = wf
                .step_with(StepConfig::new(), |_| async { Ok(20u64) })
                .await?;
            wf.wait(WaitConfig::new(), Duration::from_secs(1)).await;
            let y: u64 = wf
                .child_with(ChildConfig::new(), move |mut wf| async move {
                    wf.step_with(StepConfig::new(), move |_| async move { Ok(x + 1) })
                        .await
                })
                .await?;
            let config =
                ConditionConfig::new().strategy(FixedDelay::new(Duration::from_secs(1), 5));
            let z: u64 = wf
                .wait_for_condition_with(config, y, |_, n| async move {
                    Ok(if n >= 22 {
                        Condition::Met(n)
                    } else {
                        Condition::NotMet(n + 1)
                    })
                })
                .await?;
            Ok(format!("{z}"))
        }
        other => Ok(format!("no scenario {other:?}")),
    }
}

/// How a batch ended: `<reason> <status> total=<started branches>`.
fn batch_outcome<T>(r: &durable_yield::BatchResult<T>) -> String {
    format!(
        "{} {} total={}",
        r.completion_reason(),
        r.status(),
        r.total_count()
    )
}

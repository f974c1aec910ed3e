//! Every codec round-trips through a real checkpoint and a replay, and a
//! user-written codec plugs in like the built-in ones.

use std::collections::BTreeMap;
use std::time::Duration;

use durable_yield::codecs::{Bincode, Codec, CodecError, Json, MsgPack, PayloadContext, split_tag};
use durable_yield::{ExecutionStatus, LocalRunner, StepConfig, StepError, Workflow};
use durable_yield_tests::{Flaky, step_result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Tier {
    Basic,
    Gold { since: u16 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Customer {
    id: u64,
    name: String,
    balance_cents: i64,
    ratio: f64,
    tags: Vec<String>,
    tier: Tier,
    note: Option<String>,
    counts: BTreeMap<String, u32>,
    raw: Vec<u8>,
}

fn customer() -> Customer {
    Customer {
        id: u64::MAX - 3,
        name: "Zoë \"quoted\" ✓".into(),
        balance_cents: -12_345,
        ratio: 0.125,
        tags: vec!["vip".into(), String::new()],
        tier: Tier::Gold { since: 2019 },
        note: None,
        counts: [("a".to_owned(), 1), ("b".to_owned(), 2)].into(),
        raw: vec![0, 255, 7],
    }
}

/// Runs a workflow that checkpoints a `Customer` with `codec`, suspends,
/// and returns the value it decoded on replay. Returns the run and the
/// recorded payload.
async fn round_trip<C: Codec + Clone>(codec: C) -> (Customer, String) {
    let workflow = move |mut wf: Workflow, _: ()| {
        let codec = codec.clone();
        async move {
            let c: Customer = wf
                .step_with(StepConfig::named("load").codec(codec), |_| async {
                    Ok(customer())
                })
                .await?;
            wf.wait("w", Duration::from_secs(1)).await;
            Ok::<_, StepError>(c)
        }
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.invocations, 2, "the result was decoded on replay");
    let payload = step_result(run.operation("load").unwrap())
        .unwrap()
        .to_owned();
    (run.result.unwrap(), payload)
}

#[tokio::test]
async fn json_round_trips_as_plain_json() {
    let (value, payload) = round_trip(Json).await;
    assert_eq!(value, customer());
    let parsed: serde_json::Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(parsed["name"], "Zoë \"quoted\" ✓");
}

#[tokio::test]
async fn bincode_round_trips_as_tagged_base64() {
    let (value, payload) = round_trip(Bincode).await;
    assert_eq!(value, customer());
    assert_eq!(split_tag(&payload).0, "bincode");
    assert!(payload.len() < serde_json::to_string(&customer()).unwrap().len());
}

#[tokio::test]
async fn msgpack_round_trips_as_tagged_base64() {
    let (value, payload) = round_trip(MsgPack).await;
    assert_eq!(value, customer());
    assert_eq!(split_tag(&payload).0, "msgpack");
}

/// A user codec: wraps another codec and appends a checksum, so that a
/// corrupted checkpoint is detected instead of decoded into garbage.
#[derive(Debug, Clone)]
struct Checksummed<C>(C);

fn checksum(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

impl<C: Codec> Codec for Checksummed<C> {
    fn id(&self) -> &str {
        "checksummed"
    }
    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        cx: &PayloadContext<'_>,
    ) -> Result<Vec<u8>, CodecError> {
        let mut bytes = self.0.encode(value, cx)?;
        let sum = checksum(&bytes);
        bytes.extend_from_slice(&sum.to_be_bytes());
        Ok(bytes)
    }
    fn decode<T: DeserializeOwned>(
        &self,
        bytes: &[u8],
        cx: &PayloadContext<'_>,
    ) -> Result<T, CodecError> {
        let split = bytes
            .len()
            .checked_sub(4)
            .ok_or_else(|| CodecError::decode("checksummed", "too short"))?;
        let (body, sum) = bytes.split_at(split);
        if checksum(body).to_be_bytes() != sum {
            return Err(CodecError::decode("checksummed", "checksum mismatch"));
        }
        self.0.decode(body, cx)
    }
}

#[tokio::test]
async fn a_user_codec_plugs_in() {
    let (value, payload) = round_trip(Checksummed(MsgPack)).await;
    assert_eq!(value, customer());
    assert!(payload.starts_with("checksummed:"), "{payload}");
}

#[test]
fn a_user_codec_detects_corruption() {
    use durable_yield::codecs::{from_payload, to_payload};
    let payload = to_payload(&Checksummed(Json), &customer(), &PayloadContext::DETACHED).unwrap();
    assert_eq!(
        from_payload::<_, Customer>(&Checksummed(Json), &payload, &PayloadContext::DETACHED)
            .unwrap(),
        customer()
    );
    // Flip one character of the base64 body.
    let mut corrupted = payload.clone().into_bytes();
    let at = corrupted.len() / 2;
    corrupted[at] = if corrupted[at] == b'A' { b'B' } else { b'A' };
    let corrupted = String::from_utf8(corrupted).unwrap();
    let err =
        from_payload::<_, Customer>(&Checksummed(Json), &corrupted, &PayloadContext::DETACHED)
            .unwrap_err();
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
}

#[test]
fn bincode_limits_are_real() {
    // Documented in the README: bincode cannot decode untagged enums or
    // skip_serializing_if fields; JSON and MessagePack can.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct WithSkip {
        a: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        b: Option<u32>,
        c: u32,
    }
    use durable_yield::codecs::{from_payload, to_payload};
    let v = WithSkip {
        a: 1,
        b: None,
        c: 3,
    };
    let p = to_payload(&Bincode, &v, &PayloadContext::DETACHED).unwrap();
    assert!(from_payload::<_, WithSkip>(&Bincode, &p, &PayloadContext::DETACHED).is_err());
    let p = to_payload(&MsgPack, &v, &PayloadContext::DETACHED).unwrap();
    assert_eq!(
        from_payload::<_, WithSkip>(&MsgPack, &p, &PayloadContext::DETACHED).unwrap(),
        v
    );
    let p = to_payload(&Json, &v, &PayloadContext::DETACHED).unwrap();
    assert_eq!(
        from_payload::<_, WithSkip>(&Json, &p, &PayloadContext::DETACHED).unwrap(),
        v
    );
}

#[tokio::test]
async fn a_value_the_codec_cannot_read_back_fails_on_the_first_run() {
    // bincode writes this value but cannot read it back (skip_serializing_if):
    // the execution fails at once with a codec error naming the step, not
    // after a suspend.
    #[derive(Debug, Serialize, Deserialize)]
    struct Sparse {
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        n: u32,
    }
    let workflow = |mut wf: Workflow, _: ()| async move {
        let s: Sparse = wf
            .step_with(StepConfig::named("sparse").codec(Bincode), |_| async {
                Ok(Sparse { note: None, n: 1 })
            })
            .await?;
        wf.wait("w", Duration::from_secs(1)).await;
        Ok::<_, StepError>(s.n)
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Failed);
    assert_eq!(run.invocations, 1);
    let e = run.error.unwrap();
    assert_eq!(e.error_type.as_deref(), Some("CodecError"));
    let m = e.error_message.unwrap();
    assert!(m.contains("\"sparse\"") && m.contains("`bincode`"), "{m}");
}

#[tokio::test]
async fn a_result_that_cannot_be_encoded_fails_the_step() {
    // JSON maps need string keys.
    let workflow = |mut wf: Workflow, _: ()| async move {
        let r: Result<BTreeMap<(u8, u8), u8>, StepError> = wf
            .step("pairs", |_| async {
                Ok([((1, 2), 3)].into_iter().collect())
            })
            .await;
        let e = r.unwrap_err();
        Ok::<_, StepError>(format!(
            "{:?}|{}",
            e.error_type(),
            e.message().unwrap_or("")
        ))
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    let out = run.result.clone().unwrap();
    assert!(out.starts_with("Some(\"CodecError\")|"), "{out}");
    assert!(out.contains("could not encode"), "{out}");
    assert_eq!(
        run.operation("pairs").unwrap().status,
        durable_yield::model::OperationStatus::Failed
    );
}

/// A step whose result goes through `codec`, a wait, its value returned;
/// `ran` counts the body's runs.
fn flaky_workflow(
    codec: Flaky,
    ran: std::sync::Arc<std::sync::atomic::AtomicU32>,
) -> impl Fn(Workflow, ()) -> durable_yield_tests::BoxFuture<Result<u32, StepError>> + Send + Sync {
    move |mut wf: Workflow, ()| {
        let (codec, ran) = (codec.clone(), ran.clone());
        Box::pin(async move {
            let v: u32 = wf
                .step_with(StepConfig::named("load").codec(codec), move |_| {
                    ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    async { Ok(41) }
                })
                .await?;
            wf.wait("w", Duration::from_secs(1)).await;
            Ok(v + 1)
        })
    }
}

/// As AWS's `RetryableSerDesError`: a codec whose storage is unreachable
/// for a while fails the invocation, not the step; nothing is recorded
/// as failed, and the service's next invocation runs the body again and
/// records its result.
#[tokio::test]
async fn a_transient_encode_failure_fails_the_invocation_not_the_step() {
    use std::sync::atomic::{AtomicU32, Ordering};
    let codec = Flaky {
        encode_failures: std::sync::Arc::new(AtomicU32::new(2)),
        ..Flaky::default()
    };
    let ran = std::sync::Arc::new(AtomicU32::new(0));
    let run = LocalRunner::new()
        .run(&flaky_workflow(codec, ran.clone()), &())
        .await
        .unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.result, Some(42));
    assert_eq!(
        ran.load(Ordering::SeqCst),
        3,
        "two failed invocations ran it"
    );
    assert_eq!(run.invocations, 4, "two failed, one to the wait, one after");
    let load = run
        .operations
        .iter()
        .find(|op| op.name.as_deref() == Some("load"))
        .unwrap();
    assert_eq!(step_result(load), Some("flaky-json:41"));
    let details = load.step_details.as_ref().unwrap();
    assert!(details.error.is_none(), "no failure recorded: {details:?}");
    assert_eq!(details.attempt, Some(1), "{details:?}");
}

/// On replay, a transient decode failure fails the invocation (not the
/// execution); the next invocation replays the recorded result, without
/// running the body again.
#[tokio::test]
async fn a_transient_decode_failure_on_replay_fails_the_invocation_not_the_execution() {
    use std::sync::atomic::{AtomicU32, Ordering};
    let codec = Flaky {
        decode_failures: std::sync::Arc::new(AtomicU32::new(1)),
        // The first invocation decodes the live result once.
        decodes_before: 1,
        ..Flaky::default()
    };
    let ran = std::sync::Arc::new(AtomicU32::new(0));
    let run = LocalRunner::new()
        .run(&flaky_workflow(codec.clone(), ran.clone()), &())
        .await
        .unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.result, Some(42));
    assert_eq!(ran.load(Ordering::SeqCst), 1, "replays never run the body");
    assert_eq!(
        run.invocations, 3,
        "the wait, one failed replay, one replay"
    );
    assert_eq!(codec.decodes.load(Ordering::SeqCst), 3);
}

/// As AWS's SDKs let a `RetryableSerDesError` escape a batch: a map item's
/// or a child context's own result that cannot be encoded for now ends the
/// invocation, nothing recorded as failed; the next invocation runs the
/// item (or the child) again and the map completes with every item.
#[tokio::test]
async fn a_transient_failure_encoding_a_contexts_result_escapes_it_and_fails_the_invocation() {
    use durable_yield::{ChildConfig, MapConfig};
    use std::sync::atomic::AtomicU32;
    let codec = Flaky {
        encode_failures: std::sync::Arc::new(AtomicU32::new(1)),
        ..Flaky::default()
    };
    let child_codec = Flaky {
        encode_failures: std::sync::Arc::new(AtomicU32::new(1)),
        ..Flaky::default()
    };
    let workflow = move |mut wf: Workflow, ()| {
        let (codec, child_codec) = (codec.clone(), child_codec.clone());
        async move {
            let items = wf
                .map_with(
                    MapConfig::named("items").item_codec(codec),
                    vec![1u32, 2, 3],
                    |_, x, _| async move { Ok::<_, StepError>(x * 10) },
                )
                .await?;
            let sum: u32 = items.into_values()?.into_iter().sum();
            let child: u32 = wf
                .child_with(ChildConfig::named("child").codec(child_codec), |_| async {
                    Ok::<_, StepError>(4)
                })
                .await?;
            Ok::<_, StepError>(sum + child)
        }
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.result, Some(64));
    assert_eq!(
        run.invocations, 3,
        "one failed for the item, one for the child"
    );
    for op in &run.operations {
        let failed = op.status == durable_yield::model::OperationStatus::Failed;
        assert!(!failed, "nothing is recorded as failed: {op:?}");
    }
}

/// The errors of the run's failed invocations, from its timeline.
fn failed_invocations<O>(run: &durable_yield::LocalRun<O>) -> Vec<String> {
    run.timeline
        .events
        .iter()
        .filter_map(|e| match e {
            durable_yield::local::TimelineEvent::InvocationFailed { error, .. } => {
                Some(error.clone())
            }
            _ => None,
        })
        .collect()
}

/// Asserts that one invocation failed, for `op`'s codec, transiently, and
/// that nothing was recorded as failed.
fn assert_one_transient_failure<O>(run: &durable_yield::LocalRun<O>, op: &str) {
    let failed = failed_invocations(run);
    assert_eq!(failed.len(), 1, "{failed:?}");
    let expected = "could not be encoded or decoded for now: codec `flaky-json` could not \
                    reach its storage (transient; the invocation is retried): the store timed out";
    assert!(
        failed[0].contains(op) && failed[0].contains(expected),
        "{}",
        failed[0]
    );
    for op in &run.operations {
        let failed = op.status == durable_yield::model::OperationStatus::Failed;
        assert!(!failed, "nothing is recorded as failed: {op:?}");
    }
}

/// Runs a workflow that invokes `double` (which doubles its input) on 21
/// with the invoke's config from `config`.
async fn invoke_double<P, R>(
    config: impl Fn() -> durable_yield::InvokeConfig<P, R> + Send + Sync + 'static,
) -> durable_yield::LocalRun<u32>
where
    P: Codec + Send + 'static,
    R: Codec + Send + 'static,
{
    let config = std::sync::Arc::new(config);
    let workflow = move |mut wf: Workflow, x: u32| {
        let config = config.clone();
        async move {
            let y: u32 = wf.invoke_with(config(), "double", &x).await?;
            Ok::<_, StepError>(y)
        }
    };
    let target = |_: Workflow, x: u32| async move { Ok::<_, StepError>(x * 2) };
    LocalRunner::new()
        .register_workflow("double", target)
        .run(&workflow, &21)
        .await
        .unwrap()
}

/// A chained invoke's input that cannot be encoded for now fails the
/// invocation (not the invoke: before, it failed as an invalid input);
/// the next invocation encodes it again and invokes the target once.
#[tokio::test]
async fn a_transient_failure_encoding_an_invoke_input_fails_the_invocation() {
    use durable_yield::InvokeConfig;
    // Untagged: the target reads its input as JSON.
    let codec = Flaky {
        untagged: true,
        ..Flaky::failing_encodes(1)
    };
    let run = invoke_double(move || InvokeConfig::named("call").payload_codec(codec.clone())).await;
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.result, Some(42));
    assert_eq!(run.invoked.len(), 1, "the target ran once");
    assert_eq!(run.invoked[0].input, "21");
    assert_one_transient_failure(&run, "ChainedInvoke \"call\"");
}

/// A wait-for-condition's new state that cannot be encoded for now fails
/// the invocation (not the wait: before, it failed as a permanent codec
/// error); the next invocation checks again.
#[tokio::test]
async fn a_transient_failure_encoding_a_conditions_state_fails_the_invocation() {
    use durable_yield::{Condition, ConditionConfig};
    use std::sync::atomic::{AtomicU32, Ordering};
    // The initial state's round trip encodes once before the check.
    let codec = Flaky {
        encodes_before: 1,
        ..Flaky::failing_encodes(1)
    };
    let checks = std::sync::Arc::new(AtomicU32::new(0));
    let counted = checks.clone();
    let workflow = move |mut wf: Workflow, ()| {
        let (codec, checks) = (codec.clone(), counted.clone());
        async move {
            let config = ConditionConfig::named("ready").codec(codec);
            let state = wf
                .wait_for_condition_with(config, 1u32, move |_, n| {
                    checks.fetch_add(1, Ordering::SeqCst);
                    async move { Ok(Condition::Met(n + 1)) }
                })
                .await?;
            Ok::<_, StepError>(state)
        }
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.result, Some(2));
    assert_eq!(checks.load(Ordering::SeqCst), 2, "checked again after it");
    assert_eq!(run.invocations, 2);
    assert_one_transient_failure(&run, "WaitForCondition \"ready\"");
}

/// A map's result that its batch codec cannot encode for now fails the
/// invocation (not the map: before, it failed with a codec error); the
/// items are recorded, so the next invocation replays them (no item runs
/// twice) and encodes the result again.
#[tokio::test]
async fn a_transient_failure_encoding_a_batch_result_fails_the_invocation() {
    use durable_yield::MapConfig;
    use std::sync::atomic::{AtomicU32, Ordering};
    let codec = Flaky::failing_encodes(1);
    let ran = std::sync::Arc::new(AtomicU32::new(0));
    let counted = ran.clone();
    let workflow = move |mut wf: Workflow, ()| {
        let (codec, ran) = (codec.clone(), counted.clone());
        async move {
            let items = wf
                .map_with(
                    MapConfig::named("items").batch_codec(codec),
                    vec![1u32, 2, 3],
                    move |_, x, _| {
                        ran.fetch_add(1, Ordering::SeqCst);
                        async move { Ok::<_, StepError>(x * 10) }
                    },
                )
                .await?;
            let sum: u32 = items.into_values()?.into_iter().sum();
            Ok::<_, StepError>(sum)
        }
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.result, Some(60));
    assert_eq!(ran.load(Ordering::SeqCst), 3, "no item ran twice");
    assert_eq!(run.invocations, 2);
    assert_one_transient_failure(&run, "Map \"items\"");
}

/// Flaky failing its first `n` decodes, untagged (plain JSON, as another
/// function or a callback's sender writes it).
fn failing_plain_decodes(n: u32) -> Flaky {
    Flaky {
        untagged: true,
        ..Flaky::failing_decodes(n)
    }
}

/// A callback's answer that cannot be decoded for now fails the invocation
/// (not the callback: before, workflow code got an undecodable answer);
/// the next invocation reads it again. The callback is awaited after a
/// later step, and the failure names the callback, not that step.
#[tokio::test]
async fn a_transient_failure_decoding_a_callback_answer_fails_the_invocation() {
    use durable_yield::CallbackConfig;
    use durable_yield::local::CallbackAnswer;
    let codec = failing_plain_decodes(1);
    let workflow = move |mut wf: Workflow, ()| {
        let codec = codec.clone();
        async move {
            let config = CallbackConfig::named("approval").codec(codec);
            let cb = wf.create_callback_with::<String, _>(config).await;
            let n: u32 = wf.step("later", |_| async { Ok(1) }).await?;
            let answer = wf.callback_result(&cb).await?;
            Ok::<_, durable_yield::BoxError>(format!("{answer} {n}"))
        }
    };
    let run = LocalRunner::new()
        .answer_callback("approval", CallbackAnswer::success("yes"))
        .run(&workflow, &())
        .await
        .unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.result.as_deref(), Some("yes 1"));
    assert_eq!(run.invocations, 3, "to the answer, one failed, one replay");
    assert_one_transient_failure(&run, "Callback \"approval\" (id ");
}

/// A chained invoke's result that cannot be decoded for now fails the
/// invocation (not the invoke: before, it failed as undecodable); the next
/// invocation reads the recorded result again, without invoking again.
#[tokio::test]
async fn a_transient_failure_decoding_an_invoke_result_fails_the_invocation() {
    use durable_yield::InvokeConfig;
    let codec = failing_plain_decodes(1);
    let run = invoke_double(move || InvokeConfig::named("call").result_codec(codec.clone())).await;
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.result, Some(42));
    assert_eq!(run.invoked.len(), 1, "invoked once");
    assert_eq!(run.invocations, 3, "to the result, one failed, one replay");
    assert_one_transient_failure(&run, "ChainedInvoke \"call\"");
}

/// The local runner gives up after 5 consecutive failed invocations, as
/// AWS's emulator does, unless told otherwise.
#[tokio::test]
async fn the_local_runner_gives_up_after_five_failed_invocations_in_a_row_unless_told() {
    use std::sync::atomic::AtomicU32;
    let ran = std::sync::Arc::new(AtomicU32::new(0));
    let run = LocalRunner::new()
        .run(&flaky_workflow(Flaky::failing_encodes(5), ran.clone()), &())
        .await
        .unwrap();
    assert_eq!(run.status, ExecutionStatus::Failed);
    let error = run.error.unwrap();
    assert_eq!(error.error_type.as_deref(), Some("InvocationFailed"));
    let message = error.error_message.unwrap_or_default();
    assert!(
        message.starts_with("5 consecutive invocations failed; the last: "),
        "{message}"
    );
    let run = LocalRunner::new()
        .max_failed_invocations(6)
        .run(&flaky_workflow(Flaky::failing_encodes(5), ran), &())
        .await
        .unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.result, Some(42));
    assert_eq!(
        run.invocations, 7,
        "five failed, one to the wait, one after"
    );
}

/// What was decided before a transient failure is still recorded: two map
/// items' steps end in the same round, the second's result cannot be
/// encoded for now; the first's outcome goes out before the invocation
/// fails, so its body does not run again. Also with updates held back to
/// share requests (a batching delay), which are sent, not dropped.
#[tokio::test]
async fn what_ended_before_a_transient_failure_is_recorded_not_run_again() {
    let held = durable_yield::CheckpointBatching::default().max_delay(Duration::from_secs(1));
    // With held updates, the last invocation's ends are sent when it ends
    // and reported before their answer (as the plugin docs say).
    let runs = [
        (durable_yield::CheckpointBatching::default(), " recorded"),
        (held, ""),
    ];
    for (batching, last_recorded) in runs {
        ended_before_a_transient_failure(batching, last_recorded).await;
    }
}

async fn ended_before_a_transient_failure(
    batching: durable_yield::CheckpointBatching,
    last_recorded: &str,
) {
    use std::sync::atomic::{AtomicU32, Ordering};
    let codec = Flaky::failing_encodes(1);
    let runs: std::sync::Arc<[AtomicU32; 2]> =
        std::sync::Arc::new([AtomicU32::new(0), AtomicU32::new(0)]);
    let counted = runs.clone();
    let workflow = move |mut wf: Workflow, ()| {
        let (codec, runs) = (codec.clone(), counted.clone());
        async move {
            let items = wf
                .map(
                    "items",
                    vec![0usize, 1],
                    move |mut wf: Workflow, i: usize, _| {
                        let (codec, runs) = (codec.clone(), runs.clone());
                        async move {
                            let config = StepConfig::named("work");
                            let v: usize = if i == 0 {
                                wf.step_with(config, move |_| async move {
                                    runs[0].fetch_add(1, Ordering::SeqCst);
                                    Ok(10)
                                })
                                .await?
                            } else {
                                wf.step_with(config.codec(codec), move |_| async move {
                                    runs[1].fetch_add(1, Ordering::SeqCst);
                                    Ok(20)
                                })
                                .await?
                            };
                            Ok::<_, StepError>(v)
                        }
                    },
                )
                .await?;
            let sum: usize = items.into_values()?.into_iter().sum();
            Ok::<_, StepError>(sum)
        }
    };
    let ends = Ends::default();
    let run = LocalRunner::new()
        .plugin(ends.clone())
        .batching(batching)
        .run(&workflow, &())
        .await
        .unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.result, Some(30));
    assert_eq!(run.invocations, 2);
    assert_one_transient_failure(&run, "Step \"work\"");
    // The plugins heard of item 0's end in the invocation that failed, with
    // what the service recorded (its answer was merged first); of item
    // 1's in the next.
    let ends = ends.0.lock().unwrap().clone();
    let expected = [
        (1, "start".to_owned()),
        (1, "work SUCCEEDED recorded".to_owned()),
        (2, "start".to_owned()),
        (2, format!("work SUCCEEDED{last_recorded}")),
    ];
    assert_eq!(ends, expected);
    assert_eq!(runs[0].load(Ordering::SeqCst), 1, "item 0's step ran once");
    assert_eq!(runs[1].load(Ordering::SeqCst), 2, "item 1's step ran again");
}

/// A plugin noting each step's end: (invocation, "name STATUS recorded?").
#[derive(Clone, Default)]
struct Ends(std::sync::Arc<std::sync::Mutex<Vec<(u32, String)>>>);

impl durable_yield::plugin::Plugin for Ends {
    fn invocation(
        &self,
        _: &durable_yield::plugin::InvocationStart<'_>,
    ) -> Result<Box<dyn durable_yield::plugin::InvocationHooks>, durable_yield::BoxError> {
        let mut ends = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let invocation = ends.iter().map(|e| e.0).max().unwrap_or(0) + 1;
        ends.push((invocation, "start".to_owned()));
        Ok(Box::new(EndHooks(self.0.clone(), invocation)))
    }
}

struct EndHooks(std::sync::Arc<std::sync::Mutex<Vec<(u32, String)>>>, u32);

impl durable_yield::plugin::InvocationHooks for EndHooks {
    fn on_operation_end(
        &mut self,
        e: &durable_yield::plugin::OperationEvent<'_>,
    ) -> durable_yield::plugin::HookResult {
        if e.op_type == durable_yield::model::OperationType::Step {
            let recorded = e.record.is_some_and(|r| r.end_timestamp.is_some());
            let line = format!(
                "{} {}{}",
                e.name.unwrap_or("-"),
                e.status,
                if recorded { " recorded" } else { "" }
            );
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((self.1, line));
        }
        Ok(())
    }
}

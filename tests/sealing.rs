//! Encrypted and compressed checkpoints through real executions: every
//! combination with the three codecs round-trips through a checkpoint and
//! a replay; a payload that was changed, or copied into another step or
//! execution, fails the execution; keys rotate across a replay; sealed
//! fields leave the rest of the record readable; large values compress
//! under the service's limits.

use std::time::Duration;

use durable_yield::codecs::compress::Compressed;
use durable_yield::codecs::seal::{
    Encrypted, Keyring, Sealed, SealedFields, StaticKeyring, referenced_key_ids,
};
use durable_yield::codecs::{Bincode, Codec, Json, MsgPack};
use durable_yield::model::{InvocationStatus, Operation, OperationStatus};
use durable_yield::{
    ChildConfig, ExecutionStatus, LocalRunner, MapConfig, StepConfig, StepError, StepFailure,
    Workflow,
};
use durable_yield_tests::{replay_history, step_result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

const SSN: &str = "078-05-1120";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Customer {
    id: u64,
    name: String,
    ssn: Sealed<String>,
    limits: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Plain {
    id: u64,
    name: String,
    ssn: String,
    limits: Vec<u32>,
}

fn customer() -> Customer {
    Customer {
        id: 7,
        name: "Ada".into(),
        ssn: Sealed::new(SSN.into()),
        limits: (0..400).map(|i| i % 7).collect(),
    }
}

fn plain() -> Plain {
    Plain {
        id: 7,
        name: "Ada".into(),
        ssn: SSN.into(),
        limits: (0..400).map(|i| i % 7).collect(),
    }
}

fn keys() -> StaticKeyring {
    StaticKeyring::new("k1", [1; 32])
}

/// Checkpoints `value` with `codec` in step `load`, suspends on a wait and
/// replays; returns whether the replay decoded `value` (a workflow's own
/// result cannot hold sealed fields) and the recorded payload.
async fn round_trip<C, T>(codec: C, value: T) -> (bool, String)
where
    C: Codec + Clone,
    T: Serialize + DeserializeOwned + Clone + PartialEq + Send + Sync + 'static,
{
    let workflow = move |mut wf: Workflow, _: ()| {
        let (codec, value) = (codec.clone(), value.clone());
        async move {
            let expected = value.clone();
            let v: T = wf
                .step_with(
                    StepConfig::named("load").codec(codec),
                    move |_| async move { Ok(value) },
                )
                .await?;
            wf.wait("w", Duration::from_secs(1)).await;
            Ok::<_, StepError>(v == expected)
        }
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.invocations, 2, "the value came from a replay");
    let payload = step_result(run.operation("load").unwrap())
        .unwrap()
        .to_owned();
    (run.result.unwrap(), payload)
}

/// Round-trips through sealing codecs: the secret is never in the payload.
async fn sealed_round_trip<C: Codec + Clone>(codec: C, prefix: &str) {
    let id = codec.id().to_owned();
    let (same, payload) = round_trip(codec, customer()).await;
    assert!(same, "{id}");
    assert!(payload.starts_with(prefix), "{id}: {payload:.60}");
    assert!(!payload.contains(SSN), "{id}");
    assert_eq!(referenced_key_ids(&payload), vec![b"k1".to_vec()], "{id}");
}

#[tokio::test]
async fn every_combination_round_trips_through_a_replay() {
    // Whole payload, each inner codec, compressed or not.
    sealed_round_trip(Encrypted::new(Json, keys()), "sealed.json:").await;
    sealed_round_trip(Encrypted::new(Bincode, keys()), "sealed.bincode:").await;
    sealed_round_trip(Encrypted::new(MsgPack, keys()), "sealed.msgpack:").await;
    sealed_round_trip(
        Encrypted::new(Compressed::new(Json), keys()),
        "sealed.zstd.json:",
    )
    .await;
    sealed_round_trip(
        Encrypted::new(Compressed::new(Bincode), keys()),
        "sealed.zstd.bincode:",
    )
    .await;
    sealed_round_trip(
        Encrypted::new(Compressed::new(MsgPack), keys()),
        "sealed.zstd.msgpack:",
    )
    .await;
    // Field level: framed as the inner codec.
    sealed_round_trip(SealedFields::new(Json, keys()), "{\"id\":7").await;
    sealed_round_trip(SealedFields::new(Bincode, keys()), "bincode:").await;
    sealed_round_trip(SealedFields::new(MsgPack, keys()), "msgpack:").await;
    sealed_round_trip(
        SealedFields::new(Compressed::new(Json), keys()),
        "zstd.json:",
    )
    .await;
    sealed_round_trip(
        SealedFields::new(Compressed::new(MsgPack), keys()),
        "zstd.msgpack:",
    )
    .await;
    // Compression alone.
    for (codec, prefix) in [
        (Compressed::new(Json).threshold(0), "zstd.json:"),
        (Compressed::new(Json), "zstd.json:"),
    ] {
        let (same, payload) = round_trip(codec, plain()).await;
        assert!(same);
        assert!(payload.starts_with(prefix));
    }
    assert!(round_trip(Compressed::new(Bincode), plain()).await.0);
    assert!(round_trip(Compressed::new(MsgPack), plain()).await.0);
}

/// Steps `a` and `b` sealed with `codec` (values `"alpha"` and `"beta"`),
/// then a wait.
fn two_sealed_steps<C: Codec + Clone>(
    codec: C,
) -> impl Fn(Workflow, ()) -> std::pin::Pin<Box<dyn Future<Output = Result<String, StepError>> + Send>>
+ Send
+ Sync
+ 'static {
    move |mut wf: Workflow, _: ()| {
        let codec = codec.clone();
        Box::pin(async move {
            let a: String = wf
                .step_with(StepConfig::named("a").codec(codec.clone()), |_| async {
                    Ok("alpha".to_owned())
                })
                .await?;
            let b: String = wf
                .step_with(StepConfig::named("b").codec(codec), |_| async {
                    Ok("beta".to_owned())
                })
                .await?;
            wf.wait("w", Duration::from_secs(60)).await;
            Ok(format!("{a}+{b}"))
        })
    }
}

/// The recorded result of step `name`.
fn payload_of(ops: &[Operation], name: &str) -> String {
    let op = ops
        .iter()
        .find(|op| op.name.as_deref() == Some(name))
        .unwrap();
    step_result(op).unwrap().to_owned()
}

/// Replaces the recorded result of step `name`.
fn set_payload(ops: &mut [Operation], name: &str, payload: String) {
    let op = ops
        .iter_mut()
        .find(|op| op.name.as_deref() == Some(name))
        .unwrap();
    std::sync::Arc::make_mut(op.step_details.as_mut().unwrap()).result = Some(payload.into());
}

/// Records the first invocation (steps `a`, `b`, then the wait) of a
/// fresh execution named `name`.
async fn recorded<C: Codec + Clone>(codec: C, name: &str) -> (String, Vec<Operation>) {
    let runner = LocalRunner::new().execution_name(name);
    let execution = runner.start(&()).unwrap();
    execution.invoke(&two_sealed_steps(codec)).await;
    assert_eq!(execution.status(), ExecutionStatus::Running);
    (execution.arn(), execution.operations())
}

/// Replays `ops`; returns the error type and message it failed with (or
/// panics if it did not fail).
async fn replay_fails<C: Codec + Clone>(codec: C, arn: &str, ops: &[Operation]) -> String {
    let summary = replay_history(&two_sealed_steps(codec), arn, ops).await;
    assert_eq!(summary.output.status, InvocationStatus::Failed);
    assert_eq!(summary.executed, 0, "no step ran again");
    let error = summary.output.error.unwrap();
    format!(
        "{}: {}",
        error.error_type.unwrap_or_default(),
        error.error_message.unwrap_or_default()
    )
}

async fn tampering_fails<C: Codec + Clone>(codec: C) {
    let (arn, ops) = recorded(codec.clone(), "one").await;
    // The untouched history replays (to the wait).
    let summary = replay_history(&two_sealed_steps(codec.clone()), &arn, &ops).await;
    assert_eq!(summary.output.status, InvocationStatus::Pending);
    assert_eq!(summary.executed, 0);

    // A flipped byte (one base64 character of the ciphertext).
    let mut flipped = ops.clone();
    let mut payload = payload_of(&flipped, "a");
    let at = payload.len() - 10;
    let c = payload.as_bytes()[at];
    payload.replace_range(at..=at, if c == b'A' { "B" } else { "A" });
    set_payload(&mut flipped, "a", payload);
    let error = replay_fails(codec.clone(), &arn, &flipped).await;
    assert!(error.contains("authentication failed"), "{error}");
    assert!(error.contains("\"a\""), "names the step: {error}");

    // Swapped between the two steps.
    let mut swapped = ops.clone();
    set_payload(&mut swapped, "a", payload_of(&ops, "b"));
    set_payload(&mut swapped, "b", payload_of(&ops, "a"));
    let error = replay_fails(codec.clone(), &arn, &swapped).await;
    assert!(error.contains("authentication failed"), "{error}");
    assert!(error.contains("key `k1`"), "names the key: {error}");

    // Copied from another execution (same step, same operation id).
    let (_, other) = recorded(codec.clone(), "two").await;
    let mut copied = ops.clone();
    set_payload(&mut copied, "a", payload_of(&other, "a"));
    let error = replay_fails(codec.clone(), &arn, &copied).await;
    assert!(error.contains("authentication failed"), "{error}");

    // Truncated: malformed, not a panic.
    let mut cut = ops.clone();
    set_payload(&mut cut, "a", payload_of(&ops, "a")[..20].to_owned());
    let error = replay_fails(codec, &arn, &cut).await;
    assert!(
        error.contains("CodecError") || error.contains("decode"),
        "{error}"
    );
}

#[tokio::test]
async fn changed_or_copied_payloads_fail_the_execution() {
    tampering_fails(Encrypted::new(Json, keys())).await;
    tampering_fails(Encrypted::new(Compressed::new(MsgPack), keys())).await;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Note {
    text: Sealed<String>,
}

#[tokio::test]
async fn sealed_fields_copied_elsewhere_fail_too() {
    let codec = SealedFields::new(Json, keys());
    let workflow = |codec: SealedFields<Json>| {
        move |mut wf: Workflow, _: ()| {
            let codec = codec.clone();
            async move {
                let a: Note = wf
                    .step_with(StepConfig::named("a").codec(codec.clone()), |_| async {
                        Ok(Note {
                            text: Sealed::new("alpha".into()),
                        })
                    })
                    .await?;
                let b: Note = wf
                    .step_with(StepConfig::named("b").codec(codec), |_| async {
                        Ok(Note {
                            text: Sealed::new("beta".into()),
                        })
                    })
                    .await?;
                wf.wait("w", Duration::from_secs(60)).await;
                Ok::<_, StepError>(format!("{}+{}", *a.text, *b.text))
            }
        }
    };
    let execution = LocalRunner::new().start(&()).unwrap();
    execution.invoke(&workflow(codec.clone())).await;
    let (arn, ops) = (execution.arn(), execution.operations());
    let mut swapped = ops.clone();
    set_payload(&mut swapped, "a", payload_of(&ops, "b"));
    set_payload(&mut swapped, "b", payload_of(&ops, "a"));
    let summary = replay_history(&workflow(codec.clone()), &arn, &swapped).await;
    assert_eq!(summary.output.status, InvocationStatus::Failed);
    let message = summary.output.error.unwrap().error_message.unwrap();
    assert!(message.contains("authentication failed"), "{message}");
    assert!(message.contains("key `k1`"), "{message}");
    // The untouched one replays.
    let summary = replay_history(&workflow(codec), &arn, &ops).await;
    assert_eq!(summary.output.status, InvocationStatus::Pending);
}

#[tokio::test]
async fn keys_rotate_across_a_replay() {
    let k1 = StaticKeyring::new("k1", [1; 32]);
    let k2_with_k1 = StaticKeyring::new("k2", [2; 32]).with_retired("k1", [1; 32]);
    let workflow = |keys: StaticKeyring| {
        move |mut wf: Workflow, _: ()| {
            let codec = Encrypted::new(Json, keys.clone());
            async move {
                let before: String = wf
                    .step_with(
                        StepConfig::named("before").codec(codec.clone()),
                        |_| async { Ok("old".to_owned()) },
                    )
                    .await?;
                wf.wait("rotate", Duration::from_secs(60)).await;
                let after: String = wf
                    .step_with(StepConfig::named("after").codec(codec), |_| async {
                        Ok("new".to_owned())
                    })
                    .await?;
                Ok::<_, StepError>(format!("{before}+{after}"))
            }
        }
    };
    let execution = LocalRunner::new().start(&()).unwrap();
    execution.invoke(&workflow(k1)).await;
    assert_eq!(execution.status(), ExecutionStatus::Running);
    // Without the retired key the history cannot be replayed: a clear error.
    let only_k2 = StaticKeyring::new("k2", [2; 32]);
    let summary = replay_history(
        &workflow(only_k2),
        &execution.arn(),
        &execution.operations(),
    )
    .await;
    let error = summary.output.error.unwrap();
    let message = error.error_message.unwrap();
    assert!(message.contains("key `k1`"), "{message}");
    assert!(message.contains("keyring has no key"), "{message}");
    assert!(message.contains("\"before\""), "{message}");

    execution.advance_time();
    execution.invoke(&workflow(k2_with_k1)).await;
    let run = execution.finish::<String>().unwrap();
    assert_eq!(run.result.as_deref(), Some("old+new"), "{:?}", run.error);
    let key_of =
        |name: &str| referenced_key_ids(step_result(run.operation(name).unwrap()).unwrap());
    assert_eq!(key_of("before"), vec![b"k1".to_vec()]);
    assert_eq!(key_of("after"), vec![b"k2".to_vec()]);
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Decline {
    reason: String,
    card: Sealed<String>,
}

#[tokio::test]
async fn sealed_fields_keep_the_rest_of_the_record_readable() {
    let codec = SealedFields::new(Json, keys());
    let (same, payload) = round_trip(codec.clone(), customer()).await;
    assert!(same);
    let json: serde_json::Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(json["id"], 7);
    assert_eq!(json["name"], "Ada");
    assert_eq!(json["limits"].as_array().unwrap().len(), 400);
    assert!(json["ssn"].as_str().unwrap().starts_with("sealed:"));
    assert!(!payload.contains(SSN));

    // Error data sealed for the execution, with a plain message.
    let workflow = move |mut wf: Workflow, _: ()| {
        let codec = codec.clone();
        async move {
            let sealer = codec.clone();
            let charged: Result<String, StepError> = wf
                .step_with(StepConfig::named("charge"), move |ctx| async move {
                    let details = Decline {
                        reason: "insufficient funds".into(),
                        card: Sealed::new("4111 1111 1111 1111".into()),
                    };
                    Err(StepFailure::new("Declined", "the card was declined")
                        .with_data_in(&ctx, &sealer, &details)?)
                })
                .await;
            let error = charged.unwrap_err();
            let details: Decline = error.data_in(&wf, &codec).unwrap().unwrap();
            Ok::<_, StepError>(format!("{} {}", details.reason, &details.card[..4]))
        }
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(
        run.result.as_deref(),
        Some("insufficient funds 4111"),
        "{:?}",
        run.error
    );
    let error = run
        .operation("charge")
        .unwrap()
        .step_details
        .as_ref()
        .unwrap()
        .error
        .clone()
        .unwrap();
    let data = error.error_data.unwrap();
    assert!(data.contains("insufficient funds") && data.contains("\"card\":\"sealed:"));
    assert!(!data.contains("4111"), "{data}");
    assert_eq!(
        error.error_message.as_deref(),
        Some("the card was declined")
    );
}

#[tokio::test]
async fn a_sealed_field_under_a_plain_codec_fails_the_step_and_writes_nothing() {
    let workflow = |mut wf: Workflow, _: ()| async move {
        wf.step("leak", |_| async { Ok(customer()) }).await
    };
    let run = LocalRunner::new().run(&workflow, &()).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Failed);
    let op = run.operation("leak").unwrap();
    assert_eq!(op.status, OperationStatus::Failed);
    let error = op.step_details.as_ref().unwrap().error.clone().unwrap();
    assert!(
        error
            .error_message
            .unwrap()
            .contains("outside a sealing codec")
    );
    assert!(
        !serde_json::to_string(&run.operations)
            .unwrap()
            .contains(SSN)
    );
}

/// 20,000 order lines: about 1.3 MB of JSON, over the 1 MiB a step may
/// record.
fn big() -> Vec<Plain> {
    (0..20_000)
        .map(|i| Plain {
            id: i,
            name: format!("customer-{}", i % 97),
            ssn: format!("SKU-{:05}", i * 13 % 4000),
            limits: vec![(i % 5) as u32, 100, 250],
        })
        .collect()
}

#[tokio::test]
async fn large_values_compress_under_the_limits() {
    let json = serde_json::to_string(&big()).unwrap();
    assert!(json.len() > durable_yield::engine::limits::MAX_OPERATION_PAYLOAD);
    let step = |codec: Option<Encrypted<Compressed<Json>>>| {
        move |mut wf: Workflow, _: ()| {
            let codec = codec.clone();
            async move {
                let lines: Vec<Plain> = match codec {
                    Some(codec) => {
                        wf.step_with(StepConfig::named("lines").codec(codec), |_| async {
                            Ok(big())
                        })
                        .await?
                    }
                    None => wf.step("lines", |_| async { Ok(big()) }).await?,
                };
                Ok::<_, StepError>(lines.len())
            }
        }
    };
    // Plain JSON does not fit.
    let run = LocalRunner::new().run(&step(None), &()).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Failed);
    assert_eq!(
        run.error.unwrap().error_type.as_deref(),
        Some("PayloadTooLarge")
    );
    // Compressed (and encrypted) it does.
    let codec = Encrypted::new(Compressed::new(Json), keys());
    let run = LocalRunner::new()
        .run(&step(Some(codec)), &())
        .await
        .unwrap();
    assert_eq!(run.result, Some(20_000), "{:?}", run.error);
    let payload = step_result(run.operation("lines").unwrap()).unwrap();
    assert!(
        payload.len() < json.len() / 5,
        "{} of {}",
        payload.len(),
        json.len()
    );

    // A child context's result over 256 KiB is not checkpointed
    // (ReplayChildren) unless it compresses under it.
    let child = |compress: bool| {
        move |mut wf: Workflow, _: ()| async move {
            let body = |_: Workflow| async { Ok::<_, StepError>(big()[..5000].to_vec()) };
            let lines: Vec<Plain> = if compress {
                wf.child_with(
                    ChildConfig::named("lines").codec(Compressed::new(Json)),
                    body,
                )
                .await?
            } else {
                wf.child("lines", body).await?
            };
            Ok::<_, StepError>(lines.len())
        }
    };
    for compress in [false, true] {
        let run = LocalRunner::new().run(&child(compress), &()).await.unwrap();
        assert_eq!(run.result, Some(5000));
        let details = run
            .operation("lines")
            .unwrap()
            .context_details
            .clone()
            .unwrap();
        let recorded = details
            .result
            .as_ref()
            .is_some_and(|p| !p.as_str().is_empty());
        assert_eq!(recorded, compress, "compressed: {compress}");
        assert_eq!(details.replay_children.unwrap_or(false), !compress);
    }
}

/// Map items, the map's result and a child context, sealed: each item is
/// bound to its own branch, the result to the map. With `size` bytes per
/// item, three items over 256 KiB make the map's result too large to
/// checkpoint, so replays rebuild it from the sealed items.
fn sealed_map(
    size: usize,
) -> impl Fn(Workflow, ()) -> std::pin::Pin<Box<dyn Future<Output = Result<String, StepError>> + Send>>
+ Send
+ Sync
+ 'static {
    move |mut wf: Workflow, _: ()| {
        Box::pin(async move {
            let codec = Encrypted::new(Json, keys());
            let config = MapConfig::named("labels")
                .item_codec(codec.clone())
                .batch_codec(codec.clone());
            let items = wf
                .map_with(config, 0..3u32, move |mut wf, i, _| async move {
                    let label: String = wf
                        .step(format!("label-{i}"), move |_| async move {
                            Ok(format!("{i}").repeat(size))
                        })
                        .await?;
                    Ok::<_, StepError>(Note {
                        text: Sealed::new(label),
                    })
                })
                .await?
                .into_values()?;
            let total: usize = wf
                .child_with(
                    ChildConfig::named("count").codec(codec),
                    move |_| async move {
                        Ok::<_, StepError>(items.iter().map(|n| n.text.len()).sum::<usize>())
                    },
                )
                .await?;
            wf.wait("w", Duration::from_secs(5)).await;
            Ok(format!("{total}"))
        })
    }
}

#[tokio::test]
async fn map_items_results_and_child_contexts_seal_for_their_own_operations() {
    for size in [10, 100_000] {
        let run = LocalRunner::new()
            .run(&sealed_map(size), &())
            .await
            .unwrap();
        assert_eq!(run.result, Some(format!("{}", 3 * size)), "{:?}", run.error);
        assert_eq!(run.invocations, 2, "replayed after the wait");
        let map = run.operation("labels").unwrap();
        let details = map.context_details.as_ref().unwrap();
        let result = details.result.as_ref().map_or("", |p| p.as_str());
        if size > 10 {
            // Too large: rebuilt from the sealed items on replay.
            assert_eq!(details.replay_children, Some(true));
        } else {
            assert!(result.starts_with("sealed.json:"), "{result:.40}");
        }
        for item in run.operations_named("map-item-1") {
            let payload = item
                .context_details
                .as_ref()
                .unwrap()
                .result
                .as_ref()
                .unwrap();
            assert!(payload.as_str().starts_with("sealed.json:"));
        }
        let count = run.operation("count").unwrap();
        let payload = count
            .context_details
            .as_ref()
            .unwrap()
            .result
            .as_ref()
            .unwrap();
        assert!(payload.as_str().starts_with("sealed.json:"));
    }
    // An item's payload copied onto another item fails the replay (the map's
    // result was too large, so the replay reads the items).
    let execution = LocalRunner::new().start(&()).unwrap();
    execution.invoke(&sealed_map(100_000)).await;
    let mut ops = execution.operations();
    let item = |ops: &[Operation], name: &str| {
        ops.iter()
            .position(|op| op.name.as_deref() == Some(name))
            .unwrap()
    };
    let untouched = replay_history(&sealed_map(100_000), &execution.arn(), &ops).await;
    assert_eq!(untouched.output.status, InvocationStatus::Pending);
    let (one, two) = (item(&ops, "map-item-1"), item(&ops, "map-item-2"));
    ops[two].context_details = ops[one].context_details.clone();
    let summary = replay_history(&sealed_map(100_000), &execution.arn(), &ops).await;
    assert_eq!(summary.output.status, InvocationStatus::Failed);
    let message = summary.output.error.unwrap().error_message.unwrap();
    assert!(message.contains("authentication failed"), "{message}");
}

#[test]
fn keyrings_report_unknown_keys() {
    let keys = keys();
    assert!(keys.find(b"k9").is_err());
    assert_eq!(keys.current().unwrap().id(), b"k1");
}

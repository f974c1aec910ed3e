//! The KMS keyring against a fake KMS on 127.0.0.1 (AWS JSON 1.1, as
//! `aws-sdk-kms` speaks it): data keys are generated once and cached,
//! payloads sealed on one instance open on another after one `Decrypt`,
//! a key KMS refuses fails the execution with KMS's reason, a KMS outage
//! fails the invocation (to be retried), and an unprepared keyring says
//! how to register it.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use durable_yield::codecs::Json;
use durable_yield::codecs::seal::{Encrypted, referenced_key_ids};
use durable_yield::engine::ServiceError;
use durable_yield::kms::KmsKeyring;
use durable_yield::model::InvocationStatus;
use durable_yield::{ExecutionStatus, LocalRunner, StepConfig, StepError, Workflow};
use durable_yield_tests::{replay_history, step_result};

/// A data key the fake generated: its secret and the KMS key it is under.
type DataKey = ([u8; 32], String);

#[derive(Default)]
struct Fake {
    /// Data keys by their encrypted form.
    keys: Mutex<HashMap<Vec<u8>, DataKey>>,
    calls: Mutex<Vec<&'static str>>,
    refused: Mutex<HashSet<Vec<u8>>>,
    /// Answer this many requests with HTTP 500 first.
    failing: AtomicU32,
}

impl Fake {
    fn calls(&self) -> Vec<&'static str> {
        self.calls.lock().unwrap().clone()
    }

    fn answer(&self, target: &str, body: &serde_json::Value) -> (u16, String) {
        if self.failing.load(Ordering::SeqCst) > 0 {
            self.failing.fetch_sub(1, Ordering::SeqCst);
            return (
                500,
                r#"{"__type":"KMSInternalException","message":"down"}"#.into(),
            );
        }
        let context = &body["EncryptionContext"];
        if context != &serde_json::json!({"durable-yield-purpose": "checkpoint-data-key"}) {
            return (
                400,
                r#"{"__type":"InvalidCiphertextException","message":"context"}"#.into(),
            );
        }
        let blob_b64 = |b: &[u8]| BASE64.encode(b);
        match target {
            "TrentService.GenerateDataKey" => {
                self.calls.lock().unwrap().push("GenerateDataKey");
                assert_eq!(body["KeySpec"], "AES_256");
                let kms_key = body["KeyId"].as_str().unwrap_or("").to_owned();
                let mut keys = self.keys.lock().unwrap();
                let n = keys.len() as u8;
                let secret = [n.wrapping_mul(31).wrapping_add(7); 32];
                let mut blob = b"fake-kms-wrapped-data-key-".to_vec();
                blob.extend_from_slice(&[n; 150]);
                keys.insert(blob.clone(), (secret, kms_key));
                let answer = serde_json::json!({
                    "CiphertextBlob": blob_b64(&blob),
                    "Plaintext": blob_b64(&secret),
                    "KeyId": "arn:aws:kms:us-east-1:111122223333:key/test",
                });
                (200, answer.to_string())
            }
            "TrentService.Decrypt" => {
                self.calls.lock().unwrap().push("Decrypt");
                let blob = BASE64
                    .decode(body["CiphertextBlob"].as_str().unwrap())
                    .unwrap();
                if self.refused.lock().unwrap().contains(&blob) {
                    return (
                        400,
                        r#"{"__type":"AccessDeniedException","message":"not allowed to use this key"}"#
                            .into(),
                    );
                }
                match self.keys.lock().unwrap().get(&blob) {
                    Some((_, kms_key)) if body["KeyId"] != kms_key.as_str() => (
                        400,
                        r#"{"__type":"IncorrectKeyException","message":"another key"}"#.into(),
                    ),
                    Some((secret, _)) => {
                        let answer = serde_json::json!({
                            "Plaintext": blob_b64(secret),
                            "KeyId": "arn:aws:kms:us-east-1:111122223333:key/test",
                            "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
                        });
                        (200, answer.to_string())
                    }
                    None => (
                        400,
                        r#"{"__type":"InvalidCiphertextException","message":"unknown"}"#.into(),
                    ),
                }
            }
            other => panic!("unexpected call {other}"),
        }
    }
}

/// Serves the fake on a thread; returns its endpoint.
fn serve(fake: Arc<Fake>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let (mut length, mut target) = (0, String::new());
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).is_err() || header == "\r\n" || header.is_empty() {
                    break;
                }
                let lower = header.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if lower.starts_with("x-amz-target:") {
                    target = header["x-amz-target:".len()..].trim().to_owned();
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let (status, answer) = fake.answer(&target, &body);
            let mut stream = reader.into_inner();
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/x-amz-json-1.1\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    endpoint
}

fn keyring(endpoint: &str) -> KmsKeyring {
    keyring_for(endpoint, "alias/checkpoints")
}

fn keyring_for(endpoint: &str, kms_key: &str) -> KmsKeyring {
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("x", "y", None, None, "test"))
        .retry_config(aws_sdk_kms::config::retry::RetryConfig::standard().with_max_attempts(1))
        .build();
    KmsKeyring::new(aws_sdk_kms::Client::from_conf(config), kms_key)
}

/// A sealed step, a wait, another sealed step.
fn workflow(
    keys: KmsKeyring,
) -> impl Fn(Workflow, ()) -> std::pin::Pin<Box<dyn Future<Output = Result<String, StepError>> + Send>>
+ Send
+ Sync
+ 'static {
    move |mut wf: Workflow, _: ()| {
        let codec = Encrypted::new(Json, keys.clone());
        Box::pin(async move {
            let card: String = wf
                .step_with(StepConfig::named("card").codec(codec.clone()), |_| async {
                    Ok("4111 1111 1111 1111".to_owned())
                })
                .await?;
            wf.wait("w", Duration::from_secs(60)).await;
            let token: String = wf
                .step_with(StepConfig::named("token").codec(codec), |_| async {
                    Ok("tok_42".to_owned())
                })
                .await?;
            Ok(format!("{}:{token}", &card[..4]))
        })
    }
}

#[tokio::test]
async fn data_keys_are_generated_once_and_open_on_another_instance() {
    let fake = Arc::new(Fake::default());
    let endpoint = serve(fake.clone());
    let keys = keyring(&endpoint);
    let run = LocalRunner::new()
        .plugin(keys.clone())
        .run(&workflow(keys.clone()), &())
        .await
        .unwrap();
    assert_eq!(
        run.result.as_deref(),
        Some("4111:tok_42"),
        "{:?}",
        run.error
    );
    assert_eq!(run.invocations, 2);
    // One data key for both invocations; nothing to decrypt on this instance.
    assert_eq!(fake.calls(), vec!["GenerateDataKey"]);
    let payload = step_result(run.operation("card").unwrap()).unwrap();
    assert!(payload.starts_with("sealed.json:") && !payload.contains("4111"));
    let ids = referenced_key_ids(payload);
    assert_eq!(ids.len(), 1);
    assert!(ids[0].starts_with(b"fake-kms-wrapped-data-key-"));
    // Debug names the data key by its id only, never its bytes.
    let shown = format!("{keys:?}");
    assert!(
        shown.contains("current: Some(\"0x66616b652d6b6d73…\")"),
        "{shown}"
    );
    assert!(shown.contains("cached: 1"), "{shown}");

    // Another instance (a cold start) replays: one Decrypt, then a data key
    // of its own for new payloads.
    let execution = LocalRunner::new().start(&()).unwrap();
    execution.invoke(&workflow(keys.clone())).await;
    assert_eq!(execution.status(), ExecutionStatus::Running);
    let other = keyring(&endpoint);
    other.prepare(&execution.operations()).await.unwrap();
    let summary = replay_history(
        &workflow(other.clone()),
        &execution.arn(),
        &execution.operations(),
    )
    .await;
    assert_eq!(
        summary.output.status,
        InvocationStatus::Pending,
        "{:?}",
        summary.output.error
    );
    assert_eq!(
        fake.calls(),
        vec!["GenerateDataKey", "Decrypt", "GenerateDataKey"]
    );
    // Prepared again: everything is cached.
    other.prepare(&execution.operations()).await.unwrap();
    assert_eq!(fake.calls().len(), 3);
}

#[tokio::test]
async fn a_key_kms_refuses_fails_the_execution_with_the_reason() {
    let fake = Arc::new(Fake::default());
    let endpoint = serve(fake.clone());
    let keys = keyring(&endpoint);
    let execution = LocalRunner::new().start(&()).unwrap();
    keys.prepare(&[]).await.unwrap();
    execution.invoke(&workflow(keys.clone())).await;
    let ops = execution.operations();
    let id = referenced_key_ids(step_result(&ops[1]).unwrap()).remove(0);
    fake.refused.lock().unwrap().insert(id);

    let other = keyring(&endpoint);
    other.prepare(&ops).await.unwrap();
    let summary = replay_history(&workflow(other), &execution.arn(), &ops).await;
    assert_eq!(summary.output.status, InvocationStatus::Failed);
    assert_eq!(summary.executed, 0);
    let message = summary.output.error.unwrap().error_message.unwrap();
    assert!(message.contains("AccessDeniedException"), "{message}");
    assert!(message.contains("\"card\""), "{message}");
    assert!(message.contains("key `0x66616b65"), "{message}");
}

#[tokio::test]
async fn a_kms_outage_fails_the_invocation_to_be_retried() {
    let fake = Arc::new(Fake::default());
    let endpoint = serve(fake.clone());
    let keys = keyring(&endpoint);
    fake.failing.store(1, Ordering::SeqCst);
    match keys.prepare(&[]).await {
        Err(ServiceError::Transient(message)) => {
            assert!(message.contains("KMSInternalException"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // Registered as a plugin, the local runner invokes again: it recovers.
    fake.failing.store(1, Ordering::SeqCst);
    let run = LocalRunner::new()
        .plugin(keys.clone())
        .run(&workflow(keys), &())
        .await
        .unwrap();
    assert_eq!(
        run.result.as_deref(),
        Some("4111:tok_42"),
        "{:?}",
        run.error
    );
}

#[tokio::test]
async fn an_unprepared_keyring_says_how_to_register_it() {
    let fake = Arc::new(Fake::default());
    let keys = keyring(&serve(fake.clone()));
    let run = LocalRunner::new().run(&workflow(keys), &()).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Failed);
    let message = run.error.unwrap().error_message.unwrap();
    assert!(message.contains("register it as a plugin"), "{message}");
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn a_new_kms_key_opens_old_payloads_only_with_the_old_key_retired() {
    let fake = Arc::new(Fake::default());
    let endpoint = serve(fake.clone());
    let old = keyring_for(&endpoint, "alias/old");
    old.prepare(&[]).await.unwrap();
    let execution = LocalRunner::new().start(&()).unwrap();
    execution.invoke(&workflow(old)).await;
    let ops = execution.operations();

    // Pointed at the new key alone: the old data key is refused.
    let new_only = keyring_for(&endpoint, "alias/new");
    new_only.prepare(&ops).await.unwrap();
    let summary = replay_history(&workflow(new_only), &execution.arn(), &ops).await;
    assert_eq!(summary.output.status, InvocationStatus::Failed);
    let message = summary.output.error.unwrap().error_message.unwrap();
    assert!(message.contains("IncorrectKeyException"), "{message}");

    // With the old key retired: old payloads open, new ones use the new key.
    let both = keyring_for(&endpoint, "alias/new").also_decrypt_with("alias/old");
    both.prepare(&ops).await.unwrap();
    let summary = replay_history(&workflow(both), &execution.arn(), &ops).await;
    assert_eq!(
        summary.output.status,
        InvocationStatus::Pending,
        "{:?}",
        summary.output.error
    );
    let generated_under: Vec<String> = fake
        .keys
        .lock()
        .unwrap()
        .values()
        .map(|(_, k)| k.clone())
        .collect();
    assert!(generated_under.contains(&"alias/new".to_owned()));
}

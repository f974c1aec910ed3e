//! Values kept on a durable file system (`durable_yield::codecs::files`):
//! a step result past the payload limit recorded as a pointer and replayed
//! from its file; and, against AWS's Python SDK (its `FileSystemSerDes`,
//! 3.0), the same envelopes, paths and files, each SDK reading what the
//! other wrote.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use durable_yield::codecs::files::{
    FileSystem, PathEncoding, PreviewConfig, PreviewMode, StorageMode, build_preview,
};
use durable_yield::codecs::{PayloadContext, from_payload, to_payload};
use durable_yield::{ExecutionStatus, LocalRunner, StepConfig, StepError, Workflow};
use durable_yield_tests::step_result;
use serde_json::{Value, json};

/// A fresh directory for one test, removed at the end.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("dy-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Dir(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const BIG: usize = 2 * 1024 * 1024;

/// A 2 MiB step result (past the 1 MiB an operation may checkpoint) and a
/// small one, both through `codec`, a wait between them and the end, so
/// that the second invocation replays both.
fn big_then_small(
    codec: FileSystem,
    ran: Arc<AtomicU32>,
) -> impl Fn(Workflow, ()) -> durable_yield_tests::BoxFuture<Result<usize, StepError>>
+ Send
+ Sync
+ 'static {
    move |mut wf: Workflow, ()| {
        let (codec, ran) = (codec.clone(), ran.clone());
        Box::pin(async move {
            let counter = ran.clone();
            let big: String = wf
                .step_with(StepConfig::named("big").codec(codec.clone()), move |_| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    async { Ok("x".repeat(BIG)) }
                })
                .await?;
            let small: u32 = wf
                .step_with(StepConfig::named("small").codec(codec), |_| async { Ok(7) })
                .await?;
            wf.wait("pause", Duration::from_secs(5)).await;
            Ok(big.len() + small as usize)
        })
    }
}

#[tokio::test]
async fn a_result_past_the_payload_limit_is_kept_in_a_file_and_replayed_from_it() {
    let dir = Dir::new("replay");
    let codec = FileSystem::new(&dir.0).mode(StorageMode::Overflow);
    let ran = Arc::new(AtomicU32::new(0));
    let run = LocalRunner::new()
        .run(&big_then_small(codec.clone(), ran.clone()), &())
        .await
        .unwrap();
    assert_eq!(run.status, ExecutionStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.result, Some(BIG + 7));
    assert_eq!(run.invocations, 2, "the wait ends the first invocation");
    assert_eq!(ran.load(Ordering::SeqCst), 1, "the replay read the file");

    let op = |name: &str| {
        run.operations
            .iter()
            .find(|op| op.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no operation {name}"))
    };
    let big = op("big");
    let file = codec
        .file_for(&PayloadContext::new(&run.arn, big.id.as_str()))
        .unwrap();
    assert_eq!(
        step_result(big),
        Some(format!("{{\"file\": \"{}\"}}", file.to_str().unwrap()).as_str()),
        "the record holds the pointer"
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().len(),
        BIG + 2,
        "the file holds the JSON string"
    );
    assert_eq!(step_result(op("small")), Some(r#"{"data": "7"}"#));

    // Without the codec the same step fails: 2 MiB is past the limit.
    let plain = |mut wf: Workflow, ()| async move {
        wf.step("big", |_| async { Ok("x".repeat(BIG)) }).await
    };
    let run = LocalRunner::new().run(&plain, &()).await.unwrap();
    assert_eq!(run.status, ExecutionStatus::Failed);
    let error = run.error.unwrap();
    assert_eq!(
        error.error_type.as_deref(),
        Some("PayloadTooLarge"),
        "{error:?}"
    );
}

// ------------------------------------------------ AWS's Python SDK

/// AWS's Python SDK in the workspace's `.venv` (which `.ci/run` creates:
/// the emulator depends on the SDK).
fn python() -> PathBuf {
    durable_yield_tests::emulator::workspace().join(".venv/bin/python")
}

/// Runs `script` with the SDK's `FileSystemSerDes`; `request` on stdin,
/// its JSON answer from stdout.
fn run_python(script: &str, request: &Value) -> Value {
    let python = python();
    assert!(
        python.exists(),
        "{} is missing: create it with `python3 -m venv .venv && .venv/bin/pip install \
         aws-durable-execution-sdk-python-testing` (which brings AWS's Python SDK 3.x), \
         or run .ci/run, which does",
        python.display()
    );
    let mut child = Command::new(&python)
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python starts");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(request.to_string().as_bytes())
            .expect("the request is written");
    }
    let out = child.wait_with_output().expect("python ends");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON answer")
}

/// Writes each request's value with the Python SDK's `FileSystemSerDes`
/// and reads each of our payloads back with it.
const SCRIPT: &str = r#"
import json, sys
from aws_durable_execution_sdk_python.filesystem_serdes import (
    FileSystemSerDes, FileSystemSerDesConfig, FileSystemSerDesMode, FileSystemPathEncoding)
from aws_durable_execution_sdk_python.serdes import JsonSerDes, SerDesContext, EXTENDED_TYPES_SERDES
from aws_durable_execution_sdk_python.preview import (
    build_preview, PreviewConfig, PreviewMode, PreviewField)

answers = []
for case in json.load(sys.stdin):
    preview = None
    if case["preview"] is not None:
        p = case["preview"]
        config = PreviewConfig(mode=PreviewMode.EXCLUDE_ALL,
                               include=[PreviewField(n) for n in p["include"]],
                               mask=[PreviewField(n) for n in p["mask"]])
        preview = lambda v, config=config: build_preview(v, config)
    serdes = FileSystemSerDes(case["base"], FileSystemSerDesConfig(
        storage_mode=FileSystemSerDesMode[case["mode"]],
        path_encoding=FileSystemPathEncoding[case["encoding"]],
        generate_preview=preview,
        serdes=JsonSerDes() if case["plain_json"] else EXTENDED_TYPES_SERDES))
    context = SerDesContext(case["op"], case["arn"])
    written = serdes.serialize(case["value"], context)
    read = serdes.deserialize(case["ours"], context)
    answers.append({"written": written, "read": read})
print(json.dumps(answers))
"#;

#[test]
#[ignore = "needs AWS's Python SDK (3.x, with FileSystemSerDes) in .venv: \
            run with --include-ignored (.ci/run does)"]
fn the_python_sdk_and_this_one_write_the_same_envelopes_and_read_each_others() {
    let dir = Dir::new("python");
    let arn = "arn:aws:lambda:us-east-1:123456789012:function:orders:$LATEST/durable-execution/run-7/0f1e2d";
    // A list of primitives: AWS's default serdes writes it as compact JSON,
    // as ours does (ASCII: Python escapes other characters, `serde_json`
    // writes them as UTF-8; the values read the same). An object: with its `JsonSerDes` (plain JSON, its own
    // spacing). A value past the overflow threshold. Keys in alphabetical
    // order, the order `serde_json` keeps.
    let list = json!([1, "e \"q\"", 2.5, true, null]);
    let order = json!({"card": "4111", "id": 7, "lines": [{"sku": "a"}], "note": "crème"});
    let huge = json!("y".repeat(300 * 1024));
    struct Case {
        op: &'static str,
        value: Value,
        mode: StorageMode,
        encoding: PathEncoding,
        preview: bool,
        plain_json: bool,
        /// Whether the file's contents are byte for byte ours too.
        same_file: bool,
    }
    let cases = [
        Case {
            op: "a1",
            value: list.clone(),
            mode: StorageMode::Always,
            encoding: PathEncoding::Uri,
            preview: false,
            plain_json: false,
            same_file: true,
        },
        Case {
            op: "a2",
            value: list.clone(),
            mode: StorageMode::Overflow,
            encoding: PathEncoding::Uri,
            preview: false,
            plain_json: false,
            same_file: true,
        },
        Case {
            op: "a3",
            value: list,
            mode: StorageMode::Always,
            encoding: PathEncoding::Hash,
            preview: false,
            plain_json: false,
            same_file: true,
        },
        Case {
            op: "b1",
            value: order.clone(),
            mode: StorageMode::Always,
            encoding: PathEncoding::Uri,
            preview: true,
            plain_json: true,
            same_file: false,
        },
        Case {
            op: "b2",
            value: order,
            mode: StorageMode::Overflow,
            encoding: PathEncoding::Hash,
            preview: false,
            plain_json: true,
            same_file: false,
        },
        Case {
            op: "c1",
            value: huge,
            mode: StorageMode::Overflow,
            encoding: PathEncoding::Uri,
            preview: true,
            plain_json: false,
            same_file: true,
        },
    ];
    let preview = PreviewConfig::new(PreviewMode::ExcludeAll)
        .include("id")
        .include("sku")
        .mask("card");
    let codec_for = |case: &Case| {
        let codec = FileSystem::new(dir.0.join("ours"))
            .mode(case.mode)
            .path_encoding(case.encoding);
        if case.preview {
            let config = preview.clone();
            codec.preview(move |v| build_preview(v, &config))
        } else {
            codec
        }
    };
    // Ours first (under `ours/`), then Python's (under `python/`).
    let mut request = Vec::new();
    let mut ours = Vec::new();
    for case in &cases {
        let cx = PayloadContext::new(arn, case.op);
        let payload = to_payload(&codec_for(case), &case.value, &cx).unwrap();
        let mode = match case.mode {
            StorageMode::Always => "ALWAYS",
            _ => "OVERFLOW",
        };
        let encoding = match case.encoding {
            PathEncoding::Uri => "URI",
            _ => "HASH",
        };
        request.push(json!({
            "base": dir.0.join("python"),
            "arn": arn,
            "op": case.op,
            "value": case.value,
            "mode": mode,
            "encoding": encoding,
            "preview": case.preview.then(|| json!({"include": ["id", "sku"], "mask": ["card"]})),
            "plain_json": case.plain_json,
            "ours": payload,
        }));
        ours.push(payload);
    }
    let answers = run_python(SCRIPT, &Value::Array(request));
    let answers = answers.as_array().expect("one answer per case");
    assert_eq!(answers.len(), cases.len());
    let (our_base, their_base) = (
        dir.0.join("ours").to_str().unwrap().to_owned(),
        dir.0.join("python").to_str().unwrap().to_owned(),
    );
    for ((case, answer), payload) in cases.iter().zip(answers).zip(&ours) {
        let what = case.op;
        // Python read ours.
        assert_eq!(
            answer["read"], case.value,
            "{what}: Python read our payload"
        );
        let written = answer["written"].as_str().expect("a payload");
        if case.same_file {
            // The same envelope, byte for byte, but for the base path.
            assert_eq!(
                written.replace(&their_base, &our_base),
                *payload,
                "{what}: the envelopes differ"
            );
        } else {
            // Python's `JsonSerDes` spaces its JSON: the same envelope
            // with the same value in it.
            let (mut a, mut b): (Value, Value) = (
                serde_json::from_str(&written.replace(&their_base, &our_base)).unwrap(),
                serde_json::from_str(payload).unwrap(),
            );
            for envelope in [&mut a, &mut b] {
                if let Some(Value::String(data)) = envelope.get("data") {
                    let data: Value = serde_json::from_str(data).unwrap();
                    envelope["data"] = data;
                }
            }
            assert_eq!(a, b, "{what}: the envelopes differ");
        }
        // We read Python's (with a codec at its base).
        let theirs = FileSystem::new(dir.0.join("python"))
            .mode(case.mode)
            .path_encoding(case.encoding);
        let back: Value =
            from_payload(&theirs, written, &PayloadContext::new(arn, case.op)).unwrap();
        assert_eq!(back, case.value, "{what}: we read Python's payload");
        // The files, where there are files.
        if written.starts_with("{\"file\": ") {
            let ours_file = their_file(payload);
            let their_file = their_file(written);
            let (a, b) = (
                std::fs::read_to_string(&ours_file).unwrap(),
                std::fs::read_to_string(&their_file).unwrap(),
            );
            if case.same_file {
                assert_eq!(a, b, "{what}: the files differ");
            } else {
                let (a, b): (Value, Value) = (
                    serde_json::from_str(&a).unwrap(),
                    serde_json::from_str(&b).unwrap(),
                );
                assert_eq!(a, b, "{what}: the files hold different values");
            }
        }
    }
    // The cases wrote where they should: a pointer for each but the small
    // inline ones.
    assert!(ours[1].starts_with("{\"data\": "), "{}", ours[1]);
    assert!(ours[4].starts_with("{\"data\": "), "{}", ours[4]);
    // (A string has no preview.)
    assert!(ours[5].starts_with("{\"file\": ") && !ours[5].contains("\"preview\""));
    assert!(
        ours[3].ends_with(
            ", \"preview\": {\"card\": \"***\", \"id\": 7, \"lines\": {\"sku\": \"a\"}}}"
        ),
        "{}",
        ours[3]
    );
}

/// The path an envelope points at.
fn their_file(envelope: &str) -> PathBuf {
    let value: Value = serde_json::from_str(envelope).unwrap();
    Path::new(value["file"].as_str().unwrap()).to_path_buf()
}

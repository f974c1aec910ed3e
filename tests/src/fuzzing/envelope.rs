//! Generated invocation envelopes and corrupted histories: never a panic.

use super::*;

/// How a generated step or wait is recorded (before corruptions).
#[derive(Debug, Clone, Copy, Arbitrary)]
pub(super) enum Recording {
    Succeeded,
    Failed,
    Started,
    Pending,
    Ready,
}

/// A targeted corruption of an otherwise valid history: each breaks one
/// rule, so that most generated histories still parse and reach the
/// interpreter, where replay is fuzzed.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub(super) enum Corruption {
    /// A type this SDK does not know.
    UnknownType(u8),
    /// A status this SDK does not know.
    UnknownStatus(u8),
    /// A step recorded as a wait or the other way round.
    SwapType(u8),
    /// Another name.
    Rename(u8),
    /// Another subtype.
    SubType(u8),
    /// A result no codec wrote, or one written by another codec, or 2 MiB.
    Payload(u8, u8),
    /// The same id again, later, with another status.
    Duplicate(u8, Recording),
    /// A parent id naming nothing.
    Parent(u8),
    /// An attempt count out of range.
    Attempt(u8, i64),
    /// An odd timestamp.
    Timestamp(u8, u8),
    /// No EXECUTION operation.
    NoExecution,
    /// An input the workflow cannot decode.
    Input(u8),
    /// An id the service would never send (empty or too long): the
    /// envelope does not parse.
    BadId(u8),
    /// A type that is not a string: the envelope does not parse.
    NotAString(u8),
}

pub(super) fn status_name(recording: Recording) -> &'static str {
    match recording {
        Recording::Succeeded => "SUCCEEDED",
        Recording::Failed => "FAILED",
        Recording::Started => "STARTED",
        Recording::Pending => "PENDING",
        Recording::Ready => "READY",
    }
}

/// The JSON of a valid history for `program`: the EXECUTION operation and
/// one recorded operation per call of a prefix of the program.
pub(super) fn valid_history(program: &Program, recordings: &[Recording]) -> Vec<serde_json::Value> {
    let mut ops = vec![serde_json::json!({
        "Id": "exec", "Type": "EXECUTION", "Status": "STARTED",
        "StartTimestamp": 1_795_755_619_735i64,
        "ExecutionDetails": {"InputPayload": "null"}
    })];
    for (i, (op, &recording)) in program.ops.iter().zip(recordings).enumerate() {
        let id = operation_id(None, i as u64 + 1).to_string();
        // A virtual child records nothing at its position.
        let Some(name) = op.recorded_name() else {
            continue;
        };
        let mut v = serde_json::json!({
            "Id": id, "StartTimestamp": 1_795_755_619_735i64,
        });
        if let Some(name) = name {
            v["Name"] = name.into();
        }
        match op {
            Op::Step { name, codec, .. } => {
                v["Type"] = "STEP".into();
                v["SubType"] = step_sub_type(name).into();
                let result = match codec {
                    // A flaky step's payload is plain JSON.
                    CodecKind::Json | CodecKind::Flaky => {
                        to_payload(&Json, &value(name, 1), &PayloadContext::DETACHED)
                    }
                    CodecKind::Bincode => {
                        to_payload(&Bincode, &value(name, 1), &PayloadContext::DETACHED)
                    }
                    CodecKind::MsgPack => {
                        to_payload(&MsgPack, &value(name, 1), &PayloadContext::DETACHED)
                    }
                    CodecKind::Compressed => to_payload(
                        &compressed_codec(),
                        &value(name, 1),
                        &PayloadContext::DETACHED,
                    ),
                    CodecKind::Sealed => to_payload(
                        &sealed_codec(),
                        &value(name, 1),
                        &PayloadContext::new(FUZZ_ARN, &id),
                    ),
                }
                .unwrap_or_default();
                v["Status"] = status_name(recording).into();
                v["StepDetails"] = match recording {
                    Recording::Succeeded => serde_json::json!({"Attempt": 1, "Result": result}),
                    Recording::Failed => serde_json::json!({"Attempt": 1,
                        "Error": {"ErrorType": "Flaky", "ErrorMessage": "recorded"}}),
                    Recording::Started => serde_json::json!({"Attempt": 0}),
                    Recording::Pending => serde_json::json!({"Attempt": 1,
                        "NextAttemptTimestamp": 1_795_755_679_735i64}),
                    Recording::Ready => serde_json::json!({"Attempt": 1}),
                };
            }
            Op::Wait { .. } => {
                v["Type"] = "WAIT".into();
                v["SubType"] = "Wait".into();
                v["Status"] = match recording {
                    Recording::Succeeded | Recording::Failed => "SUCCEEDED",
                    _ => "STARTED",
                }
                .into();
                v["WaitDetails"] =
                    serde_json::json!({"ScheduledEndTimestamp": 1_795_755_679_735i64});
            }
            Op::Condition { .. } => {
                v["Type"] = "STEP".into();
                v["SubType"] = "WaitForCondition".into();
                v["Status"] = status_name(recording).into();
                v["StepDetails"] = match recording {
                    Recording::Succeeded => serde_json::json!({"Attempt": 2, "Result": "2"}),
                    Recording::Failed => serde_json::json!({"Attempt": 1,
                        "Error": {"ErrorType": "WaitForConditionExhausted", "ErrorMessage": "x"}}),
                    Recording::Pending => serde_json::json!({"Attempt": 1, "Result": "1",
                        "NextAttemptTimestamp": 1_795_755_679_735i64}),
                    _ => serde_json::json!({"Attempt": 1, "Result": "1"}),
                };
            }
            Op::Invoke { .. } => {
                v["Type"] = "CHAINED_INVOKE".into();
                v["SubType"] = "ChainedInvoke".into();
                v["Status"] = status_name(recording).into();
                v["ChainedInvokeDetails"] = match recording {
                    Recording::Succeeded => serde_json::json!({"Result": "\"echoed\""}),
                    Recording::Failed => serde_json::json!({
                        "Error": {"ErrorType": "ResourceNotFoundException", "ErrorMessage": "no"}}),
                    _ => serde_json::json!({}),
                };
            }
            Op::Callback { wait: true, .. } => {
                // A context whose children (the callback, the submitter)
                // are not recorded: unless it ended, it runs again.
                v["Type"] = "CONTEXT".into();
                v["SubType"] = "WaitForCallback".into();
                v["Status"] = match recording {
                    Recording::Succeeded | Recording::Failed => status_name(recording),
                    _ => "STARTED",
                }
                .into();
                v["ContextDetails"] = match recording {
                    Recording::Succeeded => serde_json::json!({"Result": "\"done\""}),
                    Recording::Failed => serde_json::json!({
                        "Error": {"ErrorType": "Callback.Timeout", "ErrorMessage": "recorded"}}),
                    _ => serde_json::json!({}),
                };
            }
            Op::Callback { .. } => {
                v["Type"] = "CALLBACK".into();
                v["SubType"] = "Callback".into();
                v["Status"] = status_name(recording).into();
                v["CallbackDetails"] = match recording {
                    Recording::Succeeded => {
                        serde_json::json!({"CallbackId": "cb1", "Result": "done"})
                    }
                    Recording::Failed => serde_json::json!({"CallbackId": "cb1",
                        "Error": {"ErrorType": "Refused", "ErrorMessage": "no"}}),
                    // No id: the service always issues one.
                    Recording::Ready => serde_json::json!({}),
                    _ => serde_json::json!({"CallbackId": "cb1"}),
                };
            }
            Op::Child { .. } | Op::Batch { .. } => {
                v["Type"] = "CONTEXT".into();
                v["SubType"] = match op {
                    Op::Batch { parallel: true, .. } => "Parallel",
                    Op::Batch { .. } => "Map",
                    _ => "RunInChildContext",
                }
                .into();
                v["Status"] = status_name(recording).into();
                v["ContextDetails"] = match recording {
                    Recording::Succeeded => match op {
                        Op::Batch { .. } => serde_json::json!({
                            "Result": r#"{"all":[],"completionReason":"ALL_COMPLETED"}"#,
                            "ReplayChildren": false}),
                        _ => serde_json::json!({"Result": "\"recorded\"", "ReplayChildren": false}),
                    },
                    Recording::Failed => serde_json::json!({
                        "Error": {"ErrorType": "Failed", "ErrorMessage": "recorded"}}),
                    // Rebuilt from children that are not there.
                    Recording::Ready => serde_json::json!({"Result": "", "ReplayChildren": true}),
                    _ => serde_json::json!({}),
                };
            }
        }
        ops.push(v);
    }
    ops
}

pub(super) fn corrupt(ops: &mut Vec<serde_json::Value>, corruption: Corruption) {
    let n = ops.len();
    let at = |i: u8| usize::from(i) % n;
    match corruption {
        Corruption::UnknownType(i) => ops[at(i)]["Type"] = "FUTURE_OP".into(),
        Corruption::UnknownStatus(i) => ops[at(i)]["Status"] = "PAUSED".into(),
        Corruption::SwapType(i) => {
            let op = &mut ops[at(i)];
            op["Type"] = if op["Type"] == "STEP" { "WAIT" } else { "STEP" }.into();
        }
        Corruption::Rename(i) => ops[at(i)]["Name"] = "renamed".into(),
        Corruption::SubType(i) => ops[at(i)]["SubType"] = "Other".into(),
        Corruption::Payload(i, kind) => {
            ops[at(i)]["StepDetails"]["Result"] = match kind % 5 {
                0 => "msgpack:!!".to_owned(),
                1 => "bincode:AAAA".to_owned(),
                2 => "x".repeat(2 * 1024 * 1024),
                3 => "{not json".to_owned(),
                _ => "\"another value\"".to_owned(),
            }
            .into()
        }
        Corruption::Duplicate(i, recording) => {
            let mut copy = ops[at(i)].clone();
            copy["Status"] = status_name(recording).into();
            ops.push(copy);
        }
        Corruption::Parent(i) => ops[at(i)]["ParentId"] = "nothing-here".into(),
        Corruption::Attempt(i, a) => ops[at(i)]["StepDetails"]["Attempt"] = a.into(),
        Corruption::Timestamp(i, kind) => {
            ops[at(i)]["StartTimestamp"] = match kind % 3 {
                0 => serde_json::json!(-5),
                1 => serde_json::json!(1.5e300),
                _ => serde_json::Value::Null,
            }
        }
        Corruption::NoExecution => {
            ops.remove(0);
        }
        Corruption::Input(kind) => {
            ops[0]["ExecutionDetails"]["InputPayload"] =
                ["[", "7", "\"\"", "{}"][usize::from(kind) % 4].into()
        }
        Corruption::BadId(i) => {
            ops[at(i)]["Id"] = if i % 2 == 0 {
                String::new()
            } else {
                "y".repeat(70)
            }
            .into()
        }
        Corruption::NotAString(i) => ops[at(i)]["Type"] = 7.into(),
    }
}

/// Input of [`check_envelope_and_history`].
#[derive(Debug, Arbitrary)]
pub(super) struct EnvelopeCase {
    /// Under 16 (1 in 16): parse the rest of the input as an envelope
    /// instead.
    raw: u8,
    program: Program,
    /// How each call of a prefix of the program is recorded.
    recordings: Vec<Recording>,
    /// Up to three corruptions (more are ignored).
    corruptions: Vec<Corruption>,
}

/// Arbitrary bytes, and valid histories of a generated program with a few
/// targeted corruptions, parsed as an invocation envelope and replayed by
/// the program: never a panic; every rejection is a typed error, every end
/// a valid response.
pub fn check_envelope_and_history(data: &[u8]) -> Result<(), String> {
    envelope_and_history(data).map(|_| ())
}

/// [`check_envelope_and_history`], telling whether the input reached the
/// interpreter (parsed as an envelope): the share of generated inputs that
/// fuzz replay rather than the parser.
pub fn envelope_and_history(data: &[u8]) -> Result<bool, String> {
    let mut u = Unstructured::new(data);
    let Ok(case) = EnvelopeCase::arbitrary(&mut u) else {
        return Ok(false);
    };
    let input: InvocationInput = if case.raw < 16 {
        match serde_json::from_slice(u.take_rest()) {
            Ok(input) => input,
            Err(_) => return Ok(false),
        }
    } else {
        let mut ops = valid_history(&case.program, &case.recordings);
        for &corruption in case.corruptions.iter().take(3) {
            if !ops.is_empty() {
                corrupt(&mut ops, corruption);
            }
        }
        let envelope = serde_json::json!({
            "DurableExecutionArn": FUZZ_ARN,
            "CheckpointToken": "t",
            "InitialExecutionState": { "Operations": ops },
        });
        match serde_json::from_value(envelope) {
            Ok(input) => input,
            Err(_) => return Ok(false),
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| e.to_string())?;
    let wf = workflow(case.program, Probe::default());
    let result = runtime.block_on(durable_yield::engine::run_invocation(
        &wf,
        input,
        &crate::AcceptingService,
    ));
    match result {
        Ok(summary) => {
            let output = summary.output;
            let valid = match output.status {
                InvocationStatus::Succeeded => output.error.is_none() && output.result.is_some(),
                InvocationStatus::Failed => output.result.is_none() && output.error.is_some(),
                InvocationStatus::Pending => output.result.is_none() && output.error.is_none(),
                _ => false,
            };
            if !valid {
                return Err(format!("invalid response {output:?}"));
            }
            Ok(true)
        }
        Err(e) => Err(format!(
            "the accepting service made the invocation fail: {e}"
        )),
    }
}

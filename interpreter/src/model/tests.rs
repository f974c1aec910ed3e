use super::*;
use crate::limits::{MAX_ERROR_JSON, MAX_ERROR_TYPE};

#[test]
fn parses_the_envelope_from_the_protocol() {
    let json = r#"{"DurableExecutionArn":"arn:x","CheckpointToken":"tok",
     "InitialExecutionState":{"Operations":[{"Id":"exec-1","Type":"EXECUTION","Status":"STARTED",
       "Name":"run1","StartTimestamp":1795755619735,"ExecutionDetails":{"InputPayload":"{\"hello\":\"world\"}"},
       "StepDetails":{}, "Unknown": 1}],
       "NextMarker":""},
     "UpdatedOperationIds":[], "SomethingNew": true}"#;
    let input: InvocationInput = serde_json::from_str(json).unwrap();
    let op = &input.initial_execution_state.operations[0];
    assert_eq!(op.id.as_str(), "exec-1");
    assert_eq!(op.op_type, OperationType::Execution);
    assert_eq!(op.start_timestamp, Some(1_795_755_619_735));
    assert_eq!(
        op.execution_details
            .as_ref()
            .and_then(|d| d.input_payload.as_ref())
            .map(Payload::as_str),
        Some("{\"hello\":\"world\"}")
    );
}

#[test]
fn tolerates_nulls_and_fractional_timestamps() {
    let json = r#"{"Id":"a","Type":"STEP","Status":"SUCCEEDED","StartTimestamp":1.5e3,
        "EndTimestamp":null,"StepDetails":{"Result":null,"Attempt":1}}"#;
    let op: Operation = serde_json::from_str(json).unwrap();
    assert_eq!(op.start_timestamp, Some(1500));
    assert_eq!(op.end_timestamp, None);
    assert_eq!(op.step_details.unwrap().result, None);
}

#[test]
fn rejects_bad_ids_and_keeps_unknown_enums() {
    assert!(OperationId::new("").is_err());
    assert!(OperationId::new(&"a".repeat(65)).is_err());
    let op: Operation =
        serde_json::from_str(r#"{"Id":"a","Type":"FUTURE_OP","Status":"PAUSED"}"#).unwrap();
    assert_eq!(
        op.op_type,
        OperationType::Unknown(WireName::new("FUTURE_OP"))
    );
    assert_eq!(op.op_type.to_string(), "FUTURE_OP");
    assert_eq!(op.status.to_string(), "PAUSED");
    assert!(!op.status.is_terminal() && !op.status.is_known());
    // Unknown values are written back as they came.
    let back = serde_json::to_value(&op).unwrap();
    assert_eq!(back["Type"], "FUTURE_OP");
    assert_eq!(back["Status"], "PAUSED");
    let long = "X".repeat(100);
    let name = WireName::new(&long);
    assert_eq!(name.as_str(), &long[..WireName::MAX_LEN]);
    assert_eq!(WireName::new("PAUSED"), WireName::new("PAUSED"));
    assert_ne!(WireName::new("PAUSED"), WireName::new("RESUMED"));
    // As small as a plain enum.
    assert!(std::mem::size_of::<OperationType>() <= 4);
    assert!(std::mem::size_of::<OperationStatus>() <= 4);
    assert!(
        serde_json::from_str::<Operation>(r#"{"Id":"a","Type":7,"Status":"STARTED"}"#).is_err()
    );
    let long = format!(
        r#"{{"Id":"{}","Type":"STEP","Status":"STARTED"}}"#,
        "x".repeat(65)
    );
    assert!(serde_json::from_str::<Operation>(&long).is_err());
}

#[test]
fn enums_parse_their_display_names() {
    use std::str::FromStr;
    for t in [
        OperationType::Execution,
        OperationType::Context,
        OperationType::Step,
        OperationType::Wait,
        OperationType::Callback,
        OperationType::ChainedInvoke,
    ] {
        assert_eq!(OperationType::from_str(&t.to_string()), Ok(t));
        assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{t}\""));
    }
    for s in [
        OperationStatus::Started,
        OperationStatus::Pending,
        OperationStatus::Ready,
        OperationStatus::Succeeded,
        OperationStatus::Failed,
        OperationStatus::Cancelled,
        OperationStatus::TimedOut,
        OperationStatus::Stopped,
    ] {
        assert_eq!(OperationStatus::from_str(&s.to_string()), Ok(s));
        assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
    }
    assert!(OperationStatus::from_str("PAUSED").is_err());
    assert_eq!(
        OperationStatus::from_wire("PAUSED"),
        OperationStatus::Unknown(WireName::new("PAUSED"))
    );
}

#[test]
fn update_serializes_with_wire_names() {
    let mut u = OperationUpdate::new(
        OperationId::new("abc").unwrap(),
        OperationType::Wait,
        OperationAction::Start,
    );
    u.name = Some("cool-off".into());
    u.sub_type = Some("Wait".into());
    u.wait_options = Some(WaitOptions { wait_seconds: 60 });
    let v = serde_json::to_value(&u).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"Id":"abc","Name":"cool-off","Type":"WAIT","SubType":"Wait",
            "Action":"START","WaitOptions":{"WaitSeconds":60}})
    );
}

#[test]
fn the_size_estimate_bounds_the_json() {
    let mut u = OperationUpdate::new(
        OperationId::new("abc").unwrap(),
        OperationType::Step,
        OperationAction::Fail,
    );
    for payload in [
        "plain",
        "\"quoted\" \\ back",
        "\n\t\u{1}\u{1f}",
        &"\"".repeat(1000),
    ] {
        u.name = Some(payload.to_owned().into());
        u.sub_type = Some("Step".into());
        u.payload = Some(payload.into());
        u.error = Some(Box::new(ErrorObject {
            error_message: Some(payload.into()),
            error_type: Some("T".into()),
            error_data: Some(payload.into()),
            stack_trace: Some(vec![payload.into(), "x".into()]),
        }));
        u.step_options = Some(StepOptions {
            next_attempt_delay_seconds: Some(u32::MAX),
        });
        let actual = serde_json::to_vec(&u).unwrap().len();
        assert!(
            u.approx_size() >= actual,
            "{} < {actual} for {payload:?}",
            u.approx_size()
        );
        // Short strings are bounded at six bytes a character without
        // being scanned: up to 5 x 32 bytes too many for each of them.
        assert!(
            u.approx_size() <= actual + 400 + 7 * 5 * 32,
            "{} far above {actual}",
            u.approx_size()
        );
    }
}

#[test]
fn long_errors_are_cut_to_the_limits_with_a_marker() {
    let small = ErrorObject::new("T", "short");
    assert_eq!(small.clone().truncated(), small);
    for text in [
        "x".repeat(100_000),
        "\"".repeat(40_000),
        "\u{1}".repeat(40_000),
        "é€😀".repeat(20_000),
    ] {
        let e = ErrorObject {
            error_message: Some(text.clone()),
            error_type: Some("T".repeat(1000)),
            error_data: Some(text.clone()),
            stack_trace: Some(vec![text.clone(), "frame".into()]),
        };
        let cut = e.truncated();
        let json = serde_json::to_vec(&cut).unwrap().len();
        assert!(json <= MAX_ERROR_JSON, "{json} bytes");
        assert!(cut.error_type.as_ref().unwrap().len() <= MAX_ERROR_TYPE + 40);
        let message = cut.error_message.unwrap();
        assert!(
            message.contains("…[truncated "),
            "{}",
            &message[message.len() - 40..]
        );
        assert!(json_string_len(&message) >= 1000);
    }
}

#[test]
fn json_string_len_is_serde_json_s_length() {
    // serde_json escapes control characters as `\n`-style pairs where
    // it can, so its length is at most ours; `"`, `\\` and the rest of
    // the text count exactly.
    let long_quotes = "\"a\\".repeat(5000);
    let long_controls = "\u{1}x".repeat(9000);
    for s in [
        "",
        "plain",
        "é ✓ 😀",
        "\"\\",
        "\u{1f}\u{0}",
        long_quotes.as_str(),
        long_controls.as_str(),
    ] {
        let json = serde_json::to_string(s).unwrap().len();
        let ours = json_string_len(s);
        assert!(
            ours >= json,
            "{ours} < {json} for {:?}",
            &s[..s.len().min(20)]
        );
        let controls = s.bytes().filter(|b| *b < 0x20).count();
        let escaped = s.bytes().filter(|b| matches!(b, b'"' | b'\\')).count();
        assert_eq!(ours, 2 + s.len() + escaped + 5 * controls);
    }
}

#[test]
fn output_serializes_like_the_service_expects() {
    let out = InvocationOutput {
        status: InvocationStatus::Pending,
        result: None,
        error: None,
    };
    assert_eq!(
        serde_json::to_string(&out).unwrap(),
        r#"{"Status":"PENDING"}"#
    );
}

//! Tests of [`from_json`](super::from_json): it reads what this SDK
//! writes as serde does, and leaves any other text to serde.

use super::*;
use crate::model::ErrorObject;
use serde_json::{Value, json};

fn serde<T: DeserializeOwned>(text: &str) -> Option<BatchResult<T>> {
    serde_json::from_str(text).ok()
}

fn item<T>(index: usize, status: BatchItemStatus, result: Option<T>) -> BatchItem<T> {
    BatchItem {
        index,
        status,
        result,
        error: None,
    }
}

fn batch<T>(items: Vec<BatchItem<T>>, reason: CompletionReason) -> BatchResult<T> {
    BatchResult {
        items,
        completion_reason: reason,
        name: None,
    }
}

#[test]
fn what_this_sdk_writes_reads_back_as_serde_reads_it() {
    let mut failed = item(2, BatchItemStatus::Failed, None);
    failed.error = Some(ErrorObject {
        error_type: Some("Boom".into()),
        error_message: Some("a \"quoted\" message, with } and ]".into()),
        error_data: None,
        stack_trace: Some(vec!["at f".into(), "at g".into()]),
    });
    let values = batch(
        vec![
            item(
                0,
                BatchItemStatus::Succeeded,
                Some(json!({"a": [1, {"b": "}]\\\""}], "c": null})),
            ),
            item(
                1,
                BatchItemStatus::Succeeded,
                Some(json!("é, \u{1F600} and \n")),
            ),
            failed,
            item(3, BatchItemStatus::Started, None),
            item(4, BatchItemStatus::Succeeded, Some(json!([]))),
            item(5, BatchItemStatus::Succeeded, Some(json!(-1.5e300))),
            item(12, BatchItemStatus::NotStarted, None),
        ],
        CompletionReason::FailureToleranceExceeded,
    );
    let text = serde_json::to_string(&values).unwrap();
    let fast = from_json::<Value>(&text, 0).expect("the shape this SDK writes");
    assert_eq!(fast, values);
    assert_eq!(Some(fast), serde::<Value>(&text));

    // Typed values, `null` results and an empty batch.
    let numbers = batch(
        (0..30)
            .map(|i| item(i, BatchItemStatus::Succeeded, Some(i as u32 * 7)))
            .collect(),
        CompletionReason::AllCompleted,
    );
    let text = serde_json::to_string(&numbers).unwrap();
    assert_eq!(from_json::<u32>(&text, 0), Some(numbers));
    let units = batch(
        vec![item(0, BatchItemStatus::Succeeded, None::<()>)],
        CompletionReason::MinSuccessfulReached,
    );
    let text = serde_json::to_string(&units).unwrap();
    assert_eq!(
        text,
        r#"{"all":[{"index":0,"status":"SUCCEEDED","result":null,"error":null}],"completionReason":"MIN_SUCCESSFUL_REACHED"}"#
    );
    assert_eq!(from_json::<()>(&text, 0), serde::<()>(&text));
    assert!(from_json::<()>(&text, 0).is_some());
    let empty = batch(
        Vec::<BatchItem<u8>>::new(),
        CompletionReason::CustomCompletionFailed,
    );
    let text = serde_json::to_string(&empty).unwrap();
    assert_eq!(from_json::<u8>(&text, 0), Some(empty));
}

#[test]
fn other_text_is_left_to_serde() {
    let canonical = r#"{"all":[{"index":0,"status":"SUCCEEDED","result":7,"error":null}],"completionReason":"ALL_COMPLETED"}"#;
    assert!(from_json::<u32>(canonical, 2).is_some());
    for other in [
        // Whitespace, another key order, an extra key: serde reads them.
        r#"{ "all":[{"index":0,"status":"SUCCEEDED","result":7,"error":null}],"completionReason":"ALL_COMPLETED"}"#,
        r#"{"all":[{"status":"SUCCEEDED","index":0,"result":7,"error":null}],"completionReason":"ALL_COMPLETED"}"#,
        r#"{"all":[{"index":0,"status":"SUCCEEDED","result":7,"error":null,"x":1}],"completionReason":"ALL_COMPLETED"}"#,
        r#"{"all":[{"index":0,"status":"SUCCEEDED","result":7,"error":null}],"completionReason":"ALL_COMPLETED"} "#,
        r#"{"completionReason":"ALL_COMPLETED","all":[]}"#,
    ] {
        assert_eq!(from_json::<u32>(other, 0), None, "{other}");
        assert!(serde::<u32>(other).is_some(), "{other}");
    }
    for bad in [
        "",
        "{",
        r#"{"all":[{"index":01,"status":"SUCCEEDED","result":7,"error":null}],"completionReason":"ALL_COMPLETED"}"#,
        r#"{"all":[{"index":0,"status":"SUCCEEDED","result":"seven","error":null}],"completionReason":"ALL_COMPLETED"}"#,
        r#"{"all":[{"index":0,"status":"DONE","result":7,"error":null}],"completionReason":"ALL_COMPLETED"}"#,
        r#"{"all":[{"index":0,"status":"SUCCEEDED","result":7,"error":7}],"completionReason":"ALL_COMPLETED"}"#,
        r#"{"all":[{"index":0,"status":"SUCCEEDED","result":7,"error":null}],"completionReason":"SOON"}"#,
        r#"{"all":[{"index":0,"status":"SUCCEEDED","result":[7,"error":null}],"completionReason":"ALL_COMPLETED"}"#,
        r#"{"all":[{"index":99999999999999999999999,"status":"SUCCEEDED","result":7,"error":null}],"completionReason":"ALL_COMPLETED"}"#,
        r#"{"all":[{"index":0,"status":"SUCCEEDED","result":"\"#,
    ] {
        assert_eq!(from_json::<u32>(bad, 0), None, "{bad}");
        assert!(serde::<u32>(bad).is_none(), "{bad}");
    }
}

/// Every text made by changing, dropping or adding a byte of results
/// this SDK writes: where [`from_json`] reads one, serde reads the
/// same.
#[test]
fn never_reads_what_serde_reads_otherwise() {
    let mut failed = item(1, BatchItemStatus::Failed, None);
    failed.error = Some(ErrorObject::new("E", "m\"}"));
    let samples = [
        serde_json::to_string(&batch(
            vec![
                item(
                    0,
                    BatchItemStatus::Succeeded,
                    Some(json!({"k": ["v", 1, null]})),
                ),
                failed,
                item(10, BatchItemStatus::Started, None),
            ],
            CompletionReason::AllCompleted,
        ))
        .unwrap(),
        serde_json::to_string(&batch(
            vec![item(0, BatchItemStatus::Succeeded, Some(json!("a\\\"b")))],
            CompletionReason::CustomCompletionSucceeded,
        ))
        .unwrap(),
    ];
    let replacements = b"0123456789{}[]\",:\\ aeflnrstuSCDFNT-.";
    let mut checked = 0;
    for sample in &samples {
        let bytes = sample.as_bytes();
        for at in 0..=bytes.len() {
            let mut variants = Vec::new();
            if at < bytes.len() {
                let mut dropped = bytes.to_vec();
                dropped.remove(at);
                variants.push(dropped);
            }
            for &r in replacements {
                if at < bytes.len() {
                    let mut changed = bytes.to_vec();
                    changed[at] = r;
                    variants.push(changed);
                }
                let mut added = bytes.to_vec();
                added.insert(at, r);
                variants.push(added);
            }
            for variant in variants {
                let Ok(text) = String::from_utf8(variant) else {
                    continue;
                };
                if let Some(fast) = from_json::<Value>(&text, 0) {
                    assert_eq!(Some(fast), serde::<Value>(&text), "{text}");
                    checked += 1;
                }
            }
        }
    }
    // Some changes keep the shape (another digit, another letter in a
    // string): those were compared.
    assert!(checked > 100, "{checked}");
}

//! A batch result read back from the JSON this SDK writes, without serde's
//! generic machinery for the parts whose shape is fixed.
//!
//! A map or parallel operation whose result was recorded replays by
//! decoding that result, in every later invocation. Through serde's
//! derived `Deserialize`, each item's keys and status are parsed as
//! strings and matched by name: about 1,800 instructions for an item of
//! 60 bytes. The JSON this SDK writes (`serde_json` and
//! [`splice_json`](super::splice_json), the same text) has one shape,
//! `{"all":[{"index":0,"status":"SUCCEEDED","result":…,"error":null},…],"completionReason":"…"}`,
//! which [`from_json`] reads by comparing bytes, handing only each value
//! (`result`, a non-null `error`) to serde. Any other text (whitespace,
//! other key orders or extra keys, as another SDK may write them, or text
//! that is not JSON) is left to serde: [`from_json`] returns `None`, never
//! a different result.

use serde::de::DeserializeOwned;

use super::{
    BatchItem, BatchItemStatus, BatchResult, CompletionReason, item_error, succeeded_null,
};

/// `text` read as a batch result, if it has exactly the shape this SDK
/// writes and every value in it decodes; otherwise `None` (decode it with
/// serde, which then gives the same result or the error).
pub(crate) fn from_json<T: DeserializeOwned>(text: &str) -> Option<BatchResult<T>> {
    let mut p = Cursor {
        text,
        bytes: text.as_bytes(),
        at: 0,
    };
    p.eat(b"{\"all\":[")?;
    let mut items = Vec::new();
    if !p.eat_byte(b']') {
        loop {
            p.eat(b"{\"index\":")?;
            let index = p.index()?;
            p.eat(b",\"status\":\"")?;
            let status = p.status()?;
            p.eat(b",\"result\":")?;
            let result = match p.value()? {
                // As `BatchItem`'s `Deserialize` reads it.
                "null" => succeeded_null(status),
                raw => Some(serde_json::from_str::<T>(raw).ok()?),
            };
            p.eat(b",\"error\":")?;
            let error = match p.value()? {
                "null" => None,
                raw => {
                    let mut de = serde_json::Deserializer::from_str(raw);
                    let error = item_error::deserialize(&mut de).ok()?;
                    de.end().ok()?;
                    error
                }
            };
            p.eat(b"}")?;
            items.push(BatchItem {
                index,
                status,
                result,
                error,
            });
            if p.eat_byte(b',') {
                continue;
            }
            p.eat(b"]")?;
            break;
        }
    }
    p.eat(b",\"completionReason\":\"")?;
    let completion_reason = CompletionReason::parse(p.plain_string()?)?;
    p.eat(b"}")?;
    (p.at == p.bytes.len()).then_some(BatchResult {
        items,
        completion_reason,
        name: None,
    })
}

/// A position in the text being read.
struct Cursor<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    /// Steps over `expected` if the text goes on with it.
    #[inline]
    fn eat(&mut self, expected: &[u8]) -> Option<()> {
        let end = self.at.checked_add(expected.len())?;
        if self.bytes.get(self.at..end)? == expected {
            self.at = end;
            Some(())
        } else {
            None
        }
    }

    /// Steps over `expected` if it is the next byte; whether it was.
    #[inline]
    fn eat_byte(&mut self, expected: u8) -> bool {
        let next = self.bytes.get(self.at) == Some(&expected);
        self.at += usize::from(next);
        next
    }

    /// A JSON number that is a `usize`: digits, no sign, no leading zero
    /// (serde rejects one), no fraction or exponent.
    fn index(&mut self) -> Option<usize> {
        let start = self.at;
        let mut n: usize = 0;
        while let Some(&b) = self.bytes.get(self.at) {
            if !b.is_ascii_digit() {
                break;
            }
            n = n.checked_mul(10)?.checked_add(usize::from(b - b'0'))?;
            self.at += 1;
        }
        let digits = self.at - start;
        let leading_zero = digits > 1 && self.bytes[start] == b'0';
        (digits > 0 && !leading_zero).then_some(n)
    }

    /// A status and its closing quote.
    fn status(&mut self) -> Option<BatchItemStatus> {
        for (text, status) in [
            (&b"SUCCEEDED\""[..], BatchItemStatus::Succeeded),
            (b"FAILED\"", BatchItemStatus::Failed),
            (b"STARTED\"", BatchItemStatus::Started),
            (b"NOT_STARTED\"", BatchItemStatus::NotStarted),
        ] {
            if self.eat(text).is_some() {
                return Some(status);
            }
        }
        None
    }

    /// The text up to the next quote, which it steps over, if it has no
    /// escape (a completion reason has none).
    fn plain_string(&mut self) -> Option<&'a str> {
        let start = self.at;
        let len = self.bytes[start..].iter().position(|&b| b == b'"')?;
        let text = self.text.get(start..start + len)?;
        if text.contains('\\') {
            return None;
        }
        self.at = start + len + 1;
        Some(text)
    }

    /// The text of the JSON value that starts here: a string, an object
    /// or an array (to its matching close, strings skipped), or anything
    /// else up to the next `,`, `}`, `]` or whitespace. Only its extent is
    /// found; serde checks the value when it decodes it.
    fn value(&mut self) -> Option<&'a str> {
        let start = self.at;
        let bytes = self.bytes;
        let end = match *bytes.get(start)? {
            b'"' => self.string_end(start)?,
            b'{' | b'[' => {
                let mut depth = 0usize;
                let mut i = start;
                loop {
                    match *bytes.get(i)? {
                        b'"' => {
                            i = self.string_end(i)?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                break i + 1;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
            // A number, `true`, `false` or `null`, up to what follows it:
            // whitespace around it is not this SDK's shape (and `"null "`
            // is not `"null"`), so it ends there and is refused after.
            _ => {
                let len = bytes[start..].iter().position(|&b| {
                    matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                })?;
                if len == 0 {
                    return None;
                }
                start + len
            }
        };
        self.at = end;
        self.text.get(start..end)
    }

    /// Where the string that opens at `open` (a quote) ends: just past its
    /// closing quote, escapes skipped.
    fn string_end(&self, open: usize) -> Option<usize> {
        let mut i = open + 1;
        loop {
            match *self.bytes.get(i)? {
                b'"' => return Some(i + 1),
                b'\\' => i += 2,
                _ => i += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
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
        let fast = from_json::<Value>(&text).expect("the shape this SDK writes");
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
        assert_eq!(from_json::<u32>(&text), Some(numbers));
        let units = batch(
            vec![item(0, BatchItemStatus::Succeeded, None::<()>)],
            CompletionReason::MinSuccessfulReached,
        );
        let text = serde_json::to_string(&units).unwrap();
        assert_eq!(
            text,
            r#"{"all":[{"index":0,"status":"SUCCEEDED","result":null,"error":null}],"completionReason":"MIN_SUCCESSFUL_REACHED"}"#
        );
        assert_eq!(from_json::<()>(&text), serde::<()>(&text));
        assert!(from_json::<()>(&text).is_some());
        let empty = batch(
            Vec::<BatchItem<u8>>::new(),
            CompletionReason::CustomCompletionFailed,
        );
        let text = serde_json::to_string(&empty).unwrap();
        assert_eq!(from_json::<u8>(&text), Some(empty));
    }

    #[test]
    fn other_text_is_left_to_serde() {
        let canonical = r#"{"all":[{"index":0,"status":"SUCCEEDED","result":7,"error":null}],"completionReason":"ALL_COMPLETED"}"#;
        assert!(from_json::<u32>(canonical).is_some());
        for other in [
            // Whitespace, another key order, an extra key: serde reads them.
            r#"{ "all":[{"index":0,"status":"SUCCEEDED","result":7,"error":null}],"completionReason":"ALL_COMPLETED"}"#,
            r#"{"all":[{"status":"SUCCEEDED","index":0,"result":7,"error":null}],"completionReason":"ALL_COMPLETED"}"#,
            r#"{"all":[{"index":0,"status":"SUCCEEDED","result":7,"error":null,"x":1}],"completionReason":"ALL_COMPLETED"}"#,
            r#"{"all":[{"index":0,"status":"SUCCEEDED","result":7,"error":null}],"completionReason":"ALL_COMPLETED"} "#,
            r#"{"completionReason":"ALL_COMPLETED","all":[]}"#,
        ] {
            assert_eq!(from_json::<u32>(other), None, "{other}");
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
            assert_eq!(from_json::<u32>(bad), None, "{bad}");
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
                    if let Some(fast) = from_json::<Value>(&text) {
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
}

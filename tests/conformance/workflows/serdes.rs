//! The workflows of the the custom serdes of the requirements (used by several suites) requirements.

use super::*;

/// A plain-text, untagged codec, as the requirements' custom serdes are:
/// `write` turns the value (as JSON) into the payload's text, `read` turns
/// the text back into the value's JSON.
#[derive(Clone, Copy)]
pub(super) struct TextCodec {
    id: &'static str,
    write: fn(Value) -> Result<String, String>,
    read: fn(&str) -> Result<Value, String>,
}

impl Codec for TextCodec {
    fn id(&self) -> &str {
        self.id
    }
    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        _: &PayloadContext<'_>,
    ) -> Result<Vec<u8>, CodecError> {
        let encode = |message: String| CodecError::Encode {
            codec: self.id.to_owned(),
            message,
        };
        let value = serde_json::to_value(value).map_err(|e| encode(e.to_string()))?;
        (self.write)(value).map(String::into_bytes).map_err(encode)
    }
    fn decode<T: DeserializeOwned>(
        &self,
        bytes: &[u8],
        _: &PayloadContext<'_>,
    ) -> Result<T, CodecError> {
        let decode = |message: String| CodecError::Decode {
            codec: self.id.to_owned(),
            message,
        };
        let text = std::str::from_utf8(bytes).map_err(|e| decode(e.to_string()))?;
        let value = (self.read)(text).map_err(decode)?;
        serde_json::from_value(value).map_err(|e| decode(e.to_string()))
    }
    fn is_text(&self) -> bool {
        true
    }
    fn tagged(&self) -> bool {
        false
    }
    fn binds_context(&self) -> bool {
        false
    }
}

pub(super) fn json_text(value: Value) -> Result<String, String> {
    Ok(value.to_string())
}

pub(super) fn parse_json(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// JSON with every string in upper case (1-6, 5-15).
pub(super) const UPPERCASE: TextCodec = TextCodec {
    id: "uppercase",
    write: |value| json_text(upper(value)),
    read: parse_json,
};

/// A string in upper case as plain text, read back as it is (3-14).
pub(super) const UPPERCASE_TEXT: TextCodec = TextCodec {
    id: "uppercase-text",
    write: |value| match value {
        Value::String(s) => Ok(s.to_uppercase()),
        other => Ok(other.to_string()),
    },
    read: |text| Ok(Value::String(text.to_owned())),
};

/// The sender's JSON, its `timestamp` (RFC 3339 text) read as epoch
/// seconds (4-15).
pub(super) const WITH_DATE: TextCodec = TextCodec {
    id: "with-date",
    write: json_text,
    read: |text| {
        let mut value = parse_json(text)?;
        if let Some(at) = value
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(epoch_seconds)
        {
            value["timestamp"] = json!(at);
        }
        Ok(value)
    },
};

/// The sender's text read as a number (4-16).
pub(super) const AS_NUMBER: TextCodec = TextCodec {
    id: "as-number",
    write: json_text,
    read: |text| {
        let text = text.trim().trim_matches('"');
        match text.parse::<i64>() {
            Ok(n) => Ok(json!(n)),
            Err(_) => text
                .parse::<f64>()
                .map(|n| json!(n))
                .map_err(|e| e.to_string()),
        }
    },
};

/// A string state as `state:<text>` (6-11).
pub(super) const PREFIXED: TextCodec = TextCodec {
    id: "prefixed",
    write: |value| match value {
        Value::String(s) => Ok(format!("state:{s}")),
        other => Err(format!("not a string: {other}")),
    },
    read: |text| {
        text.strip_prefix("state:")
            .map(|s| Value::String(s.to_owned()))
            .ok_or_else(|| format!("{text:?} is not a prefixed state"))
    },
};

/// A string as `wrapped:<text>` (9-14).
pub(super) const WRAPPED: TextCodec = TextCodec {
    id: "wrapped",
    write: |value| Ok(format!("wrapped:{}", text(&value))),
    read: |text| {
        text.strip_prefix("wrapped:")
            .map(|s| Value::String(s.to_owned()))
            .ok_or_else(|| format!("{text:?} is not wrapped"))
    },
};

/// A map result of strings as `OPSERDE:<results joined by commas>`, read
/// back as a result of succeeded items (9-19, 9-20).
pub(super) const OP_SERDE: TextCodec = TextCodec {
    id: "opserde",
    write: |value| {
        let results: Vec<String> = value["all"]
            .as_array()
            .map(|items| items.iter().map(|i| text(&i["result"])).collect())
            .unwrap_or_default();
        Ok(format!("OPSERDE:{}", results.join(",")))
    },
    read: |text| {
        let joined = text
            .strip_prefix("OPSERDE:")
            .ok_or_else(|| format!("{text:?} is no OPSERDE result"))?;
        let all: Vec<Value> = joined
            .split(',')
            .filter(|s| !s.is_empty())
            .enumerate()
            .map(|(index, r)| {
                json!({"index": index, "status": "SUCCEEDED", "result": r, "error": null})
            })
            .collect();
        Ok(json!({"all": all, "completionReason": "ALL_COMPLETED"}))
    },
};

/// A value `v` as `{"wrapped": v}` (8-15).
pub(super) const ENVELOPED: TextCodec = TextCodec {
    id: "enveloped",
    write: |value| json_text(json!({ "wrapped": value })),
    read: |text| Ok(parse_json(text)?["wrapped"].take()),
};

/// The target's raw answer read upper-cased, as text (5-16).
pub(super) const UPPER_RAW: TextCodec = TextCodec {
    id: "upper-raw",
    write: json_text,
    read: |text| Ok(Value::String(text.to_uppercase())),
};

//! [`ErrorObject`]: an error as the service stores it, cut to its limits.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::json_string_len;
use crate::limits::{MAX_ERROR_JSON, MAX_ERROR_TYPE};

/// An error as the service stores it. All fields are optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct ErrorObject {
    /// A human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// The error's type, e.g. `NonDeterministicExecution`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// Extra data, usually encoded with a codec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_data: Option<String>,
    /// A stack trace, one frame per entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_trace: Option<Vec<String>>,
}

impl ErrorObject {
    /// An error with a type and a message.
    pub fn new(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorObject {
            error_message: Some(message.into()),
            error_type: Some(error_type.into()),
            error_data: None,
            stack_trace: None,
        }
    }
}

impl ErrorObject {
    /// The length of the error's JSON (an upper bound: control characters
    /// are counted at their longest escape).
    pub fn json_len(&self) -> usize {
        let field = |s: &Option<String>| s.as_deref().map_or(0, |s| 16 + json_string_len(s));
        2 + field(&self.error_message)
            + field(&self.error_type)
            + field(&self.error_data)
            + self.stack_trace.as_ref().map_or(0, |t| {
                16 + t.iter().map(|l| json_string_len(l) + 1).sum::<usize>()
            })
    }

    /// The error cut to fit the service's limits: `ErrorType` to
    /// [`MAX_ERROR_TYPE`] bytes, the whole object to [`MAX_ERROR_JSON`]
    /// bytes of JSON. Stack frames go first, then the message (down to
    /// 4 KiB), then the data, then the rest of the message. Every cut field
    /// ends in a visible marker, `…[truncated N bytes]`; an error that fits
    /// is returned unchanged.
    pub fn truncated(mut self) -> Self {
        // Nested, not a let chain: the crates' `rust-version` is 1.85.
        if let Some(t) = &mut self.error_type {
            if t.len() > MAX_ERROR_TYPE {
                cut_to(t, MAX_ERROR_TYPE);
            }
        }
        let excess = |e: &ErrorObject| e.json_len().saturating_sub(MAX_ERROR_JSON);
        let over = excess(&self);
        if over == 0 {
            return self;
        }
        if let Some(frames) = &mut self.stack_trace {
            let mut over = over;
            let mut dropped = 0;
            while over > 0 && !frames.is_empty() {
                let frame = frames.pop().unwrap_or_default();
                over = over.saturating_sub(json_string_len(&frame) + 1);
                dropped += 1;
            }
            if dropped > 0 {
                frames.push(format!("…[{dropped} frames truncated]"));
            }
        }
        // The message down to 4 KiB, then the data, then the rest of the
        // message.
        for (message, floor) in [(true, 4096), (false, 0), (true, 0)] {
            let over = excess(&self);
            if over == 0 {
                return self;
            }
            let target = if message {
                &mut self.error_message
            } else {
                &mut self.error_data
            };
            if let Some(text) = target {
                let len = json_string_len(text);
                let want = len.saturating_sub(over).max(floor);
                if want < len {
                    cut_to(text, want);
                }
            }
        }
        if excess(&self) > 0 {
            // Only a pathological stack of tiny frames can get here.
            self.stack_trace = None;
        }
        self
    }
}

/// Cuts `text` so that its JSON string, marker included, takes at most
/// `max` bytes (on a character boundary).
fn cut_to(text: &mut String, max: usize) {
    let total = text.len();
    let marker_room = 32;
    let budget = max.saturating_sub(marker_room + 2);
    let mut used = 0;
    let mut end = 0;
    for (i, c) in text.char_indices() {
        let cost = match c {
            '"' | '\\' => 2,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf8(),
        };
        if used + cost > budget {
            break;
        }
        used += cost;
        end = i + c.len_utf8();
    }
    text.truncate(end);
    text.push_str(&format!("…[truncated {} bytes]", total - end));
}

impl fmt::Display for ErrorObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.error_type, &self.error_message) {
            (Some(t), Some(m)) => write!(f, "{t}: {m}"),
            (Some(t), None) => f.write_str(t),
            (None, Some(m)) => f.write_str(m),
            (None, None) => f.write_str("unknown error"),
        }
    }
}

//! [`Flaky`]: JSON whose storage is unreachable for a while, for the
//! tests and the fuzz programs of transient codec failures.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use durable_yield::codecs::{Codec, CodecError, Json, PayloadContext};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// JSON whose storage is unreachable (`CodecError::Unavailable`) for the
/// first `encode_failures` encodes after `encodes_before` good ones and
/// the first `decode_failures` decodes after `decodes_before` good ones.
/// Clones share their counters.
#[derive(Debug, Clone, Default)]
pub struct Flaky {
    /// Encodes left to fail.
    pub encode_failures: Arc<AtomicU32>,
    /// Encodes so far.
    pub encodes: Arc<AtomicU32>,
    /// Good encodes before the first failure.
    pub encodes_before: u32,
    /// Decodes left to fail.
    pub decode_failures: Arc<AtomicU32>,
    /// Decodes so far.
    pub decodes: Arc<AtomicU32>,
    /// Good decodes before the first failure.
    pub decodes_before: u32,
    /// Payloads without the `flaky-json:` tag (plain JSON, for another
    /// function to read, or read from a history written as JSON).
    pub untagged: bool,
    /// Failures made so far.
    pub failed: Arc<AtomicU32>,
}

impl Flaky {
    /// Failing its first `n` encodes.
    pub fn failing_encodes(n: u32) -> Self {
        Flaky {
            encode_failures: Arc::new(AtomicU32::new(n)),
            ..Flaky::default()
        }
    }

    /// Failing its first `n` decodes.
    pub fn failing_decodes(n: u32) -> Self {
        Flaky {
            decode_failures: Arc::new(AtomicU32::new(n)),
            ..Flaky::default()
        }
    }

    /// Whether this call fails: the `count`-th call, past `before` good
    /// ones, takes one from `left`.
    fn fails(&self, calls: &AtomicU32, before: u32, left: &AtomicU32) -> bool {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        let fails = n >= before
            && left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        if fails {
            self.failed.fetch_add(1, Ordering::SeqCst);
        }
        fails
    }
}

impl Codec for Flaky {
    fn id(&self) -> &str {
        "flaky-json"
    }
    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        cx: &PayloadContext<'_>,
    ) -> Result<Vec<u8>, CodecError> {
        if self.fails(&self.encodes, self.encodes_before, &self.encode_failures) {
            return Err(CodecError::unavailable(self.id(), "the store timed out"));
        }
        Json.encode(value, cx)
    }
    fn decode<T: DeserializeOwned>(
        &self,
        bytes: &[u8],
        cx: &PayloadContext<'_>,
    ) -> Result<T, CodecError> {
        if self.fails(&self.decodes, self.decodes_before, &self.decode_failures) {
            return Err(CodecError::unavailable(self.id(), "the store timed out"));
        }
        Json.decode(bytes, cx)
    }
    fn is_text(&self) -> bool {
        true
    }
    fn tagged(&self) -> bool {
        !self.untagged
    }
}

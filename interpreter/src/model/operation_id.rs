//! [`OperationId`]: ids stored inline, and the hash map keyed by them.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::limits::MAX_ID_LEN;

/// An operation id: 1 to 64 bytes, stored inline so that computing and
/// looking up ids never allocates.
#[derive(Clone, Copy)]
pub struct OperationId {
    len: u8,
    bytes: [u8; MAX_ID_LEN],
}

/// An operation id that is empty or longer than [`MAX_ID_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid operation id {0:?}: it must be 1 to 64 bytes long")]
pub struct InvalidOperationId(pub String);

impl OperationId {
    /// Makes an id from a string of 1 to 64 bytes.
    pub fn new(id: &str) -> Result<Self, InvalidOperationId> {
        if id.is_empty() || id.len() > MAX_ID_LEN {
            return Err(InvalidOperationId(id.to_owned()));
        }
        let mut bytes = [0u8; MAX_ID_LEN];
        bytes[..id.len()].copy_from_slice(id.as_bytes());
        Ok(OperationId {
            len: id.len() as u8,
            bytes,
        })
    }

    /// Makes an id from exactly 64 ASCII bytes (a hash in hex).
    pub(crate) fn from_hex(bytes: [u8; MAX_ID_LEN]) -> Self {
        OperationId {
            len: MAX_ID_LEN as u8,
            bytes,
        }
    }

    /// The id's length in bytes (1 to 64).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// The id's bytes (ASCII for every id this SDK makes or the service
    /// sends), without the UTF-8 check of [`OperationId::as_str`].
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        // The bytes were copied from a `&str` (or are ASCII hex), so they
        // are valid UTF-8; the fallback is unreachable.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }
}

impl OperationId {
    fn word(&self, at: usize) -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&self.bytes[at..at + 8]);
        u64::from_le_bytes(w)
    }

    /// A cheap 64-bit fingerprint for hash tables. Ids are mostly BLAKE2b
    /// hashes in hex, so a few of their bytes are as good as all of them;
    /// unused bytes are zero, so equal ids have equal fingerprints.
    pub fn fingerprint(&self) -> u64 {
        let last = (self.len as usize).saturating_sub(8);
        let mixed = self.word(0) ^ self.word(last).rotate_left(29) ^ u64::from(self.len);
        mixed.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }
}

impl PartialEq for OperationId {
    fn eq(&self, other: &Self) -> bool {
        // Word by word: inlined, instead of a call to memcmp.
        self.len == other.len && (0..MAX_ID_LEN / 8).all(|i| self.word(i * 8) == other.word(i * 8))
    }
}

impl Eq for OperationId {}

impl std::hash::Hash for OperationId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.fingerprint());
    }
}

/// A hasher for maps keyed by [`OperationId`]: an id's `Hash` writes one
/// 64-bit fingerprint, which this finishes with a cheap mix instead of
/// SipHash (ids come from BLAKE2b or from the service, not from an
/// attacker who could choose colliding ones).
#[derive(Debug, Clone, Copy, Default)]
pub struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        let mut x = self.0;
        x ^= x >> 32;
        x = x.wrapping_mul(0xd6e8_feb8_6659_fd93);
        x ^ (x >> 29)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
}

/// A `HashMap` keyed by operation id, with [`IdHasher`].
pub type IdMap<V> =
    std::collections::HashMap<OperationId, V, std::hash::BuildHasherDefault<IdHasher>>;

impl fmt::Debug for OperationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for OperationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for OperationId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for OperationId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = OperationId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an operation id of 1 to 64 bytes")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OperationId, E> {
                OperationId::new(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

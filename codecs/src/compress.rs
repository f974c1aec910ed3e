//! Compressed checkpoints: [`Compressed`] wraps another codec and
//! compresses its bytes with zstd. Feature `compression`.
//!
//! The service limits what one operation may record (256 KiB before a
//! child context's result is no longer checkpointed, 1 MB per checkpoint
//! call in all), and every checkpointed byte travels on every replay.
//! JSON records compress 5 to 10 times (see BENCHMARKS.md for the
//! measurements that picked zstd over lz4 and deflate).
//!
//! Values whose encoding is under a threshold (1 KiB by default) are
//! stored as they are: compressing them saves little and costs a
//! compression context. The payload is `zstd.<inner id>:<base64>`, whose
//! first byte says which: `0` stored, `1` a zstd frame.
//!
//! To compress and encrypt, put the encryption outermost:
//! `Encrypted::new(Compressed::new(Json), keys)` (ciphertext does not
//! compress).
//!
//! ```
//! use durable_yield_codecs::{from_payload, to_payload, Json, PayloadContext};
//! use durable_yield_codecs::compress::Compressed;
//!
//! let codec = Compressed::new(Json);
//! let big: Vec<String> = (0..10_000).map(|i| format!("item-{}", i % 10)).collect();
//! let cx = PayloadContext::DETACHED;
//! let payload = to_payload(&codec, &big, &cx).unwrap();
//! assert!(payload.starts_with("zstd.json:"));
//! assert!(payload.len() < serde_json::to_string(&big).unwrap().len() / 10);
//! let back: Vec<String> = from_payload(&codec, &payload, &cx).unwrap();
//! assert_eq!(back, big);
//! ```

use std::cell::RefCell;
use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Codec, CodecError, PayloadContext};

/// What the id of a [`Compressed`] codec starts with.
pub const PREFIX: &str = "zstd.";
/// The default threshold: encodings shorter than this are stored as they
/// are.
pub const DEFAULT_THRESHOLD: usize = 1024;
/// The default zstd level: level 1 compressed JSON records smaller *and*
/// faster than level 3 in our measurements.
pub const DEFAULT_LEVEL: i32 = 1;
/// The default limit on a decompressed payload (64 MiB): a corrupt or
/// hostile payload cannot make decoding allocate more.
pub const DEFAULT_LIMIT: usize = 64 * 1024 * 1024;

const STORED: u8 = 0;
const ZSTD: u8 = 1;

thread_local! {
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// A codec that compresses another codec's bytes (see the
/// [module docs](self)).
#[derive(Clone)]
pub struct Compressed<C> {
    inner: C,
    id: String,
    threshold: usize,
    level: i32,
    limit: usize,
}

impl<C: Codec> Compressed<C> {
    /// Compresses what `inner` encodes, with the default threshold, level
    /// and limit.
    pub fn new(inner: C) -> Self {
        let id = format!("{PREFIX}{}", inner.id());
        Compressed {
            inner,
            id,
            threshold: DEFAULT_THRESHOLD,
            level: DEFAULT_LEVEL,
            limit: DEFAULT_LIMIT,
        }
    }

    /// Stores encodings shorter than `bytes` uncompressed.
    pub fn threshold(mut self, bytes: usize) -> Self {
        self.threshold = bytes;
        self
    }

    /// The zstd level (1 to 22; higher is smaller and slower).
    pub fn level(mut self, level: i32) -> Self {
        self.level = level;
        self
    }

    /// Refuses payloads that would decompress past `bytes`.
    pub fn limit(mut self, bytes: usize) -> Self {
        self.limit = bytes;
        self
    }

    /// The codec whose bytes it compresses.
    pub fn inner(&self) -> &C {
        &self.inner
    }
}

impl<C> fmt::Debug for Compressed<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compressed")
            .field("id", &self.id)
            .field("threshold", &self.threshold)
            .field("level", &self.level)
            .field("limit", &self.limit)
            .finish()
    }
}

fn compress(level: i32, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        if c.as_ref().is_none_or(|(l, _)| *l != level) {
            *c = Some((level, zstd::bulk::Compressor::new(level)?));
        }
        match c.as_mut() {
            Some((_, compressor)) => compressor.compress(bytes),
            None => zstd::bulk::compress(bytes, level),
        }
    })
}

/// The inner codec's bytes from a compressed body; an error message when it
/// is malformed or would decompress past `limit`.
pub(crate) fn unpack(body: &[u8], limit: usize) -> Result<std::borrow::Cow<'_, [u8]>, String> {
    match body.split_first() {
        Some((&STORED, rest)) => Ok(std::borrow::Cow::Borrowed(rest)),
        Some((&ZSTD, frame)) => {
            let size = match zstd::zstd_safe::get_frame_content_size(frame) {
                Ok(Some(size)) => size,
                Ok(None) => return Err("the zstd frame does not state its size".into()),
                Err(_) => return Err("not a zstd frame".into()),
            };
            if size > limit as u64 {
                return Err(format!(
                    "it would decompress to {size} bytes, over the limit of {limit}"
                ));
            }
            let size = size as usize;
            let out = DECOMPRESSOR.with(|d| {
                let mut d = d.borrow_mut();
                if d.is_none() {
                    *d = Some(zstd::bulk::Decompressor::new()?);
                }
                match d.as_mut() {
                    Some(d) => d.decompress(frame, size),
                    None => zstd::bulk::decompress(frame, size),
                }
            });
            match out {
                Ok(bytes) if bytes.len() == size => Ok(std::borrow::Cow::Owned(bytes)),
                Ok(_) => Err("the zstd frame is shorter than it states".into()),
                Err(e) => Err(format!("corrupt zstd frame: {e}")),
            }
        }
        Some((flag, _)) => Err(format!("unknown format byte {flag}")),
        None => Err("empty".into()),
    }
}

impl<C: Codec> Codec for Compressed<C> {
    fn id(&self) -> &str {
        &self.id
    }

    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        cx: &PayloadContext<'_>,
    ) -> Result<Vec<u8>, CodecError> {
        let bytes = self.inner.encode(value, cx)?;
        let stored = |bytes: Vec<u8>| {
            let mut out = Vec::with_capacity(bytes.len() + 1);
            out.push(STORED);
            out.extend_from_slice(&bytes);
            out
        };
        if bytes.len() < self.threshold {
            return Ok(stored(bytes));
        }
        let frame = compress(self.level, &bytes).map_err(|e| CodecError::encode(&self.id, e))?;
        if frame.len() >= bytes.len() {
            return Ok(stored(bytes));
        }
        let mut out = Vec::with_capacity(frame.len() + 1);
        out.push(ZSTD);
        out.extend_from_slice(&frame);
        Ok(out)
    }

    fn decode<T: DeserializeOwned>(
        &self,
        bytes: &[u8],
        cx: &PayloadContext<'_>,
    ) -> Result<T, CodecError> {
        let plain = unpack(bytes, self.limit).map_err(|message| CodecError::Compression {
            codec: self.id.clone(),
            message,
        })?;
        self.inner.decode(&plain, cx)
    }

    fn binds_context(&self) -> bool {
        self.inner.binds_context()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Json, from_payload, to_payload};

    #[test]
    fn small_values_are_stored_and_large_ones_compressed() {
        let cx = PayloadContext::DETACHED;
        let codec = Compressed::new(Json);
        let small = codec.encode(&"hi", &cx).unwrap();
        assert_eq!(small, b"\0\"hi\"");
        let big = vec!["abcdefgh"; 1000];
        let packed = codec.encode(&big, &cx).unwrap();
        assert_eq!(packed[0], ZSTD);
        assert!(packed.len() < 200, "{}", packed.len());
        assert_eq!(codec.decode::<Vec<String>>(&packed, &cx).unwrap(), big);
        // A level change rebuilds the thread's compressor.
        let p = to_payload(&codec.clone().level(19), &big, &cx).unwrap();
        assert_eq!(
            from_payload::<_, Vec<String>>(&codec, &p, &cx).unwrap(),
            big
        );
    }

    /// A codec whose bytes are noise, whatever the value.
    struct Noise;
    impl Codec for Noise {
        fn id(&self) -> &str {
            "noise"
        }
        fn encode<T: Serialize + ?Sized>(
            &self,
            _: &T,
            _: &PayloadContext<'_>,
        ) -> Result<Vec<u8>, CodecError> {
            let mut x = 0x9E37_79B9_7F4A_7C15u64;
            Ok((0..4096)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect())
        }
        fn decode<T: DeserializeOwned>(
            &self,
            _: &[u8],
            _: &PayloadContext<'_>,
        ) -> Result<T, CodecError> {
            Err(CodecError::decode("noise", "never"))
        }
    }

    #[test]
    fn incompressible_values_are_stored() {
        let cx = PayloadContext::DETACHED;
        let noise = Noise.encode(&(), &cx).unwrap();
        let packed = Compressed::new(Noise).encode(&(), &cx).unwrap();
        assert_eq!(packed[0], STORED);
        assert_eq!(packed.len(), noise.len() + 1);
        assert_eq!(&*unpack(&packed, DEFAULT_LIMIT).unwrap(), &noise[..]);
    }

    #[test]
    fn bombs_and_garbage_are_errors() {
        let cx = PayloadContext::DETACHED;
        let codec = Compressed::new(Json);
        let zeros = "0".repeat(1 << 20);
        let packed = codec.encode(&zeros, &cx).unwrap();
        assert!(packed.len() < 1000);
        let small = codec.clone().limit(1000);
        let err = small.decode::<String>(&packed, &cx).unwrap_err();
        assert!(err.to_string().contains("over the limit"), "{err}");
        for bad in [
            &b""[..],
            b"\x02abc",
            b"\x01",
            b"\x01garbage",
            &packed[..packed.len() - 3],
        ] {
            assert!(codec.decode::<String>(bad, &cx).is_err());
        }
    }
}

//! Checkpoint codecs for durable-yield.
//!
//! Every step result that durable-yield checkpoints is turned into a wire
//! *payload*: a string that the service stores and hands back on replay. A
//! [`Codec`] decides how a Rust value becomes bytes; this crate frames those
//! bytes into a payload string:
//!
//! * the [`Json`] codec writes plain JSON text, untagged: readable in the
//!   AWS console, by any JSON tool and by AWS's other SDKs, and able to read
//!   the plain JSON they write;
//! * every other codec writes `"<id>:<body>"` (*tagged* framing), where
//!   `<id>` is the codec's [`Codec::id`] and `<body>` is base64 (standard
//!   alphabet, padded) for binary codecs or the text itself for text
//!   codecs. The built-in [`Bincode`] and [`MsgPack`] codecs are tagged:
//!   their bytes mean nothing to another reader, so a payload read with the
//!   wrong codec must be a clear error, never garbage;
//! * a codec whose [`Codec::tagged`] is `false` writes its body alone
//!   (*raw* framing: text as it is, binary as base64), so that it can read
//!   and write payloads other SDKs or tools exchange, such as a plain-text
//!   format of your own. It then owns mismatch detection: its `decode` must
//!   reject what it did not write.
//!
//! With tagged framing a codec mismatch (a payload written by one codec,
//! read by another) is a clear [`CodecError::Mismatch`]. JSON never starts
//! with a lowercase identifier followed by `:`, so a tagged payload is never
//! mistaken for JSON.
//!
//! ```
//! use durable_yield_codecs::{Json, PayloadContext, from_payload, to_payload};
//!
//! // Which execution and operation the payload is for (see PayloadContext).
//! let cx = PayloadContext::new("arn:aws:lambda:...:durable-execution/e/1", "c4ca4238...");
//! let payload = to_payload(&Json, &vec![1, 2, 3], &cx).unwrap();
//! assert_eq!(payload, "[1,2,3]");
//! let back: Vec<u32> = from_payload(&Json, &payload, &cx).unwrap();
//! assert_eq!(back, vec![1, 2, 3]);
//! ```
//!
//! Implementations sit behind cargo features: `json` (default), `bincode`
//! (bincode 2 through its serde support) and `msgpack` (rmp-serde with named
//! fields). Two wrappers combine with any of them: `encryption`
//! ([`seal`]: whole payloads or single fields encrypted, bound to their
//! execution and operation) and `compression` ([`compress`]: zstd above a
//! size threshold). With `filesystem`, [`files`] keeps values in files on a
//! durable file system, the checkpoint holding a pointer (AWS's
//! `FileSystemSerDes` format), for values past the checkpoint size limit.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

#[cfg(feature = "compression")]
pub mod compress;
#[cfg(feature = "filesystem")]
pub mod files;
#[cfg(feature = "encryption")]
pub mod seal;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The identifier of the JSON codec; JSON payloads are written untagged.
pub const JSON_ID: &str = "json";

/// The longest codec identifier accepted in a payload tag.
pub const MAX_ID_LEN: usize = 32;

/// Turns serde values into bytes and back, for one step's checkpoint.
///
/// A codec is picked per step. It only deals with bytes; the framing into a
/// wire payload (tagging, base64) is done by [`to_payload`] and
/// [`from_payload`], so a user codec cannot get it wrong.
///
/// # Writing your own codec
///
/// A codec that wraps another one, here reversing the bytes (stand-in for
/// compression or encryption):
///
/// ```
/// use durable_yield_codecs::{
///     Codec, CodecError, Json, PayloadContext, from_payload, to_payload,
/// };
/// use serde::{Serialize, de::DeserializeOwned};
///
/// struct Reversed<C>(C);
///
/// impl<C: Codec> Codec for Reversed<C> {
///     fn id(&self) -> &str { "reversed-json" }
///     fn encode<T: Serialize + ?Sized>(
///         &self,
///         value: &T,
///         cx: &PayloadContext<'_>,
///     ) -> Result<Vec<u8>, CodecError> {
///         let mut bytes = self.0.encode(value, cx)?;
///         bytes.reverse();
///         Ok(bytes)
///     }
///     fn decode<T: DeserializeOwned>(
///         &self,
///         bytes: &[u8],
///         cx: &PayloadContext<'_>,
///     ) -> Result<T, CodecError> {
///         let mut bytes = bytes.to_vec();
///         bytes.reverse();
///         self.0.decode(&bytes, cx)
///     }
/// }
///
/// let cx = PayloadContext::DETACHED;
/// let payload = to_payload(&Reversed(Json), &"hi", &cx).unwrap();
/// assert!(payload.starts_with("reversed-json:"));
/// let back: String = from_payload(&Reversed(Json), &payload, &cx).unwrap();
/// assert_eq!(back, "hi");
/// ```
///
/// A wrapper passes `cx` on to the codec it wraps, so that an encrypting
/// codec inside it still binds its payloads.
pub trait Codec: Send + Sync + 'static {
    /// A short, stable identifier written into every payload this codec
    /// produces (except JSON's). It must match `[a-z][a-z0-9._+-]{0,31}`
    /// and must never change once histories exist that use it.
    fn id(&self) -> &str;

    /// Encodes a value into bytes. `cx` says which execution and which
    /// operation the payload is recorded for; most codecs ignore it, an
    /// encrypting codec binds its ciphertext to it.
    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        cx: &PayloadContext<'_>,
    ) -> Result<Vec<u8>, CodecError>;

    /// Encodes a value as [`Codec::encode`] does, appending the bytes to
    /// `out`. The default calls [`Codec::encode`]; a codec that can write
    /// into a buffer overrides it, so that a caller reusing one (as the
    /// SDK does for each step's result) makes no allocation of its own.
    fn encode_into<T: Serialize + ?Sized>(
        &self,
        value: &T,
        cx: &PayloadContext<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        out.extend_from_slice(&self.encode(value, cx)?);
        Ok(())
    }

    /// Decodes bytes produced by [`Codec::encode`] for the same context.
    fn decode<T: DeserializeOwned>(
        &self,
        bytes: &[u8],
        cx: &PayloadContext<'_>,
    ) -> Result<T, CodecError>;

    /// Whether [`Codec::encode`] always produces UTF-8 text. Text payloads
    /// are stored as they are; binary ones are base64-encoded. Defaults to
    /// `false`.
    fn is_text(&self) -> bool {
        false
    }

    /// Whether payloads carry the `<id>:` tag. Defaults to `true`; return
    /// `false` for raw framing (see the crate docs), e.g. to exchange a
    /// plain-text format with another SDK. [`Json`] is always untagged.
    fn tagged(&self) -> bool {
        true
    }

    /// Whether [`Codec::encode`] or [`Codec::decode`] reads `cx` (the
    /// execution and operation a payload is for). Defaults to `true`;
    /// codecs that never look at it (JSON, bincode, MessagePack) return
    /// `false`, which spares callers computing an operation's id only to
    /// decode its payload (a map's items, for one). A wrapper returns what
    /// the codec it wraps returns, or `true` if it binds payloads itself.
    fn binds_context(&self) -> bool {
        true
    }
}

impl<C: Codec> Codec for &'static C {
    fn id(&self) -> &str {
        (**self).id()
    }
    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        cx: &PayloadContext<'_>,
    ) -> Result<Vec<u8>, CodecError> {
        (**self).encode(value, cx)
    }
    fn encode_into<T: Serialize + ?Sized>(
        &self,
        value: &T,
        cx: &PayloadContext<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        (**self).encode_into(value, cx, out)
    }
    fn decode<T: DeserializeOwned>(
        &self,
        bytes: &[u8],
        cx: &PayloadContext<'_>,
    ) -> Result<T, CodecError> {
        (**self).decode(bytes, cx)
    }
    fn is_text(&self) -> bool {
        (**self).is_text()
    }
    fn tagged(&self) -> bool {
        (**self).tagged()
    }
    fn binds_context(&self) -> bool {
        (**self).binds_context()
    }
}

/// Which execution and which operation a payload is recorded for, and in
/// which field of the operation.
///
/// durable-yield passes it to every [`Codec::encode`] and
/// [`Codec::decode`]: the execution's ARN, the id of the operation whose
/// record holds the payload (a step, a child context, a map, a callback),
/// and the [`PayloadKind`]. Codecs that do not care ignore it; the
/// encrypting codecs bind their ciphertext to it, so that a payload copied
/// into another operation or execution does not decrypt.
///
/// A payload that leaves its execution (the payload of a chained invoke,
/// which another execution reads) is encoded with
/// [`PayloadContext::DETACHED`]: bound to no execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PayloadContext<'a> {
    execution_arn: &'a str,
    /// Bytes, so that the replay path does not validate UTF-8 for codecs
    /// that never look at it.
    operation_id: &'a [u8],
    kind: PayloadKind,
}

/// Which field of an operation's record a payload is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PayloadKind {
    /// The operation's result (a step's value, a context's result, a
    /// condition's state, a callback's result).
    Result,
    /// The error data of a failed operation.
    ErrorData,
    /// An input handed to another execution (a chained invoke's payload).
    Input,
}

impl PayloadKind {
    /// A stable one-byte code for the kind (bound into sealed payloads).
    pub fn code(self) -> u8 {
        match self {
            PayloadKind::Result => 1,
            PayloadKind::ErrorData => 2,
            PayloadKind::Input => 3,
        }
    }
}

impl<'a> PayloadContext<'a> {
    /// Bound to no execution and no operation: for payloads that leave
    /// their execution, tests and tools.
    pub const DETACHED: PayloadContext<'static> = PayloadContext {
        execution_arn: "",
        operation_id: b"",
        kind: PayloadKind::Input,
    };

    /// The result of operation `operation_id` of execution `execution_arn`.
    pub fn new(execution_arn: &'a str, operation_id: &'a str) -> Self {
        Self::with_operation_bytes(execution_arn, operation_id.as_bytes())
    }

    /// [`PayloadContext::new`] with the operation id as bytes (ids are
    /// ASCII; bytes that are not UTF-8 read as an empty
    /// [`operation_id`](PayloadContext::operation_id) but are bound as they
    /// are).
    pub fn with_operation_bytes(execution_arn: &'a str, operation_id: &'a [u8]) -> Self {
        PayloadContext {
            execution_arn,
            operation_id,
            kind: PayloadKind::Result,
        }
    }

    /// The same operation, another field of its record.
    pub fn with_kind(self, kind: PayloadKind) -> Self {
        PayloadContext { kind, ..self }
    }

    /// The execution's ARN (empty when detached).
    pub fn execution_arn(&self) -> &'a str {
        self.execution_arn
    }

    /// The operation's id (empty when detached).
    pub fn operation_id(&self) -> &'a str {
        std::str::from_utf8(self.operation_id).unwrap_or("")
    }

    /// Which field of the operation's record the payload is for.
    pub fn kind(&self) -> PayloadKind {
        self.kind
    }

    /// Whether the payload is bound to no execution.
    pub fn is_detached(&self) -> bool {
        self.execution_arn.is_empty() && self.operation_id.is_empty()
    }

    /// An unambiguous byte string of the context (length-prefixed fields),
    /// for use as associated data by codecs that authenticate payloads.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.execution_arn.len() + self.operation_id.len());
        for field in [self.execution_arn.as_bytes(), self.operation_id] {
            out.extend_from_slice(&(field.len() as u32).to_be_bytes());
            out.extend_from_slice(field);
        }
        out.push(self.kind.code());
        out
    }
}

/// What went wrong turning a value into a payload or back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The value could not be encoded.
    #[error("codec `{codec}` could not encode the value: {message}")]
    Encode {
        /// The codec's id.
        codec: String,
        /// The underlying serializer's message.
        message: String,
    },
    /// The bytes could not be decoded into the requested type.
    #[error("codec `{codec}` could not decode the payload: {message}")]
    Decode {
        /// The codec's id.
        codec: String,
        /// The underlying deserializer's message.
        message: String,
    },
    /// The payload was written by another codec than the one reading it.
    #[error("payload was written by codec `{recorded}` but is being read with codec `{expected}`")]
    Mismatch {
        /// The codec named by the payload's tag (`json` when untagged).
        recorded: String,
        /// The codec asked to decode it.
        expected: String,
    },
    /// The base64 body of a binary payload is malformed.
    #[error("payload for codec `{codec}` is not valid base64: {message}")]
    Base64 {
        /// The codec's id.
        codec: String,
        /// The base64 decoder's message.
        message: String,
    },
    /// Where the codec keeps payloads could not be reached, for a while
    /// (a network call timed out, a file system stalled): the failure is
    /// transient, and the SDK neither records it nor hands it to workflow
    /// code, but fails the invocation so that the service invokes the
    /// function again (AWS's SDKs' `RetryableSerDesError`). Return it only
    /// for failures that may pass: a permanent one ([`CodecError::Encode`],
    /// [`CodecError::Decode`]) fails the step, or the execution on replay,
    /// instead of retrying invocations until the execution times out.
    #[error(
        "codec `{codec}` could not reach its storage (transient; the invocation is retried): {message}"
    )]
    Unavailable {
        /// The codec's id.
        codec: String,
        /// What failed.
        message: String,
    },
    /// A text codec produced bytes that are not UTF-8.
    #[error("text codec `{codec}` produced bytes that are not UTF-8")]
    NotText {
        /// The codec's id.
        codec: String,
    },
    /// A codec's id is not usable as a payload tag.
    #[error("codec id `{0}` is invalid: it must match [a-z][a-z0-9._+-]{{0,31}}")]
    InvalidId(String),
    /// A value could not be sealed (encrypted).
    #[error("codec `{codec}` could not seal the payload of operation `{operation}`: {cause}")]
    Seal {
        /// The codec's id.
        codec: String,
        /// The operation the payload is for (empty when detached).
        operation: String,
        /// Why.
        cause: SealError,
    },
    /// A sealed payload (or a sealed field in it) could not be opened. On
    /// replay this fails the execution: a key was lost, or the recorded
    /// payload was changed.
    #[error(
        "codec `{codec}` could not open the sealed payload of operation `{operation}`{}: {cause}",
        key_id.as_deref().map(|k| format!(" (key `{k}`)")).unwrap_or_default()
    )]
    Open {
        /// The codec's id.
        codec: String,
        /// The operation the payload was read for (empty when detached).
        operation: String,
        /// The key id the payload names, printable (text ids as they are,
        /// binary ones as `0x` and their first 8 bytes in hex).
        key_id: Option<String>,
        /// Why.
        cause: SealError,
    },
    /// A compressed payload is malformed or would decompress past the limit.
    #[error("codec `{codec}` could not decompress the payload: {message}")]
    Compression {
        /// The codec's id.
        codec: String,
        /// What was wrong.
        message: String,
    },
}

/// Why sealing or opening a payload failed (see [`CodecError::Seal`] and
/// [`CodecError::Open`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The payload names a key the keyring does not have: a key was
    /// removed while histories sealed with it are alive. Add it back to
    /// the keyring (as a retired key, for opening only).
    #[error(
        "the keyring has no key with this id; keep retired keys for opening until no history sealed with them is alive"
    )]
    UnknownKey,
    /// The ciphertext does not authenticate: the payload was changed,
    /// copied from another operation or execution, or sealed with another
    /// key under the same id.
    #[error(
        "authentication failed: the payload was changed, copied from another operation or execution, or sealed with a different key under this id"
    )]
    AuthenticationFailed,
    /// The payload is not a sealed payload of a version this SDK reads.
    #[error("malformed sealed payload: {0}")]
    Malformed(String),
    /// The keyring could not provide a key (e.g. a KMS keyring that was not
    /// prepared for this invocation).
    #[error("no key available: {0}")]
    KeyUnavailable(String),
    /// The operating system's random number generator failed.
    #[error("no random nonce: {0}")]
    Random(String),
    /// A `Sealed` value was encoded or decoded by a codec that does not
    /// seal: the operation's codec must be `SealedFields` or `Encrypted`
    /// (for map and parallel, both the item and the batch codec).
    #[error(
        "a Sealed value was encoded or decoded outside a sealing codec: use SealedFields or Encrypted as this operation's codec (for map and parallel, as item and batch codec)"
    )]
    NotSealing,
}

impl CodecError {
    /// Builds an [`CodecError::Encode`] for `codec` from any displayable error.
    pub fn encode(codec: &str, err: impl std::fmt::Display) -> Self {
        CodecError::Encode {
            codec: codec.to_owned(),
            message: err.to_string(),
        }
    }

    /// Builds a [`CodecError::Decode`] for `codec` from any displayable error.
    pub fn decode(codec: &str, err: impl std::fmt::Display) -> Self {
        CodecError::Decode {
            codec: codec.to_owned(),
            message: err.to_string(),
        }
    }

    /// Builds a transient [`CodecError::Unavailable`] for `codec` from any
    /// displayable error.
    pub fn unavailable(codec: &str, err: impl std::fmt::Display) -> Self {
        CodecError::Unavailable {
            codec: codec.to_owned(),
            message: err.to_string(),
        }
    }

    /// Whether the failure may pass ([`CodecError::Unavailable`]): the SDK
    /// then fails the invocation, for the service to retry, instead of
    /// the step or the execution.
    pub fn is_transient(&self) -> bool {
        matches!(self, CodecError::Unavailable { .. })
    }
}

fn valid_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_ID_LEN
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._+-".contains(b))
}

/// Splits a payload into the id of the codec that wrote it and its body.
///
/// Untagged payloads are JSON: `("json", payload)`.
///
/// ```
/// use durable_yield_codecs::split_tag;
/// assert_eq!(split_tag("{\"a\":1}"), ("json", "{\"a\":1}"));
/// assert_eq!(split_tag("bincode:AAE="), ("bincode", "AAE="));
/// ```
pub fn split_tag(payload: &str) -> (&str, &str) {
    let limit = payload.len().min(MAX_ID_LEN + 1);
    if let Some(colon) = payload.as_bytes()[..limit].iter().position(|&b| b == b':') {
        let id = &payload[..colon];
        if valid_id(id) {
            return (id, &payload[colon + 1..]);
        }
    }
    (JSON_ID, payload)
}

/// Encodes `value` with `codec` and hands the wire payload string (what
/// [`to_payload`] returns) to `make`, which keeps what it needs of it.
///
/// A JSON payload is written into a buffer this thread reuses, so the only
/// allocation is whatever `make` builds (a shared string, say): one fewer
/// than `to_payload` followed by a copy. Other codecs go through
/// [`to_payload`].
///
/// ```
/// use durable_yield_codecs::{Json, PayloadContext, with_payload};
/// use std::sync::Arc;
/// let cx = PayloadContext::DETACHED;
/// let shared: Arc<str> = with_payload(&Json, &[1, 2], &cx, |text| Arc::from(text)).unwrap();
/// assert_eq!(&*shared, "[1,2]");
/// ```
pub fn with_payload<C: Codec + ?Sized, T: Serialize + ?Sized, R>(
    codec: &C,
    value: &T,
    cx: &PayloadContext<'_>,
    make: impl FnOnce(&str) -> R,
) -> Result<R, CodecError> {
    if codec.id() != JSON_ID {
        return to_payload(codec, value, cx).map(|text| make(&text));
    }
    thread_local! {
        /// The buffer JSON payloads are written into (empty between uses).
        static BUFFER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
    }
    /// A larger buffer is not kept: one large payload does not pin memory.
    const KEPT: usize = 16 * 1024;
    // Taken out for the encoding, so that a value whose serialization
    // encodes another payload gets a buffer of its own (as does a thread
    // whose buffer is already gone, at its exit).
    let mut buffer = BUFFER.try_with(std::cell::Cell::take).unwrap_or_default();
    buffer.clear();
    let made = codec.encode_into(value, cx, &mut buffer).and_then(|()| {
        match std::str::from_utf8(&buffer) {
            Ok(text) => Ok(make(text)),
            Err(_) => Err(CodecError::NotText {
                codec: JSON_ID.to_owned(),
            }),
        }
    });
    if buffer.capacity() <= KEPT {
        // At a thread's exit there is no buffer to give it back to.
        let _ = BUFFER.try_with(|b| b.set(buffer));
    }
    made
}

/// Encodes `value` with `codec` into a wire payload string.
pub fn to_payload<C: Codec + ?Sized, T: Serialize + ?Sized>(
    codec: &C,
    value: &T,
    cx: &PayloadContext<'_>,
) -> Result<String, CodecError> {
    let id = codec.id();
    let bytes = codec.encode(value, cx)?;
    let text = |bytes: Vec<u8>| {
        String::from_utf8(bytes).map_err(|_| CodecError::NotText {
            codec: id.to_owned(),
        })
    };
    if id == JSON_ID {
        return text(bytes);
    }
    let tagged = codec.tagged();
    if tagged && !valid_id(id) {
        return Err(CodecError::InvalidId(id.to_owned()));
    }
    let mut out = String::with_capacity(id.len() + 1 + bytes.len() * 4 / 3 + 4);
    if tagged {
        out.push_str(id);
        out.push(':');
    }
    if codec.is_text() {
        out.push_str(&text(bytes)?);
    } else {
        BASE64.encode_string(&bytes, &mut out);
    }
    Ok(out)
}

/// Decodes a wire payload written by [`to_payload`] with the same codec.
///
/// A payload written by another codec gives [`CodecError::Mismatch`].
pub fn from_payload<C: Codec + ?Sized, T: DeserializeOwned>(
    codec: &C,
    payload: &str,
    cx: &PayloadContext<'_>,
) -> Result<T, CodecError> {
    let expected = codec.id();
    let (recorded, body) = if codec.tagged() {
        split_tag(payload)
    } else {
        (expected, payload)
    };
    if recorded != expected {
        return Err(CodecError::Mismatch {
            recorded: recorded.to_owned(),
            expected: expected.to_owned(),
        });
    }
    if codec.is_text() || expected == JSON_ID {
        codec.decode(body.as_bytes(), cx)
    } else {
        let invalid = |e: &dyn std::fmt::Display| CodecError::Base64 {
            codec: expected.to_owned(),
            message: e.to_string(),
        };
        // Small payloads decode on the stack: no allocation on replay.
        let mut small = [0u8; SMALL_PAYLOAD];
        if body.len() / 4 * 3 <= SMALL_PAYLOAD {
            let n = BASE64
                .decode_slice(body, &mut small)
                .map_err(|e| invalid(&e))?;
            codec.decode(&small[..n], cx)
        } else {
            let bytes = BASE64.decode(body).map_err(|e| invalid(&e))?;
            codec.decode(&bytes, cx)
        }
    }
}

/// Binary payloads up to this many bytes are base64-decoded on the stack.
const SMALL_PAYLOAD: usize = 512;

mod formats;
#[cfg(feature = "bincode")]
pub use formats::Bincode;
#[cfg(feature = "json")]
pub use formats::Json;
#[cfg(feature = "msgpack")]
pub use formats::MsgPack;

#[cfg(test)]
mod tests;

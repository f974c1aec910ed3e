//! Encrypted checkpoints: whole payloads ([`Encrypted`]) or single fields
//! ([`Sealed`] inside a [`SealedFields`] codec). Feature `encryption`.
//!
//! Checkpointed values live in the service, readable in the console and
//! through `GetDurableExecutionHistory` by anyone allowed to read the
//! function's executions. These codecs encrypt them in the function, with
//! keys the service never sees:
//!
//! * [`Encrypted`] wraps another codec and encrypts its bytes: the payload
//!   is `sealed.<inner id>:<base64>`, opaque to every reader without the
//!   key.
//! * [`SealedFields`] wraps another codec and leaves its output as it is,
//!   except for the fields of type [`Sealed<T>`], which become strings
//!   `sealed:<base64>`. A JSON checkpoint keeps its structure and its plain
//!   fields readable for debugging; the sealed ones are ciphertext.
//!
//! # Cryptography
//!
//! AES-256-GCM-SIV (RFC 8452, RustCrypto's `aes-gcm-siv`) with a fresh
//! random 96-bit nonce per payload and per field, drawn from the operating
//! system. GCM-SIV is nonce-misuse resistant: were two random nonces ever
//! to collide under one key (plain AES-GCM's limit of 2<sup>32</sup>
//! messages per key is within reach of a busy function with a long-lived
//! static key), it would reveal no more than whether the two plaintexts
//! are equal. It was picked over XChaCha20-Poly1305 by measurement: 4x
//! faster on small payloads, as fast on large ones (BENCHMARKS.md). The
//! payload carries the id of its key, so keys rotate: a [`Keyring`] seals
//! with its current key and opens with any key it still holds.
//!
//! The associated data binds each ciphertext to the execution's ARN, the
//! operation's id, the field of the record ([`PayloadKind`](crate::PayloadKind)) and, for whole
//! payloads, the codec: a payload copied into another step, another
//! execution or another field fails to open ([`SealError::AuthenticationFailed`])
//! instead of being accepted. Sealed fields of one payload are bound to the
//! payload, not to their field names: two sealed fields of one record can
//! be swapped with each other.
//!
//! ```
//! use durable_yield_codecs::{from_payload, to_payload, PayloadContext, Json};
//! use durable_yield_codecs::seal::{Encrypted, Sealed, SealedFields, StaticKeyring};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Customer {
//!     id: u64,
//!     ssn: Sealed<String>,
//! }
//!
//! let keys = StaticKeyring::new("2026-11", [7; 32]);
//! let cx = PayloadContext::new("arn:aws:lambda:...:durable-execution/e/1", "c4ca4238...");
//!
//! // Field level: the JSON keeps its shape, the SSN is ciphertext.
//! let codec = SealedFields::new(Json, keys.clone());
//! let customer = Customer { id: 7, ssn: Sealed::new("078-05-1120".into()) };
//! let payload = to_payload(&codec, &customer, &cx).unwrap();
//! assert!(payload.starts_with(r#"{"id":7,"ssn":"sealed:"#));
//! assert!(!payload.contains("078-05"));
//! let back: Customer = from_payload(&codec, &payload, &cx).unwrap();
//! assert_eq!(back.ssn.as_str(), "078-05-1120");
//!
//! // Whole payload.
//! let codec = Encrypted::new(Json, keys);
//! let payload = to_payload(&codec, &customer, &cx).unwrap();
//! assert!(payload.starts_with("sealed.json:"));
//!
//! // Copied into another operation: refused.
//! let elsewhere = PayloadContext::new("arn:aws:lambda:...:durable-execution/e/1", "c81e728d...");
//! assert!(from_payload::<_, Customer>(&codec, &payload, &elsewhere).is_err());
//! ```
//!
//! # Keeping secrets out of recorded errors
//!
//! A failed step records an `ErrorObject` whose type and message are plain
//! text. Keep secrets out of them: say *what* failed in the message, and
//! put the sensitive details into the error's data, encoded with a sealing
//! codec (`StepFailure::with_data_in` in durable-yield), which seals them
//! for the step's error field.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::rc::Rc;
use std::sync::Arc;

use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::de::{DeserializeOwned, Error as _};
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::{Codec, CodecError, PayloadContext, SealError, split_tag};

/// The envelope format this SDK writes and reads.
const VERSION: u8 = 1;
/// Bytes of the random nonce.
const NONCE_LEN: usize = 12;
/// Bytes of the Poly1305 tag.
const TAG_LEN: usize = 16;
/// Prefix of the associated data (domain separation).
const AAD_MAGIC: &[u8] = b"durable-yield sealed v1";
/// What a sealed field's string starts with.
pub const FIELD_PREFIX: &str = "sealed:";
/// What the id of an [`Encrypted`] codec starts with.
pub const PAYLOAD_PREFIX: &str = "sealed.";
/// What the id of a compressing codec starts with.
#[cfg(feature = "compression")]
const COMPRESSED_PREFIX: &str = "zstd.";

mod crypto;
mod keys;

use crypto::*;
pub use keys::{Key, Keyring, StaticKeyring, printable_key_id};

/// The sealing scope of the codec encoding or decoding on this thread:
/// what [`Sealed`] fields seal with.
struct Scope {
    keys: Arc<dyn Keyring>,
    context: Vec<u8>,
    /// The first sealing failure inside the scope: the typed error the
    /// codec returns instead of the serializer's message.
    failure: RefCell<Option<(Option<String>, SealError)>>,
}

thread_local! {
    static SCOPES: RefCell<Vec<Rc<Scope>>> = const { RefCell::new(Vec::new()) };
}

/// Pops the scope it pushed, also on unwinding.
struct ScopeGuard(Rc<Scope>);

impl ScopeGuard {
    fn enter(keys: &Arc<dyn Keyring>, cx: &PayloadContext<'_>) -> Self {
        let scope = Rc::new(Scope {
            keys: keys.clone(),
            context: cx.to_bytes(),
            failure: RefCell::new(None),
        });
        SCOPES.with(|s| s.borrow_mut().push(scope.clone()));
        ScopeGuard(scope)
    }

    /// The typed error for a failed encode or decode: the sealing failure
    /// if there was one, else the codec's own error.
    fn error(
        &self,
        error: CodecError,
        codec: &str,
        cx: &PayloadContext<'_>,
        opening: bool,
    ) -> CodecError {
        match self.0.failure.borrow_mut().take() {
            Some((key_id, cause)) => sealing_error(codec, cx, opening, key_id, cause),
            None => error,
        }
    }
}

impl Drop for ScopeGuard {
    fn drop(&mut self) {
        SCOPES.with(|s| {
            s.borrow_mut().pop();
        });
    }
}

fn current_scope() -> Option<Rc<Scope>> {
    SCOPES.with(|s| s.borrow().last().cloned())
}

fn sealing_error(
    codec: &str,
    cx: &PayloadContext<'_>,
    opening: bool,
    key_id: Option<String>,
    cause: SealError,
) -> CodecError {
    if opening {
        CodecError::Open {
            codec: codec.to_owned(),
            operation: cx.operation_id().to_owned(),
            key_id,
            cause,
        }
    } else {
        CodecError::Seal {
            codec: codec.to_owned(),
            operation: cx.operation_id().to_owned(),
            cause,
        }
    }
}

/// A codec that encrypts another codec's bytes: the payload is
/// `sealed.<inner id>:<base64 envelope>` (see the [module docs](self)).
///
/// Put it outermost: `Encrypted::new(Compressed::new(Json), keys)`
/// compresses, then encrypts (ciphertext does not compress). [`Sealed`]
/// fields inside the value are sealed too.
#[derive(Clone)]
pub struct Encrypted<C> {
    inner: C,
    keys: Arc<dyn Keyring>,
    id: String,
}

impl<C: Codec> Encrypted<C> {
    /// Encrypts what `inner` encodes with keys from `keys`.
    pub fn new(inner: C, keys: impl Keyring) -> Self {
        Self::with_keyring(inner, Arc::new(keys))
    }

    /// Like [`Encrypted::new`], sharing a keyring.
    pub fn with_keyring(inner: C, keys: Arc<dyn Keyring>) -> Self {
        let id = format!("{PAYLOAD_PREFIX}{}", inner.id());
        Encrypted { inner, keys, id }
    }

    /// The codec whose bytes it encrypts.
    pub fn inner(&self) -> &C {
        &self.inner
    }
}

impl<C> fmt::Debug for Encrypted<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encrypted").field("id", &self.id).finish()
    }
}

impl<C: Codec> Codec for Encrypted<C> {
    fn id(&self) -> &str {
        &self.id
    }

    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        cx: &PayloadContext<'_>,
    ) -> Result<Vec<u8>, CodecError> {
        let scope = ScopeGuard::enter(&self.keys, cx);
        let plain = Zeroizing::new(
            self.inner
                .encode(value, cx)
                .map_err(|e| scope.error(e, &self.id, cx, false))?,
        );
        let purpose = Purpose::Payload { codec: &self.id };
        seal(&*self.keys, purpose, &scope.0.context, &plain)
            .map_err(|cause| sealing_error(&self.id, cx, false, None, cause))
    }

    fn decode<T: DeserializeOwned>(
        &self,
        bytes: &[u8],
        cx: &PayloadContext<'_>,
    ) -> Result<T, CodecError> {
        let scope = ScopeGuard::enter(&self.keys, cx);
        let purpose = Purpose::Payload { codec: &self.id };
        let plain = Zeroizing::new(
            open(&*self.keys, purpose, &scope.0.context, bytes)
                .map_err(|(key_id, cause)| sealing_error(&self.id, cx, true, key_id, cause))?,
        );
        self.inner
            .decode(&plain, cx)
            .map_err(|e| scope.error(e, &self.id, cx, true))
    }
}

/// A codec that writes what another codec writes, with every [`Sealed`]
/// field encrypted (see the [module docs](self)).
///
/// Its payloads are framed as the inner codec's (plain JSON for
/// [`Json`](crate::Json)), so other readers see the record's structure and
/// its plain fields. Use it wherever a value holding `Sealed` fields is
/// checkpointed; a codec that does not seal refuses to encode them
/// ([`SealError::NotSealing`]).
#[derive(Clone)]
pub struct SealedFields<C> {
    inner: C,
    keys: Arc<dyn Keyring>,
}

impl<C: Codec> SealedFields<C> {
    /// Seals the [`Sealed`] fields of what `inner` encodes with keys from
    /// `keys`.
    pub fn new(inner: C, keys: impl Keyring) -> Self {
        Self::with_keyring(inner, Arc::new(keys))
    }

    /// Like [`SealedFields::new`], sharing a keyring.
    pub fn with_keyring(inner: C, keys: Arc<dyn Keyring>) -> Self {
        SealedFields { inner, keys }
    }
}

impl<C: Codec> fmt::Debug for SealedFields<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedFields")
            .field("inner", &self.inner.id())
            .finish()
    }
}

impl<C: Codec> Codec for SealedFields<C> {
    fn id(&self) -> &str {
        self.inner.id()
    }

    fn encode<T: Serialize + ?Sized>(
        &self,
        value: &T,
        cx: &PayloadContext<'_>,
    ) -> Result<Vec<u8>, CodecError> {
        let scope = ScopeGuard::enter(&self.keys, cx);
        self.inner
            .encode(value, cx)
            .map_err(|e| scope.error(e, self.inner.id(), cx, false))
    }

    fn decode<T: DeserializeOwned>(
        &self,
        bytes: &[u8],
        cx: &PayloadContext<'_>,
    ) -> Result<T, CodecError> {
        let scope = ScopeGuard::enter(&self.keys, cx);
        self.inner
            .decode(bytes, cx)
            .map_err(|e| scope.error(e, self.inner.id(), cx, true))
    }

    fn is_text(&self) -> bool {
        self.inner.is_text()
    }

    fn tagged(&self) -> bool {
        self.inner.tagged()
    }
}

/// A value that is encrypted wherever it is serialized by a sealing codec
/// ([`SealedFields`] or [`Encrypted`]): a string `sealed:<base64>` holding
/// the value's JSON, encrypted and bound to the payload's execution and
/// operation.
///
/// In memory it is the plain value (`Deref`); `Debug` never shows it.
/// Serializing it anywhere else (another codec, `serde_json` directly)
/// fails with [`SealError::NotSealing`] rather than writing it in clear.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sealed<T>(T);

impl<T> Sealed<T> {
    /// Wraps a value to be sealed.
    pub fn new(value: T) -> Self {
        Sealed(value)
    }

    /// The plain value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Sealed<T> {
    fn from(value: T) -> Self {
        Sealed(value)
    }
}

impl<T> Deref for Sealed<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Sealed<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T> fmt::Debug for Sealed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealed(<redacted>)")
    }
}

impl<T: Serialize> Serialize for Sealed<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Some(scope) = current_scope() else {
            return Err(S::Error::custom(SealError::NotSealing));
        };
        let plain = Zeroizing::new(serde_json::to_vec(&self.0).map_err(S::Error::custom)?);
        match seal(&*scope.keys, Purpose::Field, &scope.context, &plain) {
            Ok(envelope) => {
                let mut text =
                    String::with_capacity(FIELD_PREFIX.len() + envelope.len() * 4 / 3 + 4);
                text.push_str(FIELD_PREFIX);
                BASE64.encode_string(&envelope, &mut text);
                serializer.serialize_str(&text)
            }
            Err(cause) => {
                let message = cause.to_string();
                scope.failure.borrow_mut().get_or_insert((None, cause));
                Err(S::Error::custom(message))
            }
        }
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Sealed<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        let Some(scope) = current_scope() else {
            return Err(D::Error::custom(SealError::NotSealing));
        };
        let fail = |key_id: Option<String>, cause: SealError| {
            let message = cause.to_string();
            scope.failure.borrow_mut().get_or_insert((key_id, cause));
            D::Error::custom(message)
        };
        let body = text.strip_prefix(FIELD_PREFIX).ok_or_else(|| {
            fail(
                None,
                SealError::Malformed(format!("a sealed field must start with `{FIELD_PREFIX}`")),
            )
        })?;
        let envelope = BASE64
            .decode(body)
            .map_err(|_| fail(None, SealError::Malformed("the field is not base64".into())))?;
        let plain = Zeroizing::new(
            open(&*scope.keys, Purpose::Field, &scope.context, &envelope)
                .map_err(|(key_id, cause)| fail(key_id, cause))?,
        );
        serde_json::from_slice(&plain)
            .map(Sealed)
            .map_err(D::Error::custom)
    }
}

/// The ids of the keys a recorded payload was sealed with: its own (an
/// [`Encrypted`] payload) and its sealed fields', looking inside
/// compressed payloads. A keyring that fetches keys ahead (KMS) fetches
/// these before an invocation replays. Malformed parts are skipped: the
/// codec reports them when it decodes.
pub fn referenced_key_ids(payload: &str) -> Vec<Vec<u8>> {
    let mut ids = Vec::new();
    let (tag, body) = split_tag(payload);
    if tag.starts_with(PAYLOAD_PREFIX) {
        // Only the header: its first 4 characters give the id's length.
        let head = |chars: usize| BASE64.decode(body.get(..chars.min(body.len()))?).ok();
        let len = head(4)
            .filter(|b| b.len() == 3 && b[0] == VERSION)
            .map(|b| usize::from(u16::from_be_bytes([b[1], b[2]])));
        if let Some(len) = len {
            let chars = (3 + len).div_ceil(3) * 4;
            if let Some(header) = head(chars) {
                if let Some(id) = header.get(3..3 + len).filter(|id| !id.is_empty()) {
                    ids.push(id.to_vec());
                }
            }
        }
        return ids;
    }
    if tag == crate::JSON_ID {
        scan_fields(body.as_bytes(), Some(body), &mut ids);
    } else {
        match BASE64.decode(body) {
            #[cfg(feature = "compression")]
            Ok(bytes) if tag.starts_with(COMPRESSED_PREFIX) => {
                if let Ok(plain) = crate::compress::unpack(&bytes, crate::compress::DEFAULT_LIMIT) {
                    scan_fields(&plain, None, &mut ids);
                }
            }
            Ok(bytes) => scan_fields(&bytes, None, &mut ids),
            // A raw text codec's payload.
            Err(_) => scan_fields(body.as_bytes(), Some(body), &mut ids),
        }
    }
    ids.sort();
    ids.dedup();
    ids
}

/// Finds `sealed:<base64>` fields in encoded bytes (`text`: the same,
/// when the caller already has them as text).
fn scan_fields(bytes: &[u8], text: Option<&str>, ids: &mut Vec<Vec<u8>>) {
    let prefix = FIELD_PREFIX.as_bytes();
    // Text (JSON) is searched with the standard library's substring search.
    let text = text.or_else(|| std::str::from_utf8(bytes).ok());
    let find = |from: usize| match text {
        Some(text) => text.get(from..).and_then(|t| t.find(FIELD_PREFIX)),
        None => bytes[from..]
            .windows(prefix.len())
            .position(|w| w == prefix),
    };
    let mut at = 0;
    while let Some(found) = find(at) {
        let start = at + found + prefix.len();
        let end = bytes[start..]
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')))
            .map_or(bytes.len(), |n| start + n);
        if let Ok(envelope) = BASE64.decode(&bytes[start..end]) {
            if let Ok((id, _)) = parse_header(&envelope) {
                ids.push(id.to_vec());
            }
        }
        at = end;
    }
}

#[cfg(test)]
mod tests;

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

/// A 256-bit key and its id. Cheap to clone; the key (and its AES round
/// keys) is zeroed when the last clone is dropped and never shown by
/// `Debug`.
#[derive(Clone)]
pub struct Key {
    id: Arc<[u8]>,
    cipher: Arc<Aes256GcmSiv>,
}

impl Key {
    /// A key with this id (1 to 65,535 bytes; short text for static keys,
    /// an encrypted data key for KMS).
    ///
    /// # Errors
    /// [`SealError::Malformed`] when the id is empty or too long.
    pub fn new(id: impl Into<Vec<u8>>, secret: [u8; 32]) -> Result<Self, SealError> {
        let secret = Zeroizing::new(secret);
        let id = id.into();
        let key: &[u8; 32] = &secret;
        if id.is_empty() || id.len() > usize::from(u16::MAX) {
            return Err(SealError::Malformed(format!(
                "a key id must be 1 to 65,535 bytes long, not {}",
                id.len()
            )));
        }
        Ok(Key {
            id: id.into(),
            cipher: Arc::new(Aes256GcmSiv::new(key.into())),
        })
    }

    /// The key's id, as written into payloads.
    pub fn id(&self) -> &[u8] {
        &self.id
    }

    fn cipher(&self) -> &Aes256GcmSiv {
        &self.cipher
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &printable_key_id(&self.id))
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A key id as it appears in errors: text ids as they are, binary ones
/// (KMS encrypted data keys) as `0x` and their first 8 bytes in hex.
pub fn printable_key_id(id: &[u8]) -> String {
    if id.len() <= 64 && id.iter().all(|b| b.is_ascii_graphic()) {
        return String::from_utf8_lossy(id).into_owned();
    }
    let mut out = String::from("0x");
    for b in id.iter().take(8) {
        out.push_str(&format!("{b:02x}"));
    }
    if id.len() > 8 {
        out.push('…');
    }
    out
}

/// Where the keys come from: the key new payloads are sealed with, and the
/// keys recorded payloads name.
///
/// Implement it to plug in a key store of your own; it must answer
/// without blocking (fetch keys ahead, as durable-yield's KMS keyring
/// does before each invocation).
pub trait Keyring: Send + Sync + 'static {
    /// The key to seal new payloads with.
    fn current(&self) -> Result<Key, SealError>;
    /// The key whose id a recorded payload names;
    /// [`SealError::UnknownKey`] when there is none.
    fn find(&self, id: &[u8]) -> Result<Key, SealError>;
}

impl<K: Keyring + ?Sized> Keyring for Arc<K> {
    fn current(&self) -> Result<Key, SealError> {
        (**self).current()
    }
    fn find(&self, id: &[u8]) -> Result<Key, SealError> {
        (**self).find(id)
    }
}

/// A fixed set of keys: one current key that seals, any number of retired
/// keys that only open. For tests and for deployments that load keys from
/// their own secret store at start-up.
///
/// Rotation: make the new key current and keep the old one as retired
/// until no execution that recorded payloads with it is alive (executions
/// live up to a year); replays open old payloads with the old key and seal
/// new ones with the new key.
///
/// ```
/// use durable_yield_codecs::seal::{Keyring, StaticKeyring};
///
/// let keys = StaticKeyring::new("k2", [2; 32]).with_retired("k1", [1; 32]);
/// assert_eq!(keys.current().unwrap().id(), b"k2");
/// assert!(keys.find(b"k1").is_ok());
///
/// // The same from text, e.g. an environment variable (current key first):
/// let keys = StaticKeyring::parse(
///     "k2:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=,k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
/// ).unwrap();
/// assert!(keys.find(b"k1").is_ok());
/// ```
#[derive(Clone)]
pub struct StaticKeyring {
    current: Key,
    keys: Arc<HashMap<Arc<[u8]>, Key>>,
}

impl StaticKeyring {
    /// A keyring whose current key is `secret`, named `id`.
    ///
    /// # Panics
    /// When `id` is empty or not printable ASCII up to 64 bytes: ids are
    /// written into payloads and must stay readable in errors.
    pub fn new(id: &str, secret: [u8; 32]) -> Self {
        let key = Self::key(id, secret).unwrap_or_else(|e| panic!("{e}"));
        let keys = HashMap::from([(key.id.clone(), key.clone())]);
        StaticKeyring {
            current: key,
            keys: Arc::new(keys),
        }
    }

    /// Adds a retired key: it opens payloads, it does not seal.
    ///
    /// # Panics
    /// As [`StaticKeyring::new`], and when `id` is already in the ring.
    pub fn with_retired(mut self, id: &str, secret: [u8; 32]) -> Self {
        let key = Self::key(id, secret).unwrap_or_else(|e| panic!("{e}"));
        let keys = Arc::make_mut(&mut self.keys);
        assert!(
            !keys.contains_key(key.id()),
            "key id `{id}` is in the keyring twice"
        );
        keys.insert(key.id.clone(), key);
        self
    }

    /// Parses `id:base64,id:base64,...` (32-byte keys, base64 standard
    /// alphabet); the first key is current, the others retired.
    ///
    /// # Errors
    /// A message naming the entry that is malformed (never the key bytes).
    pub fn parse(text: &str) -> Result<Self, SealError> {
        let mut ring: Option<StaticKeyring> = None;
        for (n, entry) in text.split(',').map(str::trim).enumerate() {
            let bad = |why: &str| SealError::Malformed(format!("keyring entry {}: {why}", n + 1));
            let (id, secret) = entry
                .split_once(':')
                .ok_or_else(|| bad("expected `id:base64-key`"))?;
            let bytes = Zeroizing::new(
                BASE64
                    .decode(secret.trim())
                    .map_err(|_| bad("the key is not base64"))?,
            );
            let secret: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| bad("a key must be 32 bytes"))?;
            let key = Self::key(id.trim(), secret).map_err(|e| bad(&e.to_string()))?;
            ring = Some(match ring {
                None => StaticKeyring {
                    current: key.clone(),
                    keys: Arc::new(HashMap::from([(key.id.clone(), key)])),
                },
                Some(mut ring) => {
                    let keys = Arc::make_mut(&mut ring.keys);
                    if keys.insert(key.id.clone(), key).is_some() {
                        return Err(bad("the key id is in the keyring twice"));
                    }
                    ring
                }
            });
        }
        ring.ok_or_else(|| SealError::Malformed("the keyring is empty".into()))
    }

    fn key(id: &str, secret: [u8; 32]) -> Result<Key, SealError> {
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(SealError::Malformed(format!(
                "static key id {id:?} must be 1 to 64 printable ASCII characters"
            )));
        }
        Key::new(id.as_bytes(), secret)
    }
}

impl fmt::Debug for StaticKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<String> = self.keys.keys().map(|k| printable_key_id(k)).collect();
        ids.sort();
        f.debug_struct("StaticKeyring")
            .field("current", &printable_key_id(self.current.id()))
            .field("keys", &ids)
            .finish()
    }
}

impl Keyring for StaticKeyring {
    fn current(&self) -> Result<Key, SealError> {
        Ok(self.current.clone())
    }
    fn find(&self, id: &[u8]) -> Result<Key, SealError> {
        self.keys.get(id).cloned().ok_or(SealError::UnknownKey)
    }
}

/// What a ciphertext is: a whole payload (of a codec) or one field.
#[derive(Clone, Copy)]
enum Purpose<'a> {
    Payload { codec: &'a str },
    Field,
}

fn associated_data(purpose: Purpose<'_>, context: &[u8], header: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_MAGIC.len() + 40 + context.len() + header.len());
    aad.extend_from_slice(AAD_MAGIC);
    match purpose {
        Purpose::Payload { codec } => {
            aad.push(b'P');
            aad.extend_from_slice(&(codec.len() as u32).to_be_bytes());
            aad.extend_from_slice(codec.as_bytes());
        }
        Purpose::Field => aad.push(b'F'),
    }
    aad.extend_from_slice(context);
    aad.extend_from_slice(header);
    aad
}

/// Nonces drawn from the operating system in batches (one system call per
/// 64 nonces instead of one per payload); each is used once.
struct NoncePool {
    bytes: [u8; NONCE_LEN * 64],
    used: usize,
}

thread_local! {
    static NONCES: RefCell<NoncePool> = const {
        RefCell::new(NoncePool { bytes: [0; NONCE_LEN * 64], used: NONCE_LEN * 64 })
    };
}

fn random_nonce() -> Result<[u8; NONCE_LEN], SealError> {
    NONCES.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.used == pool.bytes.len() {
            getrandom::fill(&mut pool.bytes).map_err(|e| SealError::Random(e.to_string()))?;
            pool.used = 0;
        }
        let mut nonce = [0u8; NONCE_LEN];
        let at = pool.used;
        nonce.copy_from_slice(&pool.bytes[at..at + NONCE_LEN]);
        // Spent nonces are not kept.
        pool.bytes[at..at + NONCE_LEN].fill(0);
        pool.used += NONCE_LEN;
        Ok(nonce)
    })
}

/// Seals `plaintext` with the keyring's current key: the envelope
/// `version | key id length (u16 BE) | key id | nonce | ciphertext+tag`.
fn seal(
    keys: &dyn Keyring,
    purpose: Purpose<'_>,
    context: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, SealError> {
    let key = keys.current()?;
    let id = key.id();
    let header_len = 3 + id.len();
    let mut out = Vec::with_capacity(header_len + NONCE_LEN + plaintext.len() + TAG_LEN);
    out.push(VERSION);
    out.extend_from_slice(&(id.len() as u16).to_be_bytes());
    out.extend_from_slice(id);
    let nonce = random_nonce()?;
    let aad = associated_data(purpose, context, &out);
    let ciphertext = key
        .cipher()
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| SealError::Malformed("the payload is too large to seal".into()))?;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// The key id an envelope names, and where its header ends.
fn parse_header(envelope: &[u8]) -> Result<(&[u8], usize), SealError> {
    let malformed = |why: &str| SealError::Malformed(why.to_owned());
    match envelope.first() {
        None => return Err(malformed("empty")),
        Some(&VERSION) => {}
        Some(v) => {
            return Err(SealError::Malformed(format!(
                "format version {v} is not one this SDK reads (it reads {VERSION})"
            )));
        }
    }
    let len = envelope
        .get(1..3)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        .ok_or_else(|| malformed("truncated header"))?;
    let end = 3 + len;
    let id = envelope
        .get(3..end)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| malformed("truncated key id"))?;
    if envelope.len() < end + NONCE_LEN + TAG_LEN {
        return Err(malformed("truncated ciphertext"));
    }
    Ok((id, end))
}

/// Opens an envelope; on failure, also says which key id it named.
fn open(
    keys: &dyn Keyring,
    purpose: Purpose<'_>,
    context: &[u8],
    envelope: &[u8],
) -> Result<Vec<u8>, (Option<String>, SealError)> {
    let (id, end) = parse_header(envelope).map_err(|e| (None, e))?;
    let named = || Some(printable_key_id(id));
    let key = keys.find(id).map_err(|e| (named(), e))?;
    let aad = associated_data(purpose, context, &envelope[..end]);
    let nonce = Nonce::from_slice(&envelope[end..end + NONCE_LEN]);
    key.cipher()
        .decrypt(
            nonce,
            Payload {
                msg: &envelope[end + NONCE_LEN..],
                aad: &aad,
            },
        )
        .map_err(|_| (named(), SealError::AuthenticationFailed))
}

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
mod tests {
    use super::*;
    use crate::{Json, from_payload, to_payload};

    const ARN: &str = "arn:aws:lambda:us-east-1:1:function:f:1/durable-execution/a/1";

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Card {
        holder: String,
        number: Sealed<String>,
        cvv: Option<Sealed<u16>>,
    }

    fn card() -> Card {
        Card {
            holder: "Ada".into(),
            number: Sealed::new("4111 1111 1111 1111".into()),
            cvv: Some(Sealed::new(123)),
        }
    }

    #[test]
    fn only_sealing_codecs_bind_the_context() {
        let keys = || StaticKeyring::new("k1", [1; 32]);
        assert!(!Json.binds_context());
        assert!(Encrypted::new(Json, keys()).binds_context());
        assert!(SealedFields::new(Json, keys()).binds_context());
        #[cfg(feature = "compression")]
        {
            assert!(!crate::compress::Compressed::new(Json).binds_context());
            let sealed = crate::compress::Compressed::new(Encrypted::new(Json, keys()));
            assert!(sealed.binds_context());
        }
    }

    #[test]
    fn envelope_names_its_key_and_rejects_truncation() {
        let keys = StaticKeyring::new("k1", [1; 32]);
        let sealed = seal(&keys, Purpose::Field, b"cx", b"hello").unwrap();
        assert_eq!(parse_header(&sealed).unwrap().0, b"k1");
        assert_eq!(sealed.len(), 3 + 2 + NONCE_LEN + 5 + TAG_LEN);
        for n in 0..sealed.len() {
            assert!(open(&keys, Purpose::Field, b"cx", &sealed[..n]).is_err());
        }
        assert_eq!(
            open(&keys, Purpose::Field, b"cx", &sealed).unwrap(),
            b"hello"
        );
        // Two seals of the same text differ (fresh nonce).
        assert_ne!(
            sealed,
            seal(&keys, Purpose::Field, b"cx", b"hello").unwrap()
        );
    }

    #[test]
    fn sealed_outside_a_sealing_codec_is_refused() {
        let cx = PayloadContext::new(ARN, "op");
        let err = to_payload(&Json, &card(), &cx).unwrap_err();
        assert!(err.to_string().contains("outside a sealing codec"), "{err}");
        assert!(format!("{:?}", card()).contains("<redacted>"));
        assert!(!format!("{:?}", card()).contains("4111"));
    }

    #[test]
    fn fields_round_trip_and_name_the_key_when_it_is_gone() {
        let keys = StaticKeyring::new("k1", [1; 32]);
        let cx = PayloadContext::new(ARN, "op");
        let codec = SealedFields::new(Json, keys);
        let payload = to_payload(&codec, &card(), &cx).unwrap();
        assert!(
            payload.starts_with(r#"{"holder":"Ada","number":"sealed:"#),
            "{payload}"
        );
        assert_eq!(
            from_payload::<_, Card>(&codec, &payload, &cx).unwrap(),
            card()
        );
        assert_eq!(referenced_key_ids(&payload), vec![b"k1".to_vec()]);
        let other = SealedFields::new(Json, StaticKeyring::new("k2", [2; 32]));
        match from_payload::<_, Card>(&other, &payload, &cx).unwrap_err() {
            CodecError::Open {
                key_id,
                cause,
                operation,
                ..
            } => {
                assert_eq!(key_id.as_deref(), Some("k1"));
                assert_eq!(cause, SealError::UnknownKey);
                assert_eq!(operation, "op");
            }
            e => panic!("{e}"),
        }
    }

    #[test]
    fn keys_never_show_their_bytes() {
        let key = StaticKeyring::new("k1", [0xab; 32]).current().unwrap();
        let shown = format!("{key:?}");
        assert_eq!(shown, r#"Key { id: "k1", secret: "<redacted>" }"#);
    }

    #[test]
    fn printable_ids() {
        assert_eq!(printable_key_id(b"k-2026"), "k-2026");
        assert_eq!(printable_key_id(&[0, 1, 2]), "0x000102");
        assert_eq!(printable_key_id(&[0xab; 20]), "0xabababababababab…");
    }

    #[test]
    fn keyring_text_errors_never_show_keys() {
        for bad in [
            "",
            "k1",
            "k1:notbase64!",
            "k1:AAAA",
            "k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=,k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
        ] {
            let err = StaticKeyring::parse(bad).unwrap_err().to_string();
            assert!(!err.contains("AQEB"), "{err}");
        }
        let keys = StaticKeyring::parse("a:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=").unwrap();
        assert_eq!(
            format!("{keys:?}"),
            r#"StaticKeyring { current: "a", keys: ["a"] }"#
        );
    }
}

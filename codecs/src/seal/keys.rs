//! Keys and keyrings: what seals and opens.

use super::*;

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

    pub(super) fn cipher(&self) -> &Aes256GcmSiv {
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

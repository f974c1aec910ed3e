//! The envelope: associated data, nonces, sealing and opening.

use super::*;

/// What a ciphertext is: a whole payload (of a codec) or one field.
#[derive(Clone, Copy)]
pub(super) enum Purpose<'a> {
    Payload { codec: &'a str },
    Field,
}

pub(super) fn associated_data(purpose: Purpose<'_>, context: &[u8], header: &[u8]) -> Vec<u8> {
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

pub(super) fn random_nonce() -> Result<[u8; NONCE_LEN], SealError> {
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
pub(super) fn seal(
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
pub(super) fn parse_header(envelope: &[u8]) -> Result<(&[u8], usize), SealError> {
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
pub(super) fn open(
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

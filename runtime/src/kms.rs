//! A [`Keyring`] of AWS KMS data keys (envelope encryption), for the
//! encrypting codecs of [`codecs::seal`](crate::codecs::seal). Feature
//! `kms`.
//!
//! The keyring asks KMS for a 256-bit data key (`GenerateDataKey`) and
//! seals payloads with it; the key's id, written into every sealed payload,
//! is the data key as KMS encrypted it (its `CiphertextBlob`, about 180
//! bytes). Opening a payload sealed in another invocation or on another
//! instance asks KMS to decrypt that id (`Decrypt`). The key material
//! itself never leaves the function's memory and is never logged (`Debug`
//! shows the id only); the keyring's copy is zeroed when dropped (the
//! response buffer `aws-sdk-kms` decoded it from is freed, not zeroed).
//!
//! Codecs run synchronously, so the keyring fetches ahead: register it as
//! a [plugin](crate::plugin) and, before each invocation replays, it reads
//! the key ids the recorded payloads name (whole payloads and sealed
//! fields, also inside compressed payloads) and decrypts those it has not
//! cached, then makes sure it holds a current data key (a new one per cold
//! start, and after [`KmsKeyring::rotate_after`], by default a day).
//! Cached keys live as long as the instance: a replay of a long history
//! costs one `Decrypt` per data key it names, once per instance.
//!
//! ```no_run
//! use durable_yield::codecs::{Json, seal::Encrypted};
//! use durable_yield::kms::KmsKeyring;
//! use durable_yield::lambda::DurableHandler;
//! use durable_yield::{StepConfig, StepError, Workflow};
//!
//! # async fn f() -> Result<(), durable_yield::lambda::Error> {
//! let config = aws_config::load_from_env().await;
//! let keys = KmsKeyring::new(aws_sdk_kms::Client::new(&config), "alias/durable-checkpoints");
//! let codec = Encrypted::new(Json, keys.clone());
//! let workflow = move |mut wf: Workflow, card: String| {
//!     let codec = codec.clone();
//!     async move {
//!         let token: String = wf
//!             .step_with(StepConfig::named("tokenize").codec(codec), move |_| async move {
//!                 Ok(format!("tok-{}", card.len()))
//!             })
//!             .await?;
//!         Ok::<_, StepError>(token)
//!     }
//! };
//! DurableHandler::new(workflow).plugin(keys).run().await
//! # }
//! ```
//!
//! # Permissions
//!
//! The function's role needs, on the KMS key:
//!
//! ```json
//! {
//!   "Effect": "Allow",
//!   "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
//!   "Resource": "arn:aws:kms:REGION:ACCOUNT:key/KEY-ID",
//!   "Condition": {
//!     "StringEquals": {
//!       "kms:EncryptionContext:durable-yield-purpose": "checkpoint-data-key"
//!     }
//!   }
//! }
//! ```
//!
//! Every data key is bound to the encryption context
//! `{"durable-yield-purpose": "checkpoint-data-key"}`, so the condition
//! keeps the role from using the key for anything else.
//!
//! # Changing the KMS key
//!
//! KMS's automatic rotation of a key's material needs nothing. To move to
//! another KMS key, point the keyring at it and keep the old one for
//! opening: `KmsKeyring::new(client, "alias/new").also_decrypt_with(
//! "arn:aws:kms:...:key/old")`, until no execution that recorded payloads
//! under the old key is alive (the role needs `kms:Decrypt` on both).
//!
//! # Failures
//!
//! A network failure, a throttle or a KMS internal error while preparing
//! fails the invocation, and the service invokes the function again. A key
//! KMS refuses to decrypt (access denied, a disabled or deleted key, a
//! changed id) is remembered with KMS's reason: decoding a payload that
//! names it fails the execution with that reason
//! ([`SealError::KeyUnavailable`]).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use durable_yield_codecs::SealError;
use durable_yield_codecs::seal::{Key, Keyring, printable_key_id, referenced_key_ids};
use futures_util::future::BoxFuture;

use crate::BoxError;
use crate::engine::ServiceError;
use crate::lambda::aws::classify;
use crate::model::Operation;
use crate::plugin::{InvocationHooks, InvocationStart, Plugin};

/// The encryption context every data key is bound to.
pub const ENCRYPTION_CONTEXT: (&str, &str) = ("durable-yield-purpose", "checkpoint-data-key");

/// How long a data key seals new payloads by default.
pub const DEFAULT_ROTATION: Duration = Duration::from_secs(24 * 60 * 60);

/// Opened keys kept at most; past it, the cache starts again.
const MAX_CACHED: usize = 4096;

/// A keyring of KMS data keys (see the [module docs](self)). Cheap to
/// clone: clones share the cache.
#[derive(Clone)]
pub struct KmsKeyring {
    inner: Arc<Inner>,
}

struct Inner {
    client: aws_sdk_kms::Client,
    key_id: String,
    /// Earlier KMS keys whose data keys still open recorded payloads.
    retired: Mutex<Vec<String>>,
    /// Milliseconds.
    rotate_after: AtomicU64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    current: Option<(Key, Instant)>,
    /// Why the current key could not be made, if it could not.
    no_current: Option<String>,
    opened: HashMap<Vec<u8>, Key>,
    refused: HashMap<Vec<u8>, String>,
}

impl KmsKeyring {
    /// A keyring of data keys under the KMS key `key_id` (a key id, key
    /// ARN, alias name or alias ARN).
    pub fn new(client: aws_sdk_kms::Client, key_id: impl Into<String>) -> Self {
        KmsKeyring {
            inner: Arc::new(Inner {
                client,
                key_id: key_id.into(),
                retired: Mutex::new(Vec::new()),
                rotate_after: AtomicU64::new(DEFAULT_ROTATION.as_millis() as u64),
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// Seals with a new data key once the current one is this old (checked
    /// before each invocation). Applies to every clone.
    pub fn rotate_after(self, age: Duration) -> Self {
        let ms = u64::try_from(age.as_millis()).unwrap_or(u64::MAX);
        self.inner.rotate_after.store(ms, Ordering::Relaxed);
        self
    }

    /// Also opens data keys made under the KMS key `key_id` (a key id, key
    /// ARN, alias name or alias ARN): after pointing the keyring at a new
    /// KMS key, keep the old one here until no execution that recorded
    /// payloads under it is alive. `Decrypt` names the key it expects, so
    /// a data key of any other KMS key is refused. (KMS's own yearly
    /// rotation of a key's material needs nothing: the key stays the
    /// same.) Applies to every clone.
    pub fn also_decrypt_with(self, key_id: impl Into<String>) -> Self {
        self.inner
            .retired
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(key_id.into());
        self
    }

    fn rotation(&self) -> Duration {
        Duration::from_millis(self.inner.rotate_after.load(Ordering::Relaxed))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state stays consistent through a panic: each write is whole.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Fetches the keys `operations` name and a current key, as the
    /// plugin does before each invocation. Call it yourself when you
    /// decode sealed payloads outside an invocation.
    ///
    /// # Errors
    /// A transient failure (network, throttle, KMS internal error);
    /// refusals are remembered per key instead.
    pub async fn prepare(&self, operations: &[Operation]) -> Result<(), ServiceError> {
        let wanted: HashSet<Vec<u8>> = operations
            .iter()
            .flat_map(recorded_payloads)
            .flat_map(referenced_key_ids)
            .collect();
        let missing: Vec<Vec<u8>> = {
            let state = self.state();
            wanted
                .into_iter()
                .filter(|id| !state.opened.contains_key(id) && !state.refused.contains_key(id))
                .collect()
        };
        let kms_keys: Vec<String> = std::iter::once(self.inner.key_id.clone())
            .chain(
                self.inner
                    .retired
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .cloned(),
            )
            .collect();
        for id in missing {
            // The current KMS key first, then the retired ones: KMS refuses
            // a data key of another key with IncorrectKeyException.
            let mut opened = Err(String::new());
            for kms_key in &kms_keys {
                let answer = self
                    .inner
                    .client
                    .decrypt()
                    .key_id(kms_key)
                    .ciphertext_blob(Blob::new(id.clone()))
                    .encryption_context(ENCRYPTION_CONTEXT.0, ENCRYPTION_CONTEXT.1)
                    .send()
                    .await;
                opened = match answer {
                    Ok(output) => data_key(id.clone(), output.plaintext()),
                    Err(error) => match classify(error) {
                        ServiceError::Rejected(reason) => Err(reason),
                        transient => return Err(transient),
                    },
                };
                match &opened {
                    Err(reason) if reason.contains("IncorrectKeyException") => continue,
                    _ => break,
                }
            }
            let mut state = self.state();
            if state.opened.len() >= MAX_CACHED {
                state.opened.clear();
            }
            match opened {
                Ok(key) => {
                    state.opened.insert(id, key);
                }
                Err(reason) => {
                    tracing::warn!(
                        key_id = %printable_key_id(&id),
                        %reason,
                        "KMS did not decrypt a data key that recorded payloads name"
                    );
                    state.refused.insert(id, reason);
                }
            }
        }
        let fresh = self
            .state()
            .current
            .as_ref()
            .is_some_and(|(_, made)| made.elapsed() < self.rotation());
        if fresh {
            return Ok(());
        }
        let answer = self
            .inner
            .client
            .generate_data_key()
            .key_id(&self.inner.key_id)
            .key_spec(DataKeySpec::Aes256)
            .encryption_context(ENCRYPTION_CONTEXT.0, ENCRYPTION_CONTEXT.1)
            .send()
            .await;
        let made = match answer {
            Ok(output) => match output.ciphertext_blob() {
                Some(blob) => data_key(blob.as_ref().to_vec(), output.plaintext()),
                None => Err("KMS returned no CiphertextBlob".to_owned()),
            },
            Err(error) => match classify(error) {
                ServiceError::Rejected(reason) => Err(reason),
                transient => return Err(transient),
            },
        };
        let mut state = self.state();
        match made {
            Ok(key) => {
                state.opened.insert(key.id().to_vec(), key.clone());
                state.current = Some((key, Instant::now()));
                state.no_current = None;
            }
            Err(reason) => {
                tracing::warn!(%reason, key = %self.inner.key_id, "KMS did not generate a data key");
                state.no_current = Some(reason);
            }
        }
        Ok(())
    }
}

/// A 32-byte data key from KMS's plaintext.
fn data_key(id: Vec<u8>, plaintext: Option<&Blob>) -> Result<Key, String> {
    let bytes = plaintext.map(Blob::as_ref).unwrap_or_default();
    let secret: [u8; 32] = bytes
        .try_into()
        .map_err(|_| format!("KMS returned a data key of {} bytes, not 32", bytes.len()))?;
    Key::new(id, secret).map_err(|e| e.to_string())
}

fn error_data(error: Option<&crate::model::ErrorObject>) -> Option<&str> {
    error.and_then(|e| e.error_data.as_deref())
}

/// Every payload an operation's record holds.
fn recorded_payloads(op: &Operation) -> impl Iterator<Item = &str> {
    let step = op.step_details.as_deref();
    let context = op.context_details.as_deref();
    let callback = op.callback_details.as_deref();
    let invoke = op.chained_invoke_details.as_deref();
    [
        step.and_then(|d| d.result.as_ref()).map(|p| p.as_str()),
        step.and_then(|d| error_data(d.error.as_ref())),
        context.and_then(|d| d.result.as_ref()).map(|p| p.as_str()),
        context.and_then(|d| error_data(d.error.as_ref())),
        callback.and_then(|d| d.result.as_ref()).map(|p| p.as_str()),
        callback.and_then(|d| error_data(d.error.as_ref())),
        invoke.and_then(|d| d.result.as_ref()).map(|p| p.as_str()),
    ]
    .into_iter()
    .flatten()
}

impl Keyring for KmsKeyring {
    fn current(&self) -> Result<Key, SealError> {
        let state = self.state();
        match (&state.current, &state.no_current) {
            (Some((key, _)), _) => Ok(key.clone()),
            (None, Some(reason)) => Err(SealError::KeyUnavailable(format!(
                "KMS did not generate a data key: {reason}"
            ))),
            (None, None) => Err(SealError::KeyUnavailable(
                "the KMS keyring holds no data key yet: register it as a plugin \
                 (`.plugin(keyring)`) so that it prepares every invocation, or call \
                 `KmsKeyring::prepare` first"
                    .into(),
            )),
        }
    }

    fn find(&self, id: &[u8]) -> Result<Key, SealError> {
        let state = self.state();
        if let Some(key) = state.opened.get(id) {
            return Ok(key.clone());
        }
        match state.refused.get(id) {
            Some(reason) => Err(SealError::KeyUnavailable(format!(
                "KMS did not decrypt this data key: {reason}"
            ))),
            None => Err(SealError::KeyUnavailable(
                "this data key was not fetched before the invocation: register the keyring \
                 as a plugin, and keep `Encrypted` outermost (a sealed payload inside \
                 another codec's bytes is not found ahead)"
                    .into(),
            )),
        }
    }
}

struct NoHooks;
impl InvocationHooks for NoHooks {}

impl Plugin for KmsKeyring {
    fn invocation(&self, _: &InvocationStart<'_>) -> Result<Box<dyn InvocationHooks>, BoxError> {
        Ok(Box::new(NoHooks))
    }

    fn prepare<'a>(&'a self, operations: &'a [Operation]) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move { self.prepare(operations).await.map_err(BoxError::from) })
    }

    fn name(&self) -> &str {
        "KmsKeyring"
    }
}

impl fmt::Debug for KmsKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("KmsKeyring")
            .field("key_id", &self.inner.key_id)
            .field("rotate_after", &self.rotation())
            .field(
                "current",
                &state
                    .current
                    .as_ref()
                    .map(|(k, _)| printable_key_id(k.id())),
            )
            .field("cached", &state.opened.len())
            .finish()
    }
}

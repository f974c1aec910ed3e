//! The API workflow code is written against.
//!
//! A workflow is an `async fn(Workflow, Input) -> Result<Output, E>`. Every
//! durable operation is a method on the [`Workflow`] handle; awaiting it
//! yields the request to the interpreter, which replays a recorded outcome
//! or has the runtime do the work. Operations take `&mut self`, so two can
//! never be in flight on one handle.
//!
//! ```
//! use std::time::Duration;
//! use durable_yield_interpreter::{StepConfig, StepError, Workflow};
//! use durable_yield_codecs::Bincode;
//!
//! async fn greet(mut wf: Workflow, name: String) -> Result<String, StepError> {
//!     // A named step with the default JSON codec.
//!     let greeting: String = wf
//!         .step("greet", |_ctx| async move { Ok(format!("hello {name}")) })
//!         .await?;
//!     // A durable timer: the invocation ends here and resumes a minute later.
//!     wf.wait("cool-off", Duration::from_secs(60)).await;
//!     // A step with another codec.
//!     let len: u64 = wf
//!         .step_with(StepConfig::named("measure").codec(Bincode), move |_ctx| async move {
//!             Ok(greeting.len() as u64)
//!         })
//!         .await?;
//!     Ok(format!("{len}"))
//! }
//! ```

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use durable_yield_codecs::{
    Codec, CodecError, Json, PayloadContext, PayloadKind, from_payload, to_payload,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::coroutine::{BoxFuture, Yielder};
use crate::id::idempotency_key;
use crate::interpreter::answered_op;
use crate::model::{ErrorObject, Millis, OperationId};
use crate::protocol::{Fatal, Request, Response};
use crate::retry::{NoRetry, RetryStrategy, mix};

/// A boxed error, the common currency of workflow and step errors.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The handle workflow code uses to run durable operations.
pub struct Workflow {
    pub(crate) yielder: Yielder,
    execution_arn: Arc<str>,
    /// Its CONTEXT operation (none at the root).
    context_op: Option<OperationId>,
}

/// What a step body learns about the attempt it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepContext {
    pub(crate) id: OperationId,
    pub(crate) name: Option<Cow<'static, str>>,
    pub(crate) attempt: u32,
    pub(crate) execution_arn: Arc<str>,
    pub(crate) now: Millis,
    /// Randomness for this attempt: the runtime's entropy for the
    /// invocation mixed with the execution, the step and the attempt.
    pub(crate) seed: u64,
}

impl StepContext {
    /// The step's operation id. It comes from the step's position in the
    /// workflow, so it is the same in every execution: use
    /// [`StepContext::idempotency_key`] as an idempotency key, not this.
    pub fn operation_id(&self) -> &OperationId {
        &self.id
    }
    /// The ARN of the durable execution the step runs in.
    pub fn execution_arn(&self) -> &str {
        &self.execution_arn
    }
    /// A key unique to this execution and this step, the same on every
    /// attempt and every replay: pass it to a payment provider or any API
    /// that de-duplicates requests. 40 lowercase hex characters (see
    /// [`idempotency_key`](crate::id::idempotency_key)).
    ///
    /// ```
    /// # use durable_yield_interpreter::{StepContext, StepFailure};
    /// async fn charge(ctx: StepContext, cents: u64) -> Result<String, StepFailure> {
    ///     let key = ctx.idempotency_key();
    ///     // provider.charge(cents).idempotency_key(&key).send().await?
    ///     Ok(format!("charged {cents} with key {key}"))
    /// }
    /// ```
    pub fn idempotency_key(&self) -> String {
        idempotency_key(&self.execution_arn, &self.id)
    }
    /// When this attempt was started, by the runtime's clock (the virtual
    /// clock on the local runner).
    pub fn now(&self) -> SystemTime {
        from_millis(self.now)
    }
    /// The step's name, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    /// The attempt being run, starting at 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

/// When a step's body may run, relative to its attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StepSemantics {
    /// The body runs at least once per attempt: if the process dies after
    /// the body ran but before its outcome was recorded, the attempt runs
    /// again. START is not waited for: it shares the outcome's request
    /// when the body is fast, and is sent while a slower body runs (the
    /// runtime's `BatchConfig::start_delay`, 100 ms by default). The
    /// default.
    #[default]
    AtLeastOncePerRetry,
    /// The body runs at most once per attempt: START is checkpointed (and
    /// acknowledged) before the body runs, and an attempt found started but
    /// unfinished on replay counts as failed (`StepInterrupted`) and goes to
    /// the retry strategy; it never silently runs again. Costs one more
    /// checkpoint request per attempt.
    AtMostOncePerRetry,
}

/// How to run one step: its name, the codec of its checkpoint, its retry
/// strategy and its semantics, for [`Workflow::step_with`].
/// ([`Workflow::step`] is the short form for a named step with the
/// defaults: [`Json`], [`ExponentialBackoff`](crate::retry::ExponentialBackoff)'s
/// default, at-least-once.)
#[derive(Clone)]
pub struct StepConfig<C = Json> {
    name: Option<Cow<'static, str>>,
    codec: C,
    retry: Option<Arc<dyn RetryStrategy>>,
    semantics: StepSemantics,
}

impl<C: fmt::Debug> fmt::Debug for StepConfig<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepConfig")
            .field("name", &self.name)
            .field("codec", &self.codec)
            .field("custom_retry", &self.retry.is_some())
            .field("semantics", &self.semantics)
            .finish()
    }
}

impl StepConfig<Json> {
    /// An unnamed step with the JSON codec.
    pub fn new() -> Self {
        StepConfig {
            name: None,
            codec: Json,
            retry: None,
            semantics: StepSemantics::default(),
        }
    }
    /// A named step with the JSON codec.
    pub fn named(name: impl Into<Cow<'static, str>>) -> Self {
        StepConfig::new().name(name)
    }
}

impl Default for StepConfig<Json> {
    fn default() -> Self {
        StepConfig::new()
    }
}

impl<C> StepConfig<C> {
    /// Sets the step's name (shown in the console and the history).
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// Picks the codec the step's result is checkpointed with.
    pub fn codec<C2: Codec + Clone>(self, codec: C2) -> StepConfig<C2> {
        StepConfig {
            name: self.name,
            codec,
            retry: self.retry,
            semantics: self.semantics,
        }
    }
    /// Picks the retry strategy (see [`crate::retry`]).
    pub fn retry(mut self, strategy: impl RetryStrategy) -> Self {
        self.retry = Some(Arc::new(strategy));
        self
    }
    /// Picks a shared retry strategy.
    pub(crate) fn retry_arc(mut self, strategy: Arc<dyn RetryStrategy>) -> Self {
        self.retry = Some(strategy);
        self
    }
    /// Picks at-least-once or at-most-once execution per attempt.
    pub fn semantics(mut self, semantics: StepSemantics) -> Self {
        self.semantics = semantics;
        self
    }
}

/// How to run one wait: its name. `&'static str` and `String` convert
/// into a named wait.
#[derive(Debug, Clone, Default)]
pub struct WaitConfig {
    name: Option<Cow<'static, str>>,
}

impl WaitConfig {
    /// An unnamed wait.
    pub fn new() -> Self {
        WaitConfig { name: None }
    }
    /// A named wait.
    pub fn named(name: impl Into<Cow<'static, str>>) -> Self {
        WaitConfig {
            name: Some(name.into()),
        }
    }
    /// Names the operation.
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl From<&'static str> for WaitConfig {
    fn from(name: &'static str) -> Self {
        WaitConfig::named(name)
    }
}

impl From<String> for WaitConfig {
    fn from(name: String) -> Self {
        WaitConfig::named(name)
    }
}

/// A step (or child context, map item, ...) that failed: the error its body
/// returned, as checkpointed.
///
/// Workflow code gets the same `StepError` on the first run and on every
/// replay, since both are read from the recorded [`ErrorObject`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepError {
    kind: &'static str,
    step: Option<Cow<'static, str>>,
    error: Box<ErrorObject>,
}

impl StepError {
    /// A failed operation of `kind` (`step`, `child context`, ...).
    pub(crate) fn new(
        kind: &'static str,
        name: Option<Cow<'static, str>>,
        error: ErrorObject,
    ) -> Self {
        StepError {
            kind,
            step: name,
            error: Box::new(error),
        }
    }
    /// What failed: `step`, `child context`, `map`, `parallel` or
    /// `batch item`.
    pub fn operation_kind(&self) -> &'static str {
        self.kind
    }
    /// The name of the operation that failed (a step, a child context, a
    /// map or parallel, or `<batch>[<index>]` for a batch item).
    pub fn step_name(&self) -> Option<&str> {
        self.step.as_deref()
    }
    /// The error's type: the name of the body's error type without its
    /// module path (e.g. `Error` for `std::io::Error`, `Timeout` for
    /// `my_crate::Timeout`), or what a [`StepFailure`] chose, or what
    /// another SDK recorded.
    pub fn error_type(&self) -> Option<&str> {
        self.error.error_type.as_deref()
    }
    /// The error's message.
    pub fn message(&self) -> Option<&str> {
        self.error.error_message.as_deref()
    }
    /// The recorded error.
    pub fn error_object(&self) -> &ErrorObject {
        &self.error
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.step {
            Some(name) => write!(f, "{} {name:?} failed: {}", self.kind, self.error),
            None => write!(f, "{} failed: {}", self.kind, self.error),
        }
    }
}

impl StdError for StepError {}

/// The context error data is encoded for: the execution, no operation.
fn error_data_context(execution_arn: &str) -> PayloadContext<'_> {
    PayloadContext::new(execution_arn, "").with_kind(PayloadKind::ErrorData)
}

impl StepError {
    /// Decodes the error's data (`ErrorData`) as JSON: `Ok(None)` when the
    /// error carries none. See [`StepFailure::with_data`].
    pub fn data<T: DeserializeOwned>(&self) -> Result<Option<T>, CodecError> {
        self.data_with(&Json)
    }

    /// Decodes the error's data with `codec`, as attached by
    /// [`StepFailure::with_data_codec`] (bound to no execution).
    pub fn data_with<C: Codec, T: DeserializeOwned>(
        &self,
        codec: &C,
    ) -> Result<Option<T>, CodecError> {
        self.decode_data(codec, &PayloadContext::DETACHED)
    }

    /// Decodes the error's data with `codec`, as attached by
    /// [`StepFailure::with_data_in`]: bound to the execution `wf` runs
    /// in, which an encrypting codec checks.
    pub fn data_in<C: Codec, T: DeserializeOwned>(
        &self,
        wf: &Workflow,
        codec: &C,
    ) -> Result<Option<T>, CodecError> {
        self.decode_data(codec, &error_data_context(wf.execution_arn()))
    }

    fn decode_data<C: Codec, T: DeserializeOwned>(
        &self,
        codec: &C,
        cx: &PayloadContext<'_>,
    ) -> Result<Option<T>, CodecError> {
        self.error
            .error_data
            .as_deref()
            .map(|data| from_payload(codec, data, cx))
            .transpose()
    }
}

/// The error type of step bodies: what a failed attempt records.
///
/// A body returns `Result<T, StepFailure>`, so that `Ok(value)` needs no
/// annotation and `?` works on any error type: the error converts into a
/// `StepFailure` that records
///
/// * `ErrorType`: the error type's own name, without its module path
///   (`Error` for `std::io::Error`, `Timeout` for `my_crate::Timeout`,
///   `Wrapper<Inner>` for a generic type). Module paths are left out
///   because histories outlive deployments: moving a type to another module
///   must not change what `only_error_types` matches;
/// * `ErrorMessage`: its message, followed by its sources;
///
/// and keeps the error value itself, which a retry strategy can downcast
/// ([`FailedAttempt::downcast_ref`](crate::retry::FailedAttempt::downcast_ref)).
/// `StepFailure::new` picks the type and message; [`StepFailure::with_type`]
/// overrides the recorded type of a converted error; `with_data` attaches
/// data that workflow code can decode from the [`StepError`] (on the first
/// run and on every replay).
///
/// ```
/// use durable_yield_interpreter::{StepContext, StepFailure};
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Declined { code: u16 }
///
/// async fn charge(_ctx: StepContext, cents: u64) -> Result<String, StepFailure> {
///     if cents > 100_000 {
///         return Err(StepFailure::new("CardDeclined", "the card was declined")
///             .with_data(&Declined { code: 51 })?);
///     }
///     let n: u64 = "42".parse()?; // any error type converts
///     Ok(format!("receipt-{n}"))
/// }
/// ```
///
/// Like `anyhow::Error`, `StepFailure` does not implement
/// `std::error::Error` itself (that is what lets `?` convert every error
/// into it). Return an error value directly with `Err(e.into())`, a boxed
/// one with [`StepFailure::from_boxed`].
pub struct StepFailure {
    error: ErrorObject,
    source: Option<BoxError>,
    retryable: bool,
}

impl fmt::Debug for StepFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepFailure")
            .field("error", &self.error)
            .field("retryable", &self.retryable)
            .finish_non_exhaustive()
    }
}

impl StepFailure {
    /// A failure with this `ErrorType` and message.
    pub fn new(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        StepFailure {
            error: ErrorObject::new(error_type, message),
            source: None,
            retryable: true,
        }
    }

    /// A failure with only a message (`ErrorType` `Error`).
    pub fn msg(message: impl Into<String>) -> Self {
        StepFailure::new("Error", message)
    }

    /// Records `error` (see the type's docs); the same as `error.into()`.
    pub fn from_error<E: StdError + Send + Sync + 'static>(error: E) -> Self {
        StepFailure::recording(Box::new(error), error_type_name::<E>())
    }

    /// Records a boxed error: its message and sources, `ErrorType` `Error`
    /// (a box hides the type; use [`StepFailure::with_type`] to name it).
    pub fn from_boxed(error: BoxError) -> Self {
        StepFailure::recording(error, "Error".to_owned())
    }

    /// Records `error` as `error_type` with its message and sources; a
    /// [`StepError`] (`?` on a failed step) keeps the step's own error.
    fn recording(error: BoxError, error_type: String) -> Self {
        let recorded = match error.downcast_ref::<StepError>() {
            Some(step) => (*step.error).clone(),
            None => ErrorObject::new(error_type, message_with_sources(&*error)),
        };
        StepFailure {
            error: recorded,
            source: Some(error),
            retryable: true,
        }
    }

    /// Records `error_type` as the `ErrorType` instead of the one derived
    /// from the error.
    pub fn with_type(mut self, error_type: impl Into<String>) -> Self {
        self.error.error_type = Some(error_type.into());
        self
    }

    /// Attaches `data`, encoded as JSON.
    pub fn with_data<T: Serialize + ?Sized>(self, data: &T) -> Result<Self, CodecError> {
        self.with_data_codec(&Json, data)
    }

    /// Attaches `data`, encoded with `codec` for no execution in
    /// particular ([`PayloadContext::DETACHED`]); read it back with
    /// [`StepError::data_with`]. To encrypt error data, use
    /// [`StepFailure::with_data_in`].
    pub fn with_data_codec<C: Codec, T: Serialize + ?Sized>(
        mut self,
        codec: &C,
        data: &T,
    ) -> Result<Self, CodecError> {
        self.error.error_data = Some(to_payload(codec, data, &PayloadContext::DETACHED)?);
        Ok(self)
    }

    /// Attaches `data`, encoded with `codec` for the execution the step
    /// runs in: with an encrypting codec (`Encrypted`, `SealedFields`) the
    /// data is sealed and opens only in this execution; read it back with
    /// [`StepError::data_in`]. The error's type and message stay plain
    /// text: keep secrets out of them and put them here.
    ///
    /// Error data is bound to the execution and to the error field, not
    /// to the step: a failure travels unchanged from a step to the child
    /// contexts around it, which record it as their own.
    pub fn with_data_in<C: Codec, T: Serialize + ?Sized>(
        mut self,
        ctx: &StepContext,
        codec: &C,
        data: &T,
    ) -> Result<Self, CodecError> {
        let cx = error_data_context(&ctx.execution_arn);
        self.error.error_data = Some(to_payload(codec, data, &cx)?);
        Ok(self)
    }

    /// The error as it will be recorded.
    pub fn error_object(&self) -> &ErrorObject {
        &self.error
    }

    /// The error value the failure was made from, if any.
    pub fn source_error(&self) -> Option<&(dyn StdError + Send + Sync + 'static)> {
        self.source.as_deref()
    }

    /// A failure the SDK itself made for a result that no retry can fix
    /// (not encodable, too large): it fails the step at once.
    pub(crate) fn permanent(error: ErrorObject) -> Self {
        StepFailure {
            error,
            source: None,
            retryable: false,
        }
    }

    /// Whether the step's retry strategy is asked about this failure:
    /// `false` only for failures the SDK makes for a result no retry can
    /// fix (not encodable, too large).
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    pub(crate) fn into_parts(self) -> (ErrorObject, Option<BoxError>, bool) {
        (self.error, self.source, self.retryable)
    }
}

impl fmt::Display for StepFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl<E: StdError + Send + Sync + 'static> From<E> for StepFailure {
    fn from(error: E) -> Self {
        StepFailure::from_error(error)
    }
}

/// The recorded name of an error type: its Rust type name with every
/// module path left out (`std::io::Error` → `Error`,
/// `my::Wrapper<other::Inner>` → `Wrapper<Inner>`).
///
/// ```
/// use durable_yield_interpreter::error_type_name;
/// assert_eq!(error_type_name::<std::num::ParseIntError>(), "ParseIntError");
/// ```
pub fn error_type_name<E: ?Sized>() -> String {
    short_type_name(std::any::type_name::<E>())
}

/// Leaves the module paths out of a type name.
pub(crate) fn short_type_name(full: &str) -> String {
    let mut out = String::with_capacity(full.len());
    let mut segment_start = 0;
    let mut chars = full.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            out.truncate(segment_start);
            continue;
        }
        out.push(c);
        // `{{closure}}` and `{{impl}}` are path segments too.
        if !(c.is_alphanumeric() || matches!(c, '_' | '{' | '}')) {
            segment_start = out.len();
        }
    }
    out
}

/// An error's message followed by its sources, `": "`-separated.
fn message_with_sources(error: &(dyn StdError + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

/// Records a workflow's error as an [`ErrorObject`]: `ErrorType` is the
/// short type name of `E` (see [`error_type_name`]), `ErrorMessage` its
/// message followed by its sources. A [`StepError`] passes through
/// unchanged, so `?` on a failed step fails the execution with the step's
/// own error.
pub fn error_object_from<E: Into<BoxError>>(error: E) -> ErrorObject {
    let type_name = error_type_name::<E>();
    let boxed: BoxError = error.into();
    if let Some(step) = boxed.downcast_ref::<StepError>() {
        return (*step.error).clone();
    }
    let message = message_with_sources(&*boxed);
    // Strings and boxed errors carry no useful type name.
    let error_type =
        if type_name.starts_with("Box<dyn ") || type_name == "&str" || type_name == "String" {
            "Error".to_owned()
        } else {
            type_name
        };
    ErrorObject::new(error_type, message)
}

fn from_millis(ms: Millis) -> SystemTime {
    if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms as u64)
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    }
}

/// A stream of pseudo-random words from `seed` (splitmix64).
fn words(seed: u64) -> impl FnMut() -> u64 {
    let mut counter = seed;
    move || {
        counter = counter.wrapping_add(1);
        mix(counter)
    }
}

/// Values [`Workflow::random`] can draw.
pub trait RandomValue: Serialize + DeserializeOwned + Send + 'static {
    /// Builds a value from uniformly random 64-bit words.
    fn from_words(next: &mut dyn FnMut() -> u64) -> Self;
}

macro_rules! random_ints {
    ($($t:ty),*) => {$(
        impl RandomValue for $t {
            fn from_words(next: &mut dyn FnMut() -> u64) -> Self {
                next() as $t
            }
        }
    )*};
}
random_ints!(u8, u16, u32, u64, i8, i16, i32, i64);

impl RandomValue for u128 {
    fn from_words(next: &mut dyn FnMut() -> u64) -> Self {
        (u128::from(next()) << 64) | u128::from(next())
    }
}

impl RandomValue for i128 {
    fn from_words(next: &mut dyn FnMut() -> u64) -> Self {
        u128::from_words(next) as i128
    }
}

impl RandomValue for bool {
    fn from_words(next: &mut dyn FnMut() -> u64) -> Self {
        next() & 1 == 1
    }
}

/// Uniform in `[0, 1)`.
impl RandomValue for f64 {
    fn from_words(next: &mut dyn FnMut() -> u64) -> Self {
        (next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl<const N: usize> RandomValue for [u8; N]
where
    [u8; N]: Serialize + DeserializeOwned,
{
    fn from_words(next: &mut dyn FnMut() -> u64) -> Self {
        let mut out = [0u8; N];
        for chunk in out.chunks_mut(8) {
            let word = next().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
        out
    }
}

/// A version 4 UUID in its hyphenated lowercase form.
fn uuid_v4(next: &mut dyn FnMut() -> u64) -> String {
    let mut bytes = <[u8; 16]>::from_words(next);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

impl Workflow {
    pub(crate) fn new(
        yielder: Yielder,
        execution_arn: Arc<str>,
        context_op: Option<OperationId>,
    ) -> Self {
        Workflow {
            yielder,
            execution_arn,
            context_op,
        }
    }

    /// What a payload of operation `op` is encoded for (see
    /// [`PayloadContext`]); `op` comes from [`answered_op`] right after
    /// the operation's answer.
    pub(crate) fn payload_context<'a>(&'a self, op: &'a Option<OperationId>) -> PayloadContext<'a> {
        PayloadContext::with_operation_bytes(
            &self.execution_arn,
            op.as_ref().map_or(b"", OperationId::as_bytes),
        )
    }

    /// The execution's ARN, shared.
    pub(crate) fn arn(&self) -> Arc<str> {
        self.execution_arn.clone()
    }

    /// The id of this workflow's own CONTEXT operation (none at the root):
    /// its result is encoded for it.
    pub(crate) fn context_op(&self) -> Option<OperationId> {
        self.context_op
    }

    /// The ARN of the durable execution this workflow runs in.
    pub fn execution_arn(&self) -> &str {
        &self.execution_arn
    }

    /// Whether this code is replaying what an earlier invocation ran (see
    /// [`is_replaying`](crate::is_replaying)): log only when it is not, to
    /// write each line once per execution.
    pub fn is_replaying(&self) -> bool {
        crate::interpreter::is_replaying()
    }

    /// Runs `body` as a durable step named `name`, checkpointing its result
    /// as JSON, and returns the result.
    ///
    /// On the first run the body runs (outside the workflow, driven by the
    /// runtime) and its result is checkpointed; on replay the recorded result
    /// is returned and the body never runs again. Either way the value is
    /// decoded from the checkpointed payload, so the first run and replays
    /// see exactly the same value. The body returns `Result<T,
    /// StepFailure>` (`Ok(value)` needs no annotation, and `?` converts any
    /// error); a failed attempt goes to the step's retry strategy, and when
    /// the step fails for good its error comes back as a [`StepError`].
    ///
    /// The name must be 1 to 256 printable ASCII characters; another fails
    /// the execution with `InvalidName` before anything is checkpointed.
    /// Use [`Workflow::step_with`] for another codec, a retry strategy or
    /// an unnamed step.
    pub async fn step<F, Fut, T>(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        body: F,
    ) -> Result<T, StepError>
    where
        F: FnOnce(StepContext) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, StepFailure>> + Send + 'static,
        T: Serialize + DeserializeOwned,
    {
        self.step_with(StepConfig::named(name), body).await
    }

    /// Runs `body` as a durable step configured by `config` (name, codec);
    /// otherwise like [`Workflow::step`].
    pub async fn step_with<C, F, Fut, T>(
        &mut self,
        config: StepConfig<C>,
        body: F,
    ) -> Result<T, StepError>
    where
        C: Codec + Clone,
        F: FnOnce(StepContext) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, StepFailure>> + Send + 'static,
        T: Serialize + DeserializeOwned,
    {
        let StepConfig {
            name,
            codec,
            retry,
            semantics,
        } = config;
        let step_name = name.clone();
        let request = Request::Step {
            name,
            retry,
            semantics,
        };
        let outcome = match self.yielder.yield_(request).await {
            Response::Step(outcome) => outcome,
            Response::Execute(ctx) => {
                let encoder = codec.clone();
                let (arn, op) = (ctx.execution_arn.clone(), ctx.id);
                let run: BoxFuture<_> = Box::pin(async move {
                    let value = body(ctx).await?;
                    let cx = PayloadContext::with_operation_bytes(&arn, op.as_bytes());
                    to_payload(&encoder, &value, &cx)
                        .map(Into::into)
                        .map_err(|e| {
                            StepFailure::permanent(ErrorObject::new(
                                "CodecError",
                                format!("the step result {e}"),
                            ))
                        })
                });
                match self.yielder.yield_(Request::Run(run)).await {
                    Response::Step(outcome) => outcome,
                    _ => return self.protocol_violation().await,
                }
            }
            _ => return self.protocol_violation().await,
        };
        let op = answered_op();
        match outcome {
            Ok(payload) => match from_payload(&codec, payload.as_str(), &self.payload_context(&op))
            {
                Ok(value) => Ok(value),
                Err(error) => self.abort(Fatal::Decode(error)).await,
            },
            Err(error) => Err(StepError::new("step", step_name, error)),
        }
    }

    /// Waits durably for `duration`: the invocation suspends and the service
    /// invokes the function again when the time is up. No compute is billed
    /// meanwhile. `config` is a name (`"cool-off"`) or a [`WaitConfig`].
    ///
    /// The service counts waits in whole seconds: a fraction of a second is
    /// rounded up (1.5 s waits 2 s, as retry delays do), so `deadline - now`
    /// can be passed as it is. A zero duration, or one over 31,622,400 s
    /// (366 days), fails the execution with `InvalidWaitDuration` before
    /// anything is checkpointed.
    pub async fn wait(&mut self, config: impl Into<WaitConfig>, duration: Duration) {
        let WaitConfig { name } = config.into();
        match self.yielder.yield_(Request::Wait { name, duration }).await {
            Response::Continue => {}
            _ => self.protocol_violation().await,
        }
    }

    /// The current time, checkpointed: the first run records the runtime's
    /// clock (the virtual clock on the local runner) in a step named `now`,
    /// every replay returns the recorded value. Use it instead of
    /// `SystemTime::now()`, whose value differs on every replay (see the
    /// README's "Replay-safe code").
    pub async fn now(&mut self) -> Result<SystemTime, StepError> {
        let config = StepConfig::named("now").retry(NoRetry);
        let ms: Millis = self
            .step_with(config, |ctx| async move { Ok(ctx.now) })
            .await?;
        Ok(from_millis(ms))
    }

    /// A random value, checkpointed: drawn once in a step named `random`,
    /// returned unchanged by every replay. Integers are uniform over their
    /// range, `f64` over `[0, 1)`, `[u8; N]` is N random bytes.
    ///
    /// The randomness comes from the runtime (the interpreter reads none):
    /// entropy it draws once per invocation from the operating system
    /// (through the standard library's random hash keys), mixed with the
    /// execution, the step and the attempt. Unpredictable and distinct
    /// across executions, but not for cryptographic secrets: draw those in
    /// a step body from a cryptographic generator.
    pub async fn random<T: RandomValue>(&mut self) -> Result<T, StepError> {
        let config = StepConfig::named("random").retry(NoRetry);
        self.step_with(config, |ctx| async move {
            let mut next = words(ctx.seed);
            Ok(T::from_words(&mut next))
        })
        .await
    }

    /// A random (version 4) UUID, checkpointed in a step named `uuid`, in
    /// its hyphenated lowercase form.
    /// Drawn like [`Workflow::random`].
    pub async fn uuid(&mut self) -> Result<String, StepError> {
        let config = StepConfig::named("uuid").retry(NoRetry);
        self.step_with(config, |ctx| async move {
            let mut next = words(ctx.seed);
            Ok(uuid_v4(&mut next))
        })
        .await
    }

    /// Stops the workflow for good: the interpreter never resumes it again.
    pub(crate) async fn abort<T>(&mut self, fatal: Fatal) -> T {
        loop {
            self.yielder.yield_(Request::Fatal(fatal.clone())).await;
        }
    }

    /// The interpreter answered out of protocol; cannot happen with this
    /// crate's interpreter.
    pub(crate) async fn protocol_violation<T>(&mut self) -> T {
        self.abort(Fatal::Protocol("unexpected response from the interpreter"))
            .await
    }
}

/// A workflow function: `async fn(Workflow, I) -> Result<O, E>`.
///
/// Implemented for every `Fn(Workflow, I) -> Future<Output = Result<O, E>>`
/// that is `Send + Sync + 'static`, with `E: Into<BoxError>`.
pub trait WorkflowFn<I, O>: Send + Sync + 'static {
    /// Starts one run of the workflow.
    fn start(&self, wf: Workflow, input: I) -> BoxFuture<Result<O, ErrorObject>>;
}

impl<F, Fut, I, O, E> WorkflowFn<I, O> for F
where
    F: Fn(Workflow, I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, E>> + Send + 'static,
    E: Into<BoxError>,
{
    fn start(&self, wf: Workflow, input: I) -> BoxFuture<Result<O, ErrorObject>> {
        let fut = self(wf, input);
        Box::pin(async move { fut.await.map_err(error_object_from) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("charging failed")
        }
    }
    impl StdError for Outer {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn error_objects_carry_type_and_source_chain() {
        let e = error_object_from(Outer(std::io::Error::other("card declined")));
        assert_eq!(
            e.error_message.as_deref(),
            Some("charging failed: card declined")
        );
        assert_eq!(e.error_type.as_deref(), Some("Outer"));
        let e = error_object_from("plain");
        assert_eq!(e.error_type.as_deref(), Some("Error"));
        assert_eq!(e.error_message.as_deref(), Some("plain"));
    }

    #[test]
    fn type_names_lose_their_module_paths() {
        assert_eq!(error_type_name::<std::io::Error>(), "Error");
        assert_eq!(error_type_name::<Outer>(), "Outer");
        assert_eq!(
            short_type_name("my::Wrapper<other::Inner, std::vec::Vec<u8>>"),
            "Wrapper<Inner, Vec<u8>>"
        );
        assert_eq!(
            short_type_name("alloc::boxed::Box<dyn core::error::Error + core::marker::Send>"),
            "Box<dyn Error + Send>"
        );
        assert_eq!(short_type_name("&str"), "&str");
        assert_eq!(
            short_type_name("tests::a_test::{{closure}}::OutOfStock"),
            "OutOfStock"
        );
        assert_eq!(short_type_name("(a::B, [c::D; 2])"), "(B, [D; 2])");
    }

    #[test]
    fn any_error_converts_into_a_step_failure() {
        let parse: Result<u32, StepFailure> = "x".parse::<u32>().map_err(Into::into);
        let failure = parse.unwrap_err();
        assert_eq!(
            failure.error_object().error_type.as_deref(),
            Some("ParseIntError")
        );
        assert!(failure.is_retryable());
        assert!(
            failure
                .source_error()
                .is_some_and(|e| e.downcast_ref::<std::num::ParseIntError>().is_some())
        );
        let step = StepError::new("step", Some("a".into()), ErrorObject::new("Declined", "no"));
        let failure = StepFailure::from(step);
        assert_eq!(failure.error_object(), &ErrorObject::new("Declined", "no"));
        let named = StepFailure::from(Outer(std::io::Error::other("x"))).with_type("Charge");
        assert_eq!(named.error_object().error_type.as_deref(), Some("Charge"));
        assert_eq!(
            named.error_object().error_message.as_deref(),
            Some("charging failed: x")
        );
    }

    #[test]
    fn uuids_are_version_4() {
        let mut next = words(7);
        let a = uuid_v4(&mut next);
        let b = uuid_v4(&mut next);
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
    }

    #[test]
    fn step_errors_pass_through_unchanged() {
        let inner = ErrorObject::new("Declined", "no funds");
        let step = StepError::new("step", Some("charge".into()), inner.clone());
        assert_eq!(
            step.to_string(),
            "step \"charge\" failed: Declined: no funds"
        );
        assert_eq!(error_object_from(step), inner);
    }
}

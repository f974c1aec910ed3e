//! The errors of durable operations: what a failed step attempt records
//! ([`StepFailure`]), what workflow code gets back ([`StepError`],
//! [`CallbackError`], [`InvokeError`]) and how any error value becomes a
//! recorded `ErrorObject` (its `ErrorType`, message and data).

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;

use durable_yield_codecs::{
    Codec, CodecError, Json, PayloadContext, PayloadKind, from_payload, to_payload,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::model::ErrorObject;
use crate::step_context::StepContext;

/// A boxed error, the common currency of workflow and step errors.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// How an invoked function ended without a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InvokeEnding {
    /// It failed (its error type, message and data are the error's).
    Failed,
    /// It did not finish in time (`ChainedInvoke.Timeout`).
    TimedOut,
    /// It was stopped.
    Stopped,
    /// No function has that name (`ResourceNotFoundException`).
    FunctionNotFound,
    /// Its result does not decode into the expected type.
    Undecodable,
}

/// An invoked function that ended without a result. The same on the first
/// run and on every replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvokeError {
    function: String,
    ending: InvokeEnding,
    error: ErrorObject,
}

impl InvokeError {
    pub(crate) fn new(function: String, ending: InvokeEnding, error: ErrorObject) -> Self {
        InvokeError {
            function,
            ending,
            error,
        }
    }

    /// How it ended.
    pub fn ending(&self) -> InvokeEnding {
        self.ending
    }
    /// The function that was invoked.
    pub fn function_name(&self) -> &str {
        &self.function
    }
    /// The error type (the target's, or the service's).
    pub fn error_type(&self) -> Option<&str> {
        self.error.error_type.as_deref()
    }
    /// The message.
    pub fn message(&self) -> Option<&str> {
        self.error.error_message.as_deref()
    }
    /// The error as recorded.
    pub fn error_object(&self) -> &ErrorObject {
        &self.error
    }
}

impl fmt::Display for InvokeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invoking {:?} ended without a result: {}",
            self.function, self.error
        )
    }
}

impl StdError for InvokeError {}

impl InvokeError {
    /// The error as recorded (what `?` records when it propagates).
    pub(crate) fn recorded(&self) -> &ErrorObject {
        &self.error
    }
}

impl From<InvokeError> for StepError {
    fn from(e: InvokeError) -> Self {
        StepError::new("invoke", Some(Cow::Owned(e.function)), e.error)
    }
}

/// How a callback ended without a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CallbackEnding {
    /// Not answered in time (`Callback.Timeout`).
    TimedOut,
    /// No heartbeat in time (`Callback.Heartbeat`).
    HeartbeatTimedOut,
    /// The sender reported a failure (its error type, message and data
    /// are the error's).
    Failed,
    /// The sender's value does not decode into the expected type.
    Undecodable,
}

/// A callback that ended without a value: timed out, heartbeat timed out,
/// failed by the sender, or answered with something that does not decode.
/// The same on the first run and on every replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackError {
    name: Option<Cow<'static, str>>,
    ending: CallbackEnding,
    error: ErrorObject,
}

/// The `ErrorType` of a callback answer its codec could not decode.
pub(crate) const UNDECODABLE: &str = "CallbackResultUndecodable";

impl CallbackError {
    pub(crate) fn new(name: Option<Cow<'static, str>>, error: ErrorObject) -> Self {
        let ending = match error.error_type.as_deref() {
            Some("Callback.Timeout") => CallbackEnding::TimedOut,
            Some("Callback.Heartbeat") => CallbackEnding::HeartbeatTimedOut,
            Some(UNDECODABLE) => CallbackEnding::Undecodable,
            _ => CallbackEnding::Failed,
        };
        CallbackError {
            name,
            ending,
            error,
        }
    }
    /// How it ended.
    pub fn ending(&self) -> CallbackEnding {
        self.ending
    }
    /// Whether it timed out (in all or on its heartbeat).
    pub fn is_timeout(&self) -> bool {
        matches!(
            self.ending,
            CallbackEnding::TimedOut | CallbackEnding::HeartbeatTimedOut
        )
    }
    /// The callback's name.
    pub fn callback_name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    /// The error type: the sender's, or `Callback.Timeout` /
    /// `Callback.Heartbeat`.
    pub fn error_type(&self) -> Option<&str> {
        self.error.error_type.as_deref()
    }
    /// The message.
    pub fn message(&self) -> Option<&str> {
        self.error.error_message.as_deref()
    }
    /// Decodes the sender's error data as JSON (`Ok(None)` without data).
    pub fn data<D: DeserializeOwned>(&self) -> Result<Option<D>, CodecError> {
        self.error
            .error_data
            .as_deref()
            .map(|d| from_payload(&Json, d, &PayloadContext::DETACHED))
            .transpose()
    }
    /// The error as recorded.
    pub fn error_object(&self) -> &ErrorObject {
        &self.error
    }
}

impl fmt::Display for CallbackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "callback {name:?} ended without a value: {}", self.error),
            None => write!(f, "callback ended without a value: {}", self.error),
        }
    }
}

impl StdError for CallbackError {}

impl CallbackError {
    /// The error as recorded (what `?` records when it propagates).
    pub(crate) fn recorded(&self) -> &ErrorObject {
        &self.error
    }
}

impl From<CallbackError> for StepError {
    fn from(e: CallbackError) -> Self {
        StepError::new("callback", e.name, e.error)
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
    /// What failed: `step`, `child context`, `map`, `parallel`,
    /// `batch item`, or `batch` (a map or parallel operation a custom
    /// completion predicate ended as failed).
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
pub(crate) fn error_data_context(execution_arn: &str) -> PayloadContext<'_> {
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

    pub(crate) fn decode_data<C: Codec, T: DeserializeOwned>(
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
/// * `ErrorType`: the identifier the error type was declared with, without
///   module path or generic arguments (`Error` for `std::io::Error`,
///   `Timeout` for `my_crate::Timeout`, `Wrapper` for `Wrapper<Inner>`;
///   see [`error_type_name`] for how it is found and kept stable). Paths
///   are left out because histories outlive deployments: moving a type to
///   another module must not change what `only_error_types` matches;
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
/// into it), but it converts into a [`BoxError`]: a child context, map
/// item, parallel branch or workflow may return it too, and the recorded
/// error is the failure's own type, message and data. Return an error
/// value directly with `Err(e.into())`, a boxed one with
/// [`StepFailure::from_boxed`].
pub struct StepFailure {
    error: ErrorObject,
    source: Option<BoxError>,
    /// `false` only for failures the SDK makes: a result no retry can fix
    /// (no source), or one whose codec's storage was unreachable for a
    /// while (the `CodecError` as source), which ends the invocation.
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
        let recorded = recorded_form(&*error)
            .unwrap_or_else(|| ErrorObject::new(error_type, message_with_sources(&*error)));
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

    /// The value a step's body made (`what`: its result, a condition's
    /// state) could not be encoded: a permanent failure of the step, or,
    /// when the codec's storage is unreachable for a while
    /// ([`CodecError::is_transient`]), one that records nothing: the
    /// invocation fails and the service retries it
    /// ([`StepFailure::take_unavailable`]).
    pub(crate) fn not_encoded(what: &str, error: CodecError) -> Self {
        let object = ErrorObject::new("CodecError", format!("the {what} {error}"));
        if !error.is_transient() {
            return StepFailure::permanent(object);
        }
        StepFailure {
            error: object,
            source: Some(Box::new(error)),
            retryable: false,
        }
    }

    /// The transient codec error that ends the invocation, if this is one
    /// ([`StepFailure::not_encoded`]: no user-made failure is one).
    pub(crate) fn take_unavailable(&mut self) -> Option<CodecError> {
        if self.retryable {
            return None;
        }
        let transient = self
            .source
            .as_deref()
            .and_then(|s| s.downcast_ref::<CodecError>())
            .is_some_and(CodecError::is_transient);
        if !transient {
            return None;
        }
        let source = self.source.take()?;
        source.downcast::<CodecError>().ok().map(|e| *e)
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

/// A [`StepFailure`] boxed as an error, so that it can end a child
/// context, a map item, a parallel branch or the workflow itself (bodies
/// whose error only has to convert into [`BoxError`]) and keep its
/// `ErrorType`, message and data.
struct BoxedFailure(StepFailure);

impl fmt::Debug for BoxedFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for BoxedFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl StdError for BoxedFailure {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

/// `StepFailure` converts into a boxed error (as `anyhow::Error` does; it
/// cannot implement `std::error::Error` itself without losing `?` from any
/// error): return one from any body, `Err(StepFailure::new(..))?` works
/// the same in a step, a child context, a map item, a branch and the
/// workflow, and the recorded error is the failure's own.
impl From<StepFailure> for BoxError {
    fn from(failure: StepFailure) -> Self {
        Box::new(BoxedFailure(failure))
    }
}

/// The recorded form of a boxed error that carries one: a [`StepError`],
/// a [`StepFailure`], a callback's or a chained invoke's error (so that
/// `?` on them records the original type and message, not a wrapper).
fn recorded_form(error: &(dyn StdError + Send + Sync + 'static)) -> Option<ErrorObject> {
    if let Some(step) = error.downcast_ref::<StepError>() {
        return Some((*step.error).clone());
    }
    if let Some(callback) = error.downcast_ref::<CallbackError>() {
        return Some(callback.recorded().clone());
    }
    if let Some(invoke) = error.downcast_ref::<InvokeError>() {
        return Some(invoke.recorded().clone());
    }
    error
        .downcast_ref::<BoxedFailure>()
        .map(|f| f.0.error.clone())
}

/// The recorded name of an error type: the identifier it was declared
/// with, without module path or generic arguments (`std::io::Error` →
/// `Error`, `my::Wrapper<other::Inner>` → `Wrapper`), as Python records
/// `type(e).__name__` and Java a class's simple name.
///
/// Rust has no stable reflection, so the identifier is read from
/// [`std::any::type_name`], whose full text may change between compiler
/// versions (module paths, generic arguments, closures): everything but
/// the declared identifier is dropped, and this crate's tests pin the
/// result for every kind of type (std and local types, generic, nested in
/// functions) on each compiler CI runs. Where a name must never change
/// (a retry filter, another service reading the history), name the error
/// yourself: [`StepFailure::new`], or [`StepFailure::with_type`] on a
/// converted error.
///
/// ```
/// use durable_yield_interpreter::error_type_name;
/// assert_eq!(error_type_name::<std::num::ParseIntError>(), "ParseIntError");
/// assert_eq!(error_type_name::<Box<std::io::Error>>(), "Box");
/// ```
pub fn error_type_name<E: ?Sized>() -> String {
    type_identifier(std::any::type_name::<E>()).to_owned()
}

/// The declared identifier of a type named `full`: its outermost path
/// without module segments or generic arguments.
pub(crate) fn type_identifier(full: &str) -> &str {
    let outer = full.split('<').next().unwrap_or(full).trim_end();
    match outer.rfind("::") {
        Some(i) => &outer[i + 2..],
        None => outer,
    }
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
    if let Some(recorded) = recorded_form(&*boxed) {
        return recorded;
    }
    let message = message_with_sources(&*boxed);
    // Strings and boxed errors carry no useful type name.
    let error_type = if matches!(type_name.as_str(), "Box" | "&str" | "String" | "Cow") {
        "Error".to_owned()
    } else {
        type_name
    };
    ErrorObject::new(error_type, message)
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
        // Pinned: the recorded names of every kind of type, on the
        // compiler CI runs (see `error_type_name`).
        mod deep {
            #[derive(Debug)]
            pub struct Wrapper<T>(pub T);
        }
        #[derive(Debug)]
        enum Local {}
        assert_eq!(error_type_name::<std::io::Error>(), "Error");
        assert_eq!(
            error_type_name::<std::num::ParseIntError>(),
            "ParseIntError"
        );
        assert_eq!(error_type_name::<Outer>(), "Outer");
        assert_eq!(error_type_name::<Local>(), "Local");
        assert_eq!(
            error_type_name::<deep::Wrapper<std::io::Error>>(),
            "Wrapper"
        );
        assert_eq!(
            error_type_name::<deep::Wrapper<Vec<deep::Wrapper<u8>>>>(),
            "Wrapper"
        );
        assert_eq!(error_type_name::<BoxError>(), "Box");
        assert_eq!(error_type_name::<&str>(), "&str");
        assert_eq!(error_type_name::<String>(), "String");
        assert_eq!(
            type_identifier("tests::a_test::{{closure}}::OutOfStock"),
            "OutOfStock"
        );
        assert_eq!(type_identifier("my::Wrapper<other::Inner>"), "Wrapper");
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

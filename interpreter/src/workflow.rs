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
//!         .step("greet", |_ctx| async move { Ok::<_, std::io::Error>(format!("hello {name}")) })
//!         .await?;
//!     // A durable timer: the invocation ends here and resumes a minute later.
//!     wf.wait("cool-off", Duration::from_secs(60)).await;
//!     // A step with another codec.
//!     let len: u64 = wf
//!         .step_with(StepConfig::named("measure").codec(Bincode), move |_ctx| async move {
//!             Ok::<_, std::io::Error>(greeting.len() as u64)
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
use std::time::Duration;

use durable_yield_codecs::{Codec, CodecError, Json, from_payload, to_payload};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::coroutine::{BoxFuture, Yielder};
use crate::model::{ErrorObject, OperationId};
use crate::protocol::{Fatal, Request, Response};
use crate::retry::RetryStrategy;

/// A boxed error, the common currency of workflow and step errors.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The handle workflow code uses to run durable operations.
pub struct Workflow {
    yielder: Yielder,
}

/// What a step body learns about the attempt it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepContext {
    pub(crate) id: OperationId,
    pub(crate) name: Option<Cow<'static, str>>,
    pub(crate) attempt: u32,
}

impl StepContext {
    /// The step's operation id.
    pub fn operation_id(&self) -> &OperationId {
        &self.id
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
    /// again. START and the outcome share one checkpoint request. The
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

/// A step that failed: the error its body returned, as checkpointed.
///
/// Workflow code gets the same `StepError` on the first run and on every
/// replay, since both are read from the recorded [`ErrorObject`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepError {
    step: Option<Cow<'static, str>>,
    error: ErrorObject,
}

impl StepError {
    /// The name of the step that failed.
    pub fn step_name(&self) -> Option<&str> {
        self.step.as_deref()
    }
    /// The error's type: the Rust type name of the body's error unless the
    /// error was recorded by another SDK.
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
            Some(name) => write!(f, "step {name:?} failed: {}", self.error),
            None => write!(f, "step failed: {}", self.error),
        }
    }
}

impl StdError for StepError {}

impl StepError {
    /// Decodes the error's data (`ErrorData`) as JSON: `Ok(None)` when the
    /// error carries none. See [`StepFailure::with_data`].
    pub fn data<T: DeserializeOwned>(&self) -> Result<Option<T>, CodecError> {
        self.data_with(&Json)
    }

    /// Decodes the error's data with `codec`.
    pub fn data_with<C: Codec, T: DeserializeOwned>(
        &self,
        codec: &C,
    ) -> Result<Option<T>, CodecError> {
        self.error
            .error_data
            .as_deref()
            .map(|data| from_payload(codec, data))
            .transpose()
    }
}

/// An error a step body returns to choose what is recorded: its type, its
/// message and, optionally, data that workflow code can decode from the
/// [`StepError`] (on the first run and on every replay).
///
/// ```
/// use durable_yield_interpreter::StepFailure;
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Declined { code: u16 }
///
/// let failure = StepFailure::new("CardDeclined", "the card was declined")
///     .with_data(&Declined { code: 51 })
///     .unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailure {
    error: ErrorObject,
}

impl StepFailure {
    /// A failure with this `ErrorType` and message.
    pub fn new(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        StepFailure {
            error: ErrorObject::new(error_type, message),
        }
    }

    /// Attaches `data`, encoded as JSON.
    pub fn with_data<T: Serialize + ?Sized>(self, data: &T) -> Result<Self, CodecError> {
        self.with_data_codec(&Json, data)
    }

    /// Attaches `data`, encoded with `codec`.
    pub fn with_data_codec<C: Codec, T: Serialize + ?Sized>(
        mut self,
        codec: &C,
        data: &T,
    ) -> Result<Self, CodecError> {
        self.error.error_data = Some(to_payload(codec, data)?);
        Ok(self)
    }

    /// The error as it will be recorded.
    pub fn error_object(&self) -> &ErrorObject {
        &self.error
    }
}

impl fmt::Display for StepFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl StdError for StepFailure {}

impl From<CodecError> for StepFailure {
    fn from(error: CodecError) -> Self {
        StepFailure::new("CodecError", error.to_string())
    }
}

/// Records an error as an [`ErrorObject`]: `ErrorType` is the Rust type
/// name of `E`, `ErrorMessage` its message followed by its sources. A
/// [`StepError`] passes through unchanged, so `?` on a failed step fails the
/// execution with the step's own error.
pub fn error_object_from<E: Into<BoxError>>(error: E) -> ErrorObject {
    let type_name = std::any::type_name::<E>();
    let boxed: BoxError = error.into();
    if let Some(step) = boxed.downcast_ref::<StepError>() {
        return step.error.clone();
    }
    if let Some(failure) = boxed.downcast_ref::<StepFailure>() {
        return failure.error.clone();
    }
    let mut message = boxed.to_string();
    let mut source = boxed.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    // Strings and boxed errors carry no useful type name.
    let error_type = if type_name.starts_with("alloc::boxed::Box<dyn ")
        || type_name == "&str"
        || type_name == "alloc::string::String"
    {
        "Error"
    } else {
        type_name
    };
    ErrorObject::new(error_type, message)
}

impl Workflow {
    pub(crate) fn new(yielder: Yielder) -> Self {
        Workflow { yielder }
    }

    /// Runs `body` as a durable step named `name`, checkpointing its result
    /// as JSON, and returns the result.
    ///
    /// On the first run the body runs (outside the workflow, driven by the
    /// runtime) and its result is checkpointed; on replay the recorded result
    /// is returned and the body never runs again. Either way the value is
    /// decoded from the checkpointed payload, so the first run and replays
    /// see exactly the same value. An error returned by the body is recorded
    /// and comes back as a [`StepError`].
    ///
    /// Use [`Workflow::step_with`] for another codec or an unnamed step.
    pub async fn step<F, Fut, T, E>(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        body: F,
    ) -> Result<T, StepError>
    where
        F: FnOnce(StepContext) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Serialize + DeserializeOwned,
        E: Into<BoxError>,
    {
        self.step_with(StepConfig::named(name), body).await
    }

    /// Runs `body` as a durable step configured by `config` (name, codec);
    /// otherwise like [`Workflow::step`].
    pub async fn step_with<C, F, Fut, T, E>(
        &mut self,
        config: StepConfig<C>,
        body: F,
    ) -> Result<T, StepError>
    where
        C: Codec + Clone,
        F: FnOnce(StepContext) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Serialize + DeserializeOwned,
        E: Into<BoxError>,
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
                let run: BoxFuture<_> = Box::pin(async move {
                    match body(ctx).await {
                        Ok(value) => to_payload(&encoder, &value).map(Into::into).map_err(|e| {
                            ErrorObject::new("CodecError", format!("the step result {e}"))
                        }),
                        Err(error) => Err(error_object_from(error)),
                    }
                });
                match self.yielder.yield_(Request::Run(run)).await {
                    Response::Step(outcome) => outcome,
                    _ => return self.protocol_violation().await,
                }
            }
            _ => return self.protocol_violation().await,
        };
        match outcome {
            Ok(payload) => match from_payload(&codec, payload.as_str()) {
                Ok(value) => Ok(value),
                Err(error) => self.abort(Fatal::Decode(error)).await,
            },
            Err(error) => Err(StepError {
                step: step_name,
                error,
            }),
        }
    }

    /// Waits durably for `duration`: the invocation suspends and the service
    /// invokes the function again when the time is up. No compute is billed
    /// meanwhile. `config` is a name (`"cool-off"`) or a [`WaitConfig`].
    ///
    /// The duration must be a whole number of seconds from 1 to 31,622,400
    /// (366 days); anything else fails the execution with
    /// `InvalidWaitDuration` before anything is checkpointed.
    pub async fn wait(&mut self, config: impl Into<WaitConfig>, duration: Duration) {
        let WaitConfig { name } = config.into();
        match self.yielder.yield_(Request::Wait { name, duration }).await {
            Response::Continue => {}
            _ => self.protocol_violation().await,
        }
    }

    /// Stops the workflow for good: the interpreter never resumes it again.
    async fn abort<T>(&mut self, fatal: Fatal) -> T {
        loop {
            self.yielder.yield_(Request::Fatal(fatal.clone())).await;
        }
    }

    /// The interpreter answered out of protocol; cannot happen with this
    /// crate's interpreter.
    async fn protocol_violation<T>(&mut self) -> T {
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
        assert!(e.error_type.as_deref().unwrap().ends_with("Outer"));
        let e = error_object_from("plain");
        assert_eq!(e.error_type.as_deref(), Some("Error"));
        assert_eq!(e.error_message.as_deref(), Some("plain"));
    }

    #[test]
    fn step_errors_pass_through_unchanged() {
        let inner = ErrorObject::new("Declined", "no funds");
        let step = StepError {
            step: Some("charge".into()),
            error: inner.clone(),
        };
        assert_eq!(
            step.to_string(),
            "step \"charge\" failed: Declined: no funds"
        );
        assert_eq!(error_object_from(step), inner);
    }
}

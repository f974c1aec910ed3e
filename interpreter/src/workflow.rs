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
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use durable_yield_codecs::{Codec, CodecError, Json, PayloadContext, from_payload};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::coroutine::BoxFuture;
use crate::failure::{BoxError, StepError, StepFailure, error_data_context, error_object_from};
use crate::model::{ErrorObject, Millis, OperationId, Payload};
use crate::protocol::{Fatal, Request, Response, StepOutcome, Workflow};
use crate::retry::{NoRetry, RetryStrategy, mix};
use crate::running::answered_op;
use crate::step_context::{StepContext, StepSemantics, from_millis};

/// Why a workflow stops when the interpreter answers out of protocol.
pub(crate) const UNEXPECTED_RESPONSE: &str = "unexpected response from the interpreter";

/// The future of [`Workflow::abort`]: it never completes.
pub(crate) type Aborting<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

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
    /// Shared, as the request carries it (a thin pointer keeps each
    /// step's future and request small).
    sub_type: Option<Arc<str>>,
}

impl<C: fmt::Debug> fmt::Debug for StepConfig<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepConfig")
            .field("name", &self.name)
            .field("codec", &self.codec)
            .field("custom_retry", &self.retry.is_some())
            .field("semantics", &self.semantics)
            .field("sub_type", &self.sub_type)
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
            sub_type: None,
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
            sub_type: self.sub_type,
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
    /// Records the step with this subtype instead of `Step` (AWS's
    /// `StepConfig.sub_type`): a custom operation built from steps labels
    /// them so, and the history, plugins and spans show it. 1 to 32
    /// characters from `A-Z`, `a-z`, `0-9`, `-` and `_` (anything else
    /// fails the execution with `InvalidConfig` before the step is
    /// checkpointed); empty keeps `Step`. Do not reuse a subtype of the
    /// SDK's own operations ([`crate::subtype`]). Replay checks it like the
    /// name: changing it under executions in flight fails them with
    /// `NonDeterministicExecution`.
    ///
    /// ```
    /// use durable_yield_interpreter::StepConfig;
    /// let config = StepConfig::named("charge").sub_type("Payment");
    /// # let _ = config;
    /// ```
    pub fn sub_type(mut self, sub_type: impl Into<Cow<'static, str>>) -> Self {
        let sub_type = sub_type.into();
        self.sub_type = (!sub_type.is_empty()).then(|| Arc::from(&*sub_type));
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

/// A 128-bit seed from its two halves.
fn seed_of([high, low]: [u64; 2]) -> u128 {
    (u128::from(high) << 64) | u128::from(low)
}

/// A stream of pseudo-random words from a 128-bit `seed`: a counter
/// through a four-round Feistel network whose round function is splitmix64's
/// (a bijection on 128 bits, so every bit of the seed reaches the output:
/// two words are 128 bits of it, a UUID's 122 random bits too).
fn words(seed: u128) -> impl FnMut() -> u64 {
    let mut counter = seed;
    let mut pending: Option<u64> = None;
    move || {
        if let Some(word) = pending.take() {
            return word;
        }
        counter = counter.wrapping_add(1);
        let (high, low) = feistel(counter);
        pending = Some(low);
        high
    }
}

/// A bijection on 128 bits: four Feistel rounds over its halves.
fn feistel(block: u128) -> (u64, u64) {
    let (mut left, mut right) = ((block >> 64) as u64, block as u64);
    for round in 0..4u64 {
        let next = left ^ mix(right ^ round.wrapping_mul(0xd1b5_4a32_d192_ed03));
        left = right;
        right = next;
    }
    (left, right)
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
        crate::running::is_replaying()
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
            sub_type,
        } = config;
        let step_name = name.clone();
        let request = Request::Step {
            name,
            retry,
            semantics,
            sub_type,
        };
        // The first answer is consumed by this statement: kept to the
        // `match` below, it (and the step context it carries) would be
        // part of this future's state across the second yield.
        let run = match self.yielder.yield_(request).await {
            Response::Step(outcome) => Err(outcome),
            Response::Execute(ctx) => Ok(step_body(body, *ctx, codec.clone())),
            _ => return self.protocol_violation().await,
        };
        let outcome = match run {
            Err(outcome) => outcome,
            Ok(run) => match self.yielder.yield_(Request::Run(run)).await {
                Response::Step(outcome) => outcome,
                _ => return self.protocol_violation().await,
            },
        };
        // Decoded by this statement, so that only the boxed abort is held
        // across the (fatal) await below.
        let decoded = match outcome {
            Ok(payload) => self.decode(&codec, &payload).map(Ok),
            Err(error) => Ok(Err(StepError::new("step", step_name, *error))),
        };
        match decoded {
            Ok(result) => result,
            Err(fatal) => self.abort(fatal).await,
        }
    }

    /// A recorded value of the operation just answered, decoded with
    /// `codec` (or why it cannot be: the workflow must stop).
    pub(crate) fn decode<C: Codec, T: DeserializeOwned>(
        &self,
        codec: &C,
        payload: &Payload,
    ) -> Result<T, Fatal> {
        let op = answered_op();
        from_payload(codec, payload.as_str(), &self.payload_context(&op)).map_err(Fatal::Codec)
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
    /// 128 bits it draws once per invocation from the operating system
    /// (`getrandom`), mixed with the execution, the step and the attempt. Unpredictable and distinct
    /// across executions, but not for cryptographic secrets: draw those in
    /// a step body from a cryptographic generator.
    pub async fn random<T: RandomValue>(&mut self) -> Result<T, StepError> {
        let config = StepConfig::named("random").retry(NoRetry);
        self.step_with(config, |ctx| async move {
            let mut next = words(seed_of(ctx.seed));
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
            let mut next = words(seed_of(ctx.seed));
            Ok(uuid_v4(&mut next))
        })
        .await
    }

    /// Stops the workflow for good: the interpreter never resumes it again.
    ///
    /// Boxed: every operation's future can end here, and an `async fn`
    /// awaited inline would add its state (the fatal error, the request) to
    /// each of them, a step's future 920 bytes instead of 424, on the path
    /// that runs at most once per execution.
    pub(crate) fn abort<T>(&mut self, fatal: Fatal) -> Aborting<'_, T> {
        Box::pin(async move {
            loop {
                self.yielder
                    .yield_(Request::Fatal(Box::new(fatal.clone())))
                    .await;
            }
        })
    }

    /// The interpreter answered out of protocol; cannot happen with this
    /// crate's interpreter.
    pub(crate) fn protocol_violation<T>(&mut self) -> Aborting<'_, T> {
        self.abort(Fatal::Protocol(UNEXPECTED_RESPONSE))
    }
}

/// The future a step's body runs in: the body, then its value encoded
/// for the checkpoint. Built outside [`Workflow::step_with`]'s `async`
/// body, so that the step context is not part of that future's state.
fn step_body<C, F, Fut, T>(body: F, ctx: StepContext, encoder: C) -> BoxFuture<StepOutcome>
where
    C: Codec,
    F: FnOnce(StepContext) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, StepFailure>> + Send + 'static,
    T: Serialize,
{
    let (arn, op) = (ctx.execution_arn.clone(), ctx.id);
    Box::pin(async move {
        let value = body(ctx).await?;
        let cx = PayloadContext::with_operation_bytes(&arn, op.as_bytes());
        Payload::encode(&encoder, &value, &cx)
            .map_err(|e| StepFailure::not_encoded("step result", e))
    })
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

impl StepError {
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
}

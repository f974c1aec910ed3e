//! The configurations and handles of the operations that wait on the
//! world outside the workflow: callbacks, wait-for-callback, invokes and
//! conditions.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use durable_yield_codecs::{Codec, Json};

use crate::model::OperationId;
use crate::retry::{ExponentialBackoff, RetryStrategy};

/// What a wait-for-condition check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition<S> {
    /// The condition holds: the wait ends with this state.
    Met(S),
    /// Not yet: check again, after the wait strategy's delay, with this
    /// state.
    NotMet(S),
}

/// How to run a wait-for-condition: its name, the codec of its state, and
/// the wait strategy, for [`Workflow::wait_for_condition_with`](crate::Workflow::wait_for_condition_with).
///
/// The strategy is a [`RetryStrategy`]: after check `k` (from 1) found the
/// condition not met, it gives the delay before check `k + 1`, or `None`
/// to give up (the wait then fails with `WaitForConditionExhausted`). The
/// default is AWS's other SDKs' default: 60 checks, 5 s at first, then 1.5
/// times longer each time up to 300 s, full jitter.
#[derive(Clone)]
pub struct ConditionConfig<C = Json> {
    pub(super) name: Option<Cow<'static, str>>,
    pub(super) codec: C,
    pub(super) strategy: Arc<dyn RetryStrategy>,
}

impl<C: fmt::Debug> fmt::Debug for ConditionConfig<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConditionConfig")
            .field("name", &self.name)
            .field("codec", &self.codec)
            .finish_non_exhaustive()
    }
}

/// The default wait strategy of a wait-for-condition.
pub fn default_condition_strategy() -> ExponentialBackoff {
    ExponentialBackoff::new()
        .max_attempts(60)
        .initial_delay(Duration::from_secs(5))
        .max_delay(Duration::from_secs(300))
        .backoff_rate(1.5)
}

impl ConditionConfig<Json> {
    /// An unnamed wait-for-condition (its STEP records no `Name`) with
    /// the JSON codec and the default strategy.
    pub fn new() -> Self {
        ConditionConfig {
            name: None,
            codec: Json,
            strategy: Arc::new(default_condition_strategy()),
        }
    }
    /// A named wait-for-condition with the JSON codec and the default
    /// strategy.
    pub fn named(name: impl Into<Cow<'static, str>>) -> Self {
        ConditionConfig::new().name(name)
    }
}

impl Default for ConditionConfig<Json> {
    fn default() -> Self {
        ConditionConfig::new()
    }
}

impl<C> ConditionConfig<C> {
    /// Names the operation.
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// Picks the codec the state is checkpointed with.
    pub fn codec<C2: Codec + Clone>(self, codec: C2) -> ConditionConfig<C2> {
        ConditionConfig {
            name: self.name,
            codec,
            strategy: self.strategy,
        }
    }
    /// Picks the wait strategy (see the type's docs).
    pub fn strategy(mut self, strategy: impl RetryStrategy) -> Self {
        self.strategy = Arc::new(strategy);
        self
    }
}

/// How to create a callback: its name, its time-outs and the codec of its
/// result, for [`Workflow::create_callback`](crate::Workflow::create_callback). `&'static str` and `String`
/// convert into a named callback without time-outs.
#[derive(Debug, Clone)]
pub struct CallbackConfig<C = Json> {
    pub(super) name: Option<Cow<'static, str>>,
    pub(super) timeout: Duration,
    pub(super) heartbeat_timeout: Duration,
    pub(super) codec: C,
}

impl CallbackConfig<Json> {
    /// An unnamed callback (its CALLBACK records no `Name`) without
    /// time-outs, its result read as JSON.
    pub fn new() -> Self {
        CallbackConfig {
            name: None,
            timeout: Duration::ZERO,
            heartbeat_timeout: Duration::ZERO,
            codec: Json,
        }
    }
    /// A named callback without time-outs, its result read as JSON.
    pub fn named(name: impl Into<Cow<'static, str>>) -> Self {
        CallbackConfig::new().name(name)
    }
}

impl Default for CallbackConfig<Json> {
    fn default() -> Self {
        CallbackConfig::new()
    }
}

impl From<&'static str> for CallbackConfig<Json> {
    fn from(name: &'static str) -> Self {
        CallbackConfig::named(name)
    }
}

impl From<String> for CallbackConfig<Json> {
    fn from(name: String) -> Self {
        CallbackConfig::named(name)
    }
}

impl<C> CallbackConfig<C> {
    /// Names the operation.
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// Fails the callback (`Callback.Timeout`) if it is not answered
    /// within `timeout` (whole seconds, rounded up; zero: never; at most
    /// 99,999,999 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// Fails the callback (`Callback.Heartbeat`) if no heartbeat (or
    /// answer) comes within `timeout` of the last one.
    pub fn heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.heartbeat_timeout = timeout;
        self
    }
    /// Picks the codec the result is read with. The sender must then send
    /// what that codec writes (for bincode and MessagePack, the tagged
    /// text, `bincode:<base64>`).
    pub fn codec<C2: Codec + Clone>(self, codec: C2) -> CallbackConfig<C2> {
        CallbackConfig {
            name: self.name,
            timeout: self.timeout,
            heartbeat_timeout: self.heartbeat_timeout,
            codec,
        }
    }
}

/// A callback created by [`Workflow::create_callback`](crate::Workflow::create_callback): its id, for
/// whoever must answer, and what [`Workflow::callback_result`](crate::Workflow::callback_result) reads.
#[derive(Debug, Clone)]
pub struct Callback<T, C = Json> {
    pub(super) op: OperationId,
    pub(super) id: String,
    pub(super) name: Option<Cow<'static, str>>,
    pub(super) codec: C,
    pub(super) value: PhantomData<fn() -> T>,
}

impl<T, C> Callback<T, C> {
    /// The callback id, which `SendDurableExecutionCallbackSuccess`,
    /// `...Failure` and `...Heartbeat` (or the local runner's
    /// `send_callback_*`) take. The same on every replay.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The callback's name.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    /// The callback's operation id. Its answer is decoded for this
    /// operation of the execution (`PayloadContext::new(execution_arn,
    /// operation_id)`): a sender that seals its answer with an encrypting
    /// codec seals it for them.
    pub fn operation_id(&self) -> &OperationId {
        &self.op
    }
}

/// How to run a wait-for-callback: the callback's name, time-outs and
/// codec (the codec also checkpoints the value), and the submitter's retry
/// strategy, for [`Workflow::wait_for_callback_with`](crate::Workflow::wait_for_callback_with).
#[derive(Clone)]
pub struct WaitForCallbackConfig<C = Json> {
    pub(super) callback: CallbackConfig<C>,
    pub(super) retry: Option<Arc<dyn RetryStrategy>>,
}

impl<C: fmt::Debug> fmt::Debug for WaitForCallbackConfig<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitForCallbackConfig")
            .field("callback", &self.callback)
            .field("custom_retry", &self.retry.is_some())
            .finish()
    }
}

impl WaitForCallbackConfig<Json> {
    /// An unnamed wait-for-callback (no time-outs, JSON, the default retry
    /// strategy for the submitter): its CONTEXT records no `Name`, its
    /// callback is named `create callback id` and its step `submitter`, as
    /// AWS's SDKs name them.
    pub fn new() -> Self {
        WaitForCallbackConfig {
            callback: CallbackConfig::new(),
            retry: None,
        }
    }
    /// A named wait-for-callback: no time-outs, JSON, the default retry
    /// strategy for the submitter.
    pub fn named(name: impl Into<Cow<'static, str>>) -> Self {
        WaitForCallbackConfig::new().name(name)
    }
}

impl Default for WaitForCallbackConfig<Json> {
    fn default() -> Self {
        WaitForCallbackConfig::new()
    }
}

impl<C> WaitForCallbackConfig<C> {
    /// Names the operation (and so its callback and submitter step).
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.callback = self.callback.name(name);
        self
    }
    /// The callback's time-out (see [`CallbackConfig::timeout`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.callback = self.callback.timeout(timeout);
        self
    }
    /// The callback's heartbeat time-out.
    pub fn heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.callback = self.callback.heartbeat_timeout(timeout);
        self
    }
    /// The codec the answer is read and the value checkpointed with.
    pub fn codec<C2: Codec + Clone>(self, codec: C2) -> WaitForCallbackConfig<C2> {
        WaitForCallbackConfig {
            callback: self.callback.codec(codec),
            retry: self.retry,
        }
    }
    /// The submitter step's retry strategy.
    pub fn submitter_retry(mut self, strategy: impl RetryStrategy) -> Self {
        self.retry = Some(Arc::new(strategy));
        self
    }
}

/// How to invoke another function: the operation's name, its tenant and
/// the codecs of its input and result, for [`Workflow::invoke_with`](crate::Workflow::invoke_with).
/// The defaults: unnamed (the CHAINED_INVOKE records no `Name`, as AWS's
/// SDKs record it), no tenant, JSON both ways (what AWS's other SDKs and
/// plain functions read and write).
#[derive(Debug, Clone)]
pub struct InvokeConfig<P = Json, R = Json> {
    pub(super) name: Option<Cow<'static, str>>,
    pub(super) tenant_id: Option<String>,
    pub(super) payload_codec: P,
    pub(super) result_codec: R,
}

impl InvokeConfig {
    /// A named invoke with the defaults.
    pub fn named(name: impl Into<Cow<'static, str>>) -> Self {
        InvokeConfig {
            name: Some(name.into()),
            ..InvokeConfig::new()
        }
    }
    /// An unnamed invoke with the defaults. (Versions before 0.2 named
    /// an unnamed invoke after its function; such records still replay.)
    pub fn new() -> Self {
        InvokeConfig {
            name: None,
            tenant_id: None,
            payload_codec: Json,
            result_codec: Json,
        }
    }
}

impl Default for InvokeConfig {
    fn default() -> Self {
        InvokeConfig::new()
    }
}

impl<P, R> InvokeConfig<P, R> {
    /// Names the operation.
    pub fn name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// Invokes the function for this tenant (1 to 256 characters).
    pub fn tenant_id(mut self, tenant: impl Into<String>) -> Self {
        self.tenant_id = Some(tenant.into());
        self
    }
    /// Picks the codec the input is sent with.
    pub fn payload_codec<P2: Codec>(self, codec: P2) -> InvokeConfig<P2, R> {
        InvokeConfig {
            name: self.name,
            tenant_id: self.tenant_id,
            payload_codec: codec,
            result_codec: self.result_codec,
        }
    }
    /// Picks the codec the result is read with.
    pub fn result_codec<R2: Codec>(self, codec: R2) -> InvokeConfig<P, R2> {
        InvokeConfig {
            name: self.name,
            tenant_id: self.tenant_id,
            payload_codec: self.payload_codec,
            result_codec: codec,
        }
    }
}

//! Operations that wait on the world outside the workflow: callbacks that
//! another system or a person completes, and conditions polled until they
//! hold.
//!
//! ```
//! use std::time::Duration;
//! use durable_yield_interpreter::{
//!     CallbackConfig, Condition, ConditionConfig, StepError, Workflow,
//!     retry::FixedDelay,
//! };
//!
//! async fn approve(mut wf: Workflow, order: u64) -> Result<String, StepError> {
//!     // A callback: its id goes to whoever must answer (here, in an email).
//!     let approval = wf
//!         .create_callback::<String>(CallbackConfig::named("approval").timeout(Duration::from_secs(86_400)))
//!         .await;
//!     let id = approval.id().to_owned();
//!     let _: () = wf.step("email", move |_| async move {
//!         // send an email with a link that completes callback `id`
//!         let _ = id;
//!         Ok(())
//!     }).await?;
//!     // Suspends until the callback is answered (or times out).
//!     let verdict = wf.callback_result(&approval).await?;
//!
//!     // Polls a shipment every minute until it is delivered, 30 times at most.
//!     let config = ConditionConfig::named("delivered")
//!         .strategy(FixedDelay::new(Duration::from_secs(60), 30));
//!     let checks = wf
//!         .wait_for_condition_with(config, 0u32, |_ctx, checks| async move {
//!             let delivered = checks >= 2; // ask the carrier here
//!             Ok(if delivered { Condition::Met(checks + 1) } else { Condition::NotMet(checks + 1) })
//!         })
//!         .await?;
//!     Ok(format!("order {order}: {verdict}, delivered after {checks} checks"))
//! }
//! ```

use std::any::TypeId;
use std::borrow::Cow;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::time::Duration;

use durable_yield_codecs::{Codec, CodecError, Json, PayloadContext, from_payload, to_payload};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::coroutine::BoxFuture;
use crate::failure::{CallbackError, InvokeEnding, InvokeError};
use crate::failure::{StepError, StepFailure};
use crate::model::{ErrorObject, OperationStatus, Payload};
use crate::protocol::{CheckRequest, Fatal, InvokeRequest, Request, Response, Workflow};
use crate::running::answered_op;
use crate::step_context::StepContext;

mod config;
pub use config::{
    Callback, CallbackConfig, Condition, ConditionConfig, InvokeConfig, WaitForCallbackConfig,
    default_condition_strategy,
};

use crate::failure::UNDECODABLE;

/// Reads a callback's result: with JSON, a body that is not JSON is read as
/// a string (a plain-text answer), and an empty body as `null`.
fn decode_callback<T: DeserializeOwned, C: Codec>(
    codec: &C,
    raw: &str,
    cx: &PayloadContext<'_>,
) -> Result<T, CodecError> {
    let text = if raw.is_empty() { "null" } else { raw };
    match from_payload(codec, text, cx) {
        Ok(value) => Ok(value),
        Err(error) if TypeId::of::<C>() == TypeId::of::<Json>() => {
            serde_json::from_value(serde_json::Value::String(raw.to_owned())).map_err(|_| error)
        }
        Err(error) => Err(error),
    }
}

/// Whole seconds, rounded up (zero stays zero: no time-out); saturated
/// past what the service takes, so that the interpreter rejects it.
fn seconds(d: Duration) -> u32 {
    let s = d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0));
    u32::try_from(s).unwrap_or(u32::MAX)
}

impl Workflow {
    /// Creates a callback (see [`CallbackConfig`]): the service issues its
    /// id at once, and [`Workflow::callback_result`] waits for its answer.
    /// Several callbacks may be created before any is awaited, and awaited
    /// in any order.
    ///
    /// Time-outs over 99,999,999 s fail the execution with `InvalidConfig`
    /// before anything is checkpointed.
    pub async fn create_callback<T>(&mut self, config: impl Into<CallbackConfig>) -> Callback<T> {
        self.create_callback_with(config.into()).await
    }

    /// [`Workflow::create_callback`] with another codec for the result.
    pub async fn create_callback_with<T, C: Codec + Clone>(
        &mut self,
        config: CallbackConfig<C>,
    ) -> Callback<T, C> {
        let CallbackConfig {
            name,
            timeout,
            heartbeat_timeout,
            codec,
        } = config;
        let request = Request::Callback {
            name: name.clone(),
            timeout_seconds: seconds(timeout),
            heartbeat_timeout_seconds: seconds(heartbeat_timeout),
        };
        match self.yielder.yield_(request).await {
            Response::Callback(created) => {
                let (op, id) = *created;
                Callback {
                    op,
                    id,
                    name,
                    codec,
                    value: PhantomData,
                }
            }
            _ => self.protocol_violation().await,
        }
    }

    /// The answer to `callback`: suspends the execution (no compute runs)
    /// until the callback succeeds, fails or times out. A success is
    /// decoded with the callback's codec; see [`CallbackError`] for the
    /// rest.
    ///
    /// With JSON (the default), the body another system sent is read as
    /// JSON, and when it is not JSON (a plain-text answer such as `ok`)
    /// as a string, for a `String` (or any type a JSON string decodes
    /// into); an empty body reads as `null`. With bincode or MessagePack
    /// the sender must send that codec's tagged text.
    pub async fn callback_result<T: DeserializeOwned, C: Codec>(
        &mut self,
        callback: &Callback<T, C>,
    ) -> Result<T, CallbackError> {
        let request = Request::CallbackResult {
            op: Box::new(callback.op),
        };
        match self.yielder.yield_(request).await {
            Response::Step(Ok(raw)) => {
                let op = Some(callback.op);
                let cx = self.payload_context(&op);
                match decode_callback(&callback.codec, raw.as_str(), &cx) {
                    Ok(value) => Ok(value),
                    // The answer stays recorded: the next invocation reads
                    // it again.
                    Err(error) if error.is_transient() => {
                        let of = Box::new((callback.op, error));
                        self.abort(Fatal::CodecOf(of)).await
                    }
                    Err(e) => Err(CallbackError::new(
                        callback.name.clone(),
                        ErrorObject::new(UNDECODABLE, format!("the callback's answer {e}")),
                    )),
                }
            }
            Response::Step(Err(error)) => Err(CallbackError::new(callback.name.clone(), *error)),
            _ => self.protocol_violation().await,
        }
    }

    /// Creates a callback, hands its id to `submitter` (a step, retried by
    /// its own strategy), and waits for the answer, all as one child
    /// context (SubType `WaitForCallback`) named `name` holding the callback
    /// `"<name> create callback id"` and the step `"<name> submitter"`, as
    /// AWS's other SDKs record it. Once answered, replays return the
    /// checkpointed value without reading the callback again.
    ///
    /// `submitter` is called as `submitter(ctx, callback_id)`: like every
    /// closure the SDK calls, its context comes first and its data after
    /// (a step body takes `ctx`, a condition check `(ctx, state)`, a map
    /// body `(wf, item, index)`).
    ///
    /// The error is the submitter's (its step failed for good) or the
    /// callback's (`Callback.Timeout`, `Callback.Heartbeat`, or the
    /// sender's error type).
    pub async fn wait_for_callback<T, F, Fut>(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        submitter: F,
    ) -> Result<T, StepError>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce(StepContext, String) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), StepFailure>> + Send + 'static,
    {
        self.wait_for_callback_with(WaitForCallbackConfig::named(name), submitter)
            .await
    }

    /// [`Workflow::wait_for_callback`] configured by `config`.
    pub async fn wait_for_callback_with<T, C, F, Fut>(
        &mut self,
        config: WaitForCallbackConfig<C>,
        submitter: F,
    ) -> Result<T, StepError>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        C: Codec + Clone,
        F: FnOnce(StepContext, String) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), StepFailure>> + Send + 'static,
    {
        let WaitForCallbackConfig { callback, retry } = config;
        let name = callback.name.clone();
        let label = |what: &str| -> Cow<'static, str> {
            match &name {
                Some(n) => Cow::Owned(format!("{n} {what}")),
                None => Cow::Owned(what.to_owned()),
            }
        };
        let callback_name = label("create callback id");
        let submitter_name = label("submitter");
        let codec = callback.codec.clone();
        let body = move |mut wf: Workflow| async move {
            let config = CallbackConfig {
                name: Some(callback_name),
                ..callback
            };
            let cb = wf.create_callback_with::<T, C>(config).await;
            let id = cb.id().to_owned();
            let mut step = crate::workflow::StepConfig::named(submitter_name);
            if let Some(retry) = retry {
                step = step.retry_arc(retry);
            }
            let () = wf.step_with(step, move |ctx| submitter(ctx, id)).await?;
            let value = wf.callback_result(&cb).await.map_err(StepError::from)?;
            Ok::<T, StepError>(value)
        };
        let mut config = crate::batch::ChildConfig::new().codec(codec);
        if let Some(name) = name {
            config = config.name(name);
        }
        self.run_child(config, true, body).await
    }

    /// Invokes the function `function_name` (a name, a qualified name or an
    /// ARN) with `input`, as a chained invoke: the service runs it (a
    /// durable function as its own execution) while this execution is
    /// suspended, and resumes it with the result. Replays never invoke
    /// again: they return the recorded result. The input and the result are
    /// JSON (see [`InvokeConfig`] for other codecs and a tenant).
    pub async fn invoke<I, O>(
        &mut self,
        function_name: impl Into<String>,
        input: &I,
    ) -> Result<O, InvokeError>
    where
        I: Serialize + ?Sized,
        O: DeserializeOwned,
    {
        self.invoke_with(InvokeConfig::new(), function_name, input)
            .await
    }

    /// [`Workflow::invoke`] configured by `config`. An input that cannot be
    /// encoded, is over 1 MiB, or an empty function name fails the execution
    /// with `InvalidConfig` before anything is sent.
    pub async fn invoke_with<I, O, P, R>(
        &mut self,
        config: InvokeConfig<P, R>,
        function_name: impl Into<String>,
        input: &I,
    ) -> Result<O, InvokeError>
    where
        I: Serialize + ?Sized,
        O: DeserializeOwned,
        P: Codec,
        R: Codec,
    {
        let function: String = function_name.into();
        let InvokeConfig {
            name,
            tenant_id,
            payload_codec,
            result_codec,
        } = config;
        // The input and the result cross executions: bound to neither.
        let cx = PayloadContext::DETACHED;
        let payload = Payload::encode(&payload_codec, input, &cx);
        let request = Request::Invoke(Box::new(InvokeRequest {
            name,
            function_name: function.clone(),
            tenant_id,
            payload,
        }));
        let outcome = match self.yielder.yield_(request).await {
            Response::Invoked(outcome) => outcome,
            _ => return self.protocol_violation().await,
        };
        let error = |ending, error| InvokeError::new(function.clone(), ending, error);
        match outcome {
            Ok(payload) => match from_payload(&result_codec, payload.as_str(), &cx) {
                Ok(value) => Ok(value),
                // The result stays recorded: the next invocation reads it
                // again.
                Err(e) if e.is_transient() => self.abort(Fatal::Codec(e)).await,
                Err(e) => Err(error(
                    InvokeEnding::Undecodable,
                    ErrorObject::new("InvokeResultUndecodable", format!("the result {e}")),
                )),
            },
            Err(ended) => {
                let (status, e) = *ended;
                let ending = match (status, e.error_type.as_deref()) {
                    (OperationStatus::TimedOut, _) | (_, Some("ChainedInvoke.Timeout")) => {
                        InvokeEnding::TimedOut
                    }
                    (OperationStatus::Stopped, _) => InvokeEnding::Stopped,
                    (_, Some("ResourceNotFoundException")) => InvokeEnding::FunctionNotFound,
                    _ => InvokeEnding::Failed,
                };
                Err(error(ending, e))
            }
        }
    }

    /// Polls a condition until it holds: runs `check` on the current state
    /// as a step (SubType `WaitForCondition`), and while it returns
    /// [`Condition::NotMet`], suspends for the default wait strategy's
    /// delay (see [`ConditionConfig`]) and checks again with the new state.
    /// Returns the state the check that met the condition returned.
    /// `check` is called as `check(ctx, state)`: context first, data after,
    /// as every closure the SDK calls.
    ///
    /// A check that returns an error fails the wait at once (the strategy
    /// is for unmet conditions); so does running out of checks
    /// (`WaitForConditionExhausted`). Both come back as a [`StepError`].
    pub async fn wait_for_condition<S, F, Fut>(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        initial: S,
        check: F,
    ) -> Result<S, StepError>
    where
        S: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce(StepContext, S) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Condition<S>, StepFailure>> + Send + 'static,
    {
        self.wait_for_condition_with(ConditionConfig::named(name), initial, check)
            .await
    }

    /// [`Workflow::wait_for_condition`] configured by `config`: name,
    /// codec, wait strategy.
    pub async fn wait_for_condition_with<C, S, F, Fut>(
        &mut self,
        config: ConditionConfig<C>,
        initial: S,
        check: F,
    ) -> Result<S, StepError>
    where
        C: Codec + Clone,
        S: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce(StepContext, S) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Condition<S>, StepFailure>> + Send + 'static,
    {
        let ConditionConfig {
            name,
            codec,
            strategy,
        } = config;
        let request = Request::Condition {
            name: name.clone(),
            strategy,
        };
        let outcome = match self.yielder.yield_(request).await {
            Response::Step(outcome) => outcome,
            Response::Check(check_request) => {
                let CheckRequest {
                    context,
                    state,
                    done,
                } = *check_request;
                // The state the last check left, or the initial one (encoded
                // and decoded, so that every check sees a decoded state).
                let (arn, op) = (context.execution_arn.clone(), context.id);
                let cx = PayloadContext::with_operation_bytes(&arn, op.as_bytes());
                let state: S = match state {
                    Some(p) => match from_payload(&codec, p.as_str(), &cx) {
                        Ok(state) => state,
                        Err(error) => return self.abort(Fatal::Codec(error)).await,
                    },
                    None => {
                        let round_trip = to_payload(&codec, &initial, &cx)
                            .and_then(|p| from_payload(&codec, &p, &cx));
                        match round_trip {
                            Ok(state) => state,
                            Err(error) => return self.abort(Fatal::Codec(error)).await,
                        }
                    }
                };
                let encoder = codec.clone();
                let run: BoxFuture<_> = Box::pin(async move {
                    let (met, state) = match check(context, state).await? {
                        Condition::Met(s) => (true, s),
                        Condition::NotMet(s) => (false, s),
                    };
                    let cx = PayloadContext::with_operation_bytes(&arn, op.as_bytes());
                    let payload = Payload::encode(&encoder, &state, &cx)
                        .map_err(|e| StepFailure::not_encoded("condition state", e))?;
                    done.store(met, Ordering::Release);
                    Ok(payload)
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
                Ok(state) => Ok(state),
                Err(error) => self.abort(Fatal::Codec(error)).await,
            },
            Err(error) => Err(StepError::new("wait for condition", name, *error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::CallbackEnding;

    const CX: PayloadContext<'static> = PayloadContext::DETACHED;

    #[test]
    fn callback_answers_decode_as_json_or_plain_text() {
        assert_eq!(
            decode_callback::<String, _>(&Json, "\"ok\"", &CX).unwrap(),
            "ok"
        );
        assert_eq!(
            decode_callback::<String, _>(&Json, "ok", &CX).unwrap(),
            "ok"
        );
        assert_eq!(decode_callback::<u32, _>(&Json, "7", &CX).unwrap(), 7);
        assert!(decode_callback::<u32, _>(&Json, "seven", &CX).is_err());
        assert_eq!(
            decode_callback::<Option<u32>, _>(&Json, "", &CX).unwrap(),
            None
        );
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Approval {
            ok: bool,
        }
        assert_eq!(
            decode_callback::<Approval, _>(&Json, r#"{"ok":true}"#, &CX).unwrap(),
            Approval { ok: true }
        );
        assert_eq!(seconds(Duration::from_millis(1500)), 2);
        assert_eq!(seconds(Duration::ZERO), 0);
    }

    #[test]
    fn callback_errors_say_how_the_callback_ended() {
        let e = CallbackError::new(
            Some("approval".into()),
            ErrorObject::new("Callback.Heartbeat", "Callback timed out on heartbeat"),
        );
        assert_eq!(e.ending(), CallbackEnding::HeartbeatTimedOut);
        assert!(e.is_timeout());
        let e = CallbackError::new(None, ErrorObject::new("Rejected", "no"));
        assert_eq!(e.ending(), CallbackEnding::Failed);
        assert_eq!(e.error_type(), Some("Rejected"));
        let step: StepError = e.into();
        assert_eq!(step.operation_kind(), "callback");
    }
}

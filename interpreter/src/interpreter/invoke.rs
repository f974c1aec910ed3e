//! Chained invokes: the START that asks the service to invoke another
//! function, and the outcome read back from the history.

use super::*;
use durable_yield_codecs::CodecError;

impl Interpreter {
    pub(super) fn on_invoke(
        &mut self,
        ctx: CtxId,
        name: Option<Cow<'static, str>>,
        function_name: String,
        tenant_id: Option<String>,
        payload: Result<Payload, CodecError>,
    ) {
        let (mut op, at) = self.next_op(
            ctx,
            OperationType::ChainedInvoke,
            SharedStr::from_static(crate::subtype::CHAINED_INVOKE),
            name,
        );
        let recorded = at.map(|at| self.history.at(at));
        // Versions before 0.2 named an unnamed invoke after its function:
        // executions they started still replay.
        if let Some(r) = recorded.filter(|r| {
            op.name.is_none()
                && r.op_type == OperationType::ChainedInvoke
                && r.name.as_deref() == Some(function_name.as_str())
        }) {
            op.name = r.name.clone();
        }
        let replay_only = self.contexts[ctx as usize].replay_only;
        let invalid = |reason: String| ExecutionError::InvalidConfig {
            op: op.clone(),
            reason,
        };
        let next = if let Err(e) = self.check(&op, recorded) {
            Next::fail(e)
        } else if recorded.is_some() {
            // Never invoked again: its outcome, or a wait for it.
            self.replayed += 1;
            self.invoke_outcome(&op)
        } else if replay_only {
            Next::fail(Self::not_recorded(&op, None))
        } else if function_name.is_empty() || function_name.len() > 256 {
            Next::fail(invalid(format!(
                "the function name must be 1 to 256 characters, not {:?}",
                function_name
            )))
        } else if tenant_id
            .as_deref()
            .is_some_and(|t| t.is_empty() || t.len() > 256)
        {
            Next::fail(invalid("a tenant id must be 1 to 256 characters".into()))
        } else {
            match payload {
                // Nothing is recorded: the invocation ends, and the
                // service's next one encodes the input again.
                Err(error) if error.is_transient() => Next::fail(ExecutionError::Codec {
                    op: Some(op.clone()),
                    error,
                }),
                Err(error) => {
                    Next::fail(invalid(format!("the input could not be encoded: {error}")))
                }
                Ok(payload) if payload.len() > MAX_OPERATION_PAYLOAD => {
                    Next::fail(invalid(format!(
                        "the input is {} bytes, over the limit of {MAX_OPERATION_PAYLOAD}",
                        payload.len()
                    )))
                }
                Ok(payload) => {
                    let mut start = update(&op, OperationAction::Start);
                    start.payload = Some(payload);
                    start.chained_invoke_options = Some(Box::new(ChainedInvokeOptions {
                        function_name,
                        tenant_id,
                        x_amzn_trace_id: None,
                    }));
                    Next::Checkpoint(vec![start], After::InvokeStarted(ctx, Box::new(op.clone())))
                }
            }
        };
        self.set_last(ctx, op);
        self.apply(ctx, next);
    }

    /// What became of the chained invoke `op`, as recorded.
    pub(super) fn invoke_outcome(&self, op: &OpRef) -> Next {
        let Some(recorded) = self.history.get(&op.id) else {
            return Next::Suspend(None);
        };
        let details = recorded.chained_invoke_details.as_deref();
        match recorded.status {
            OperationStatus::Succeeded => Next::Resume(Response::Invoked(Ok(details
                .and_then(|d| d.result.clone())
                .unwrap_or_else(|| Payload::from("null"))))),
            status @ (OperationStatus::Failed
            | OperationStatus::TimedOut
            | OperationStatus::Stopped
            | OperationStatus::Cancelled) => {
                let error = details.and_then(|d| d.error.as_ref());
                let error =
                    recorded_error(error, status, "ChainedInvokeFailed", "invoked function");
                Next::Resume(Response::Invoked(Err(Box::new((status, error)))))
            }
            OperationStatus::Unknown(name) => Next::fail(unknown_status(op, name)),
            // The target runs; the service invokes this function again
            // when it ends.
            _ => Next::Suspend(None),
        }
    }
}

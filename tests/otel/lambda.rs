//! On the Lambda path: callbacks the service does not list, flushing at the
//! end of each invocation, trace propagation into chained invokes.

use super::*;

// -------------------------------- a callback the service does not list

use durable_yield_tests::RecordingService as Recording;

pub(super) const ARN: &str =
    "arn:aws:lambda:us-west-2:123456789012:function:f:1/durable-execution/n/e1";

/// Creates a callback `approval`, waits for it, then runs a step.
pub(super) async fn approval(mut wf: Workflow, _: serde_json::Value) -> Result<String, StepError> {
    let cb = wf.create_callback::<String>("approval").await;
    let answer = wf.callback_result(&cb).await?;
    let _: u32 = wf.step("after", |_| async { Ok(1) }).await?;
    Ok(answer)
}

/// An envelope for the second invocation of [`approval`]: the callback
/// was started at t = 1 s and answered at `answered_at`; `later` adds a
/// step recorded at t = 10 s (written by an invocation after the answer).
pub(super) fn envelope(answered_at: i64, later: bool) -> InvocationInput {
    let t0 = 1_795_755_600_000_i64;
    let callback_id = operation_id(None, 1);
    let mut operations = vec![
        serde_json::json!({
            "Id": "e1", "Type": "EXECUTION", "Status": "STARTED",
            "StartTimestamp": t0,
            "ExecutionDetails": {"InputPayload": "{}"}
        }),
        serde_json::json!({
            "Id": callback_id.to_string(), "Type": "CALLBACK", "SubType": "Callback",
            "Name": "approval", "Status": "SUCCEEDED",
            "StartTimestamp": t0 + 1000, "EndTimestamp": t0 + answered_at,
            "CallbackDetails": {"CallbackId": "cb-1", "Result": "\"ok\""}
        }),
    ];
    if later {
        let step_id = operation_id(None, 2);
        operations.push(serde_json::json!({
            "Id": step_id.to_string(), "Type": "STEP", "SubType": "Step",
            "Name": "after", "Status": "STARTED", "StartTimestamp": t0 + 10_000,
            "StepDetails": {"Attempt": 1}
        }));
    }
    serde_json::from_value(serde_json::json!({
        "DurableExecutionArn": ARN,
        "CheckpointToken": "t",
        "InitialExecutionState": {"Operations": operations},
        "UpdatedOperationIds": []
    }))
    .unwrap()
}

pub(super) type Handler =
    fn(Workflow, serde_json::Value) -> durable_yield_tests::BoxFuture<Result<String, StepError>>;
pub(super) type Function = DurableFunction<Handler, serde_json::Value, String, Recording>;

pub(super) fn approval_function(
    provider: &SdkTracerProvider,
    view: OtelView,
) -> (Function, Recording) {
    fn boxed(
        wf: Workflow,
        input: serde_json::Value,
    ) -> durable_yield_tests::BoxFuture<Result<String, StepError>> {
        Box::pin(approval(wf, input))
    }
    let service = Recording::default();
    let function = DurableFunction::new(boxed as _, service.clone(), CheckpointBatching::default())
        .plugin(OtelPlugin::from_provider(provider).view(view));
    (function, service)
}

/// AWS's emulator leaves an answered callback out of
/// `UpdatedOperationIds`; the invocation that sees it answered still gets
/// its continuation span, because it ended after the SDK last wrote. One
/// answered before a later write was seen by that writer: no span.
#[tokio::test]
async fn a_callback_answered_between_invocations_gets_a_span_even_when_not_listed() {
    for view in [OtelView::Invocation, OtelView::Execution] {
        let (provider, exporter) = collecting();
        let (function, _) = approval_function(&provider, view);
        function.handle(envelope(5_000, false)).await.unwrap();
        let spans = Spans(exporter.get_finished_spans().unwrap());
        let span = spans.with_status("approval", "SUCCEEDED");
        assert_eq!(text(span, "durable.operation.type"), "CALLBACK");
        assert_eq!(keys(span), sorted(OPERATION));
        assert_eq!(span.status, Status::Ok);
        if view == OtelView::Execution {
            // Ended when the service says it did.
            assert_eq!(
                span.end_time,
                UNIX_EPOCH + Duration::from_millis(1_795_755_605_000)
            );
        }

        let (provider, exporter) = collecting();
        let (function, _) = approval_function(&provider, view);
        function.handle(envelope(5_000, true)).await.unwrap();
        let spans = Spans(exporter.get_finished_spans().unwrap());
        assert!(
            spans.named("approval").is_empty(),
            "{view:?}: the invocation that wrote `after` saw the answer: {:#?}",
            spans.names()
        );
    }
}

// ------------------------------------------------------------ flushing

/// With a batch exporter that would hold spans for an hour, the spans of
/// an invocation are exported when it ends, as Lambda needs before it
/// freezes the process; without `flush`, they stay buffered.
#[tokio::test]
async fn spans_are_flushed_at_the_end_of_each_invocation() {
    for flush in [true, false] {
        let exporter = InMemorySpanExporter::default();
        let batch = BatchSpanProcessor::builder(exporter.clone())
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_scheduled_delay(Duration::from_secs(3600))
                    .build(),
            )
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(batch)
            .with_id_generator(DeterministicIds::default())
            .build();
        let plugin = if flush {
            OtelPlugin::from_provider(&provider)
        } else {
            OtelPlugin::new(opentelemetry::trace::TracerProvider::tracer(
                &provider,
                "durable-yield",
            ))
        };
        let execution = LocalRunner::new().plugin(plugin).start(&()).unwrap();
        execution.invoke(&retry_wait_step).await.unwrap();
        let exported = exporter.get_finished_spans().unwrap();
        if flush {
            // Invocation 1: the synthetic root, Invocation, `charge` and
            // its first attempt.
            assert_eq!(exported.len(), 4, "{exported:#?}");
        } else {
            assert!(exported.is_empty(), "{exported:#?}");
        }
        let _ = provider.shutdown();
    }
}

// ------------------------------------ trace propagation, full resolution

/// Invokes `target` once.
pub(super) async fn invoker(mut wf: Workflow, _: serde_json::Value) -> Result<String, StepError> {
    let out: u32 = wf
        .invoke_with(durable_yield::InvokeConfig::named("call"), "target", &1u32)
        .await?;
    Ok(out.to_string())
}

/// A chained invoke's START carries the caller's trace header, naming the
/// invoke's span, so that the target's spans join the caller's trace; the
/// trace comes from Lambda's X-Ray header; spans carry the system clock
/// at full resolution.
#[tokio::test]
async fn a_chained_invoke_carries_the_trace_and_spans_have_full_resolution_times() {
    fn boxed(
        wf: Workflow,
        input: serde_json::Value,
    ) -> durable_yield_tests::BoxFuture<Result<String, StepError>> {
        Box::pin(invoker(wf, input))
    }
    for view in [OtelView::Invocation, OtelView::Execution] {
        let (provider, exporter) = collecting();
        let service = Recording::default();
        let mut function = DurableFunction::new(
            boxed as fn(_, _) -> _,
            service.clone(),
            CheckpointBatching::default(),
        )
        .plugin(OtelPlugin::from_provider(&provider).view(view));
        let header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
        let mut context = lambda_runtime::Context::default();
        context.request_id = "req-1".into();
        context.xray_trace_id = Some(header.into());
        let input = durable_yield_tests::first_invocation(ARN, "{}");
        use lambda_runtime::Service as _;
        let out = function
            .call(lambda_runtime::LambdaEvent::new(input, context))
            .await
            .unwrap();
        assert_eq!(out.status, durable_yield::model::InvocationStatus::Pending);
        let spans = Spans(exporter.get_finished_spans().unwrap());
        let trace = TraceId::from_hex("5759e988bd862e3fe1be46a994272793").unwrap();
        assert!(spans.0.iter().all(|s| s.span_context.trace_id() == trace));
        let updates = service.0.lock().unwrap().clone();
        let start = updates
            .iter()
            .find(|u| u.op_type == OperationType::ChainedInvoke)
            .expect("the invoke's START");
        let sent = start
            .chained_invoke_options
            .as_ref()
            .and_then(|o| o.x_amzn_trace_id.clone())
            .expect("a trace header");
        let parent = match view {
            // The invoke's span in this invocation.
            OtelView::Invocation => spans.with_status("call", "STARTED").span_context.span_id(),
            // The invoke's one span, written when it ends: its derived id,
            // which the invocation span's children already point at.
            _ => {
                let id = sent.split("Parent=").nth(1).unwrap()[..16].to_owned();
                SpanId::from_hex(&id).unwrap()
            }
        };
        assert_eq!(
            sent,
            format!("Root=1-5759e988-bd862e3fe1be46a994272793;Parent={parent};Sampled=1")
        );
        // The wire form has the field AWS's SDKs send.
        let json = serde_json::to_value(start).unwrap();
        assert_eq!(json["ChainedInvokeOptions"]["XAmznTraceId"], sent.as_str());
        // The system clock's instants, not rounded to milliseconds.
        let invocation = spans.one("Invocation");
        let sub_ms = [invocation.start_time, invocation.end_time]
            .iter()
            .any(|t| t.duration_since(UNIX_EPOCH).unwrap().subsec_nanos() % 1_000_000 != 0);
        assert!(sub_ms, "{:?}", invocation.start_time);
    }
}

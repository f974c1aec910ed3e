//! Functions served with a wrapped checkpoint service, and chained-invoke targets.

use super::*;

/// The input also names a file (`log`) that each invocation appends its
/// number of checkpoint requests to; the handler reads it (see
/// [`serve_counted`]).
#[derive(Debug, Deserialize)]
pub(crate) struct Counted {
    steps: u32,
}

/// Counts the checkpoint requests an invocation makes.
#[derive(Clone)]
pub(crate) struct CountingService {
    inner: AwsDurableService,
    requests: Arc<AtomicU64>,
}

impl DurableService for CountingService {
    async fn checkpoint(
        &self,
        execution_arn: &str,
        checkpoint_token: &str,
        updates: Vec<OperationUpdate>,
    ) -> Result<CheckpointResponse, ServiceError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.inner
            .checkpoint(execution_arn, checkpoint_token, updates)
            .await
    }

    async fn get_state(
        &self,
        execution_arn: &str,
        checkpoint_token: &str,
        marker: &str,
    ) -> Result<ExecutionState, ServiceError> {
        self.inner
            .get_state(execution_arn, checkpoint_token, marker)
            .await
    }
}

/// `steps` steps; the handler logs how many checkpoint requests it made.
pub(crate) async fn checkpoint_count(mut wf: Workflow, input: Counted) -> Result<u32, StepError> {
    let mut total = 0;
    for i in 0..input.steps {
        total += wf
            .step(format!("s{i}"), move |_| async move { Ok(i) })
            .await?;
    }
    Ok(total)
}

/// How long a chained invoke's target takes before its workflow starts.
///
/// A Lambda function invoked by the service takes some time to start; the
/// emulator invokes a target the moment the caller's START is recorded,
/// while the caller's invocation is still ending. A target that failed at
/// once on a loaded machine was once recorded (`ChainedInvokeFailed`)
/// before the caller's `InvocationCompleted`, the reverse of the order
/// AWS's requirement 5-6 lists (its matcher compares events by `EventId`).
pub(crate) const TARGET_LATENCY: Duration = Duration::from_millis(300);

/// Serves a chained invoke's target, each invocation starting
/// [`TARGET_LATENCY`] after its event arrives.
pub(crate) async fn serve_target<I, O, W>(workflow: W) -> Result<(), Error>
where
    I: serde::de::DeserializeOwned + Send + 'static,
    O: Serialize + Send + 'static,
    W: durable_yield::WorkflowFn<I, O>,
{
    let function = durable_yield::lambda::DurableHandler::new(workflow)
        .into_service()
        .await;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<durable_yield::model::InvocationInput>| {
            let function = function.clone();
            async move {
                tokio::time::sleep(TARGET_LATENCY).await;
                Ok::<_, Error>(function.handle(event.payload).await?)
            }
        },
    ))
    .await
}

pub(crate) async fn serve_counted() -> Result<(), Error> {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let requests = Arc::new(AtomicU64::new(0));
    let service = CountingService {
        inner: AwsDurableService::from_conf(&config),
        requests: requests.clone(),
    };
    let function = DurableFunction::new(checkpoint_count, service, CheckpointBatching::default());
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<durable_yield::model::InvocationInput>| {
            let function = function.clone();
            let requests = requests.clone();
            async move {
                let log: Option<String> = event
                    .payload
                    .initial_execution_state
                    .operations
                    .iter()
                    .find_map(|op| op.execution_details.as_ref()?.input_payload.clone())
                    .and_then(|p| serde_json::from_str::<serde_json::Value>(p.as_str()).ok())
                    .and_then(|v| v.get("log")?.as_str().map(str::to_owned));
                requests.store(0, Ordering::SeqCst);
                let output = function.handle(event.payload).await?;
                if let Some(log) = log {
                    let mut file = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(log)?;
                    writeln!(file, "{}", requests.load(Ordering::SeqCst))?;
                }
                Ok::<_, Error>(output)
            }
        },
    ))
    .await
}

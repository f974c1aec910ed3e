//! Running workflows as durable AWS Lambda functions.
//!
//! One call turns a workflow into a Lambda function:
//!
//! ```no_run
//! use durable_yield::{StepError, Workflow};
//!
//! async fn hello(mut wf: Workflow, name: String) -> Result<String, StepError> {
//!     wf.step("greet", move |_| async move { Ok(format!("hello {name}")) })
//!         .await
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), durable_yield::lambda::Error> {
//!     durable_yield::lambda::run(hello).await
//! }
//! ```
//!
//! The handler reads the invocation envelope, pages in the rest of the
//! execution state with `GetDurableExecutionState`, replays the workflow,
//! checkpoints new work with `CheckpointDurableExecution` and answers
//! `SUCCEEDED`, `FAILED` or `PENDING`. The AWS client is configured from the
//! environment by `aws-config` (so `AWS_ENDPOINT_URL_LAMBDA` points it at a
//! local emulator); [`DurableHandler`] takes your own client or
//! `SdkConfig`, a [`CheckpointBatching`], and gives a `tower` service to wrap in
//! your own middleware.

pub(crate) mod aws;
mod history;

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use serde::Serialize;
use serde::de::DeserializeOwned;

pub use aws::AwsDurableService;
use lambda_runtime::{Diagnostic, LambdaEvent};

/// The error [`run`] returns: any error, boxed (the same type as
/// `lambda_runtime::Error`, without tying this crate's API to that
/// crate's versions). `lambda_runtime`'s own types (`LambdaEvent`,
/// `Context`, `Service`), for composing [`DurableFunction`] with your own
/// `tower` middleware, come from a dependency on `lambda_runtime` itself.
pub type Error = Box<dyn std::error::Error + Send + Sync + 'static>;

use crate::driver::LambdaRequest;
use crate::engine::{DurableService, InvocationError};
use crate::model::{InvocationInput, InvocationOutput};
use crate::plugin::{PLUGINS_ENV, Plugin, PluginCatalog, PluginConflict, PluginLoadError, Plugins};
use crate::{CheckpointBatching, WorkflowFn};
pub use history::fetch_history;

/// Runs `workflow` as a durable Lambda function, with the AWS client
/// configured from the environment. Returns when the Lambda runtime stops.
pub async fn run<I, O, W>(workflow: W) -> Result<(), Error>
where
    I: DeserializeOwned + Send + 'static,
    O: Serialize + Send + 'static,
    W: WorkflowFn<I, O>,
{
    DurableHandler::new(workflow).run().await
}

/// Builds the Lambda handler of a workflow.
pub struct DurableHandler<W, I, O> {
    workflow: W,
    service: Option<AwsDurableService>,
    batching: CheckpointBatching,
    plugins: Plugins,
    /// Whether [`PLUGINS_ENV`] was read ([`DurableHandler::plugins_from_env`]).
    env_read: bool,
    types: PhantomData<fn(I) -> O>,
}

impl<W, I, O> DurableHandler<W, I, O>
where
    I: DeserializeOwned + Send + 'static,
    O: Serialize + Send + 'static,
    W: WorkflowFn<I, O>,
{
    /// The handler of `workflow`, with the defaults: a client from the
    /// environment, no batching delay.
    pub fn new(workflow: W) -> Self {
        DurableHandler {
            workflow,
            service: None,
            batching: CheckpointBatching::default(),
            plugins: Plugins::default(),
            env_read: false,
            types: PhantomData,
        }
    }

    /// Registers the plugins that `DURABLE_EXECUTION_PLUGINS` ([`PLUGINS_ENV`])
    /// names, from `catalog`, after those registered in code: the plugins
    /// a deployment turns on without a new build, as AWS's SDKs read that
    /// variable (see [`PluginCatalog`]). Unset or blank, it turns on none.
    ///
    /// A handler that never calls this warns at cold start when the
    /// variable names plugins, instead of ignoring it silently.
    ///
    /// # Errors
    ///
    /// [`PluginLoadError`], registering none of them, when the value is
    /// malformed or names a plugin twice, names one the catalog lacks, or
    /// one that shares an exclusive group with another: a configuration
    /// error to report at cold start (`main` returns it).
    ///
    /// ```no_run
    /// # use durable_yield::{StepError, Workflow};
    /// # async fn workflow(_: Workflow, _: ()) -> Result<(), StepError> { Ok(()) }
    /// # async fn main_() -> Result<(), durable_yield::lambda::Error> {
    /// use durable_yield::lambda::DurableHandler;
    /// use durable_yield::plugin::PluginCatalog;
    /// # struct Metrics;
    /// # impl durable_yield::plugin::Plugin for Metrics {
    /// #     fn invocation(&self, _: &durable_yield::plugin::InvocationStart<'_>)
    /// #     -> Result<Box<dyn durable_yield::plugin::InvocationHooks>, durable_yield::BoxError> { unimplemented!() }
    /// # }
    ///
    /// // DURABLE_EXECUTION_PLUGINS=metrics turns it on.
    /// let catalog = PluginCatalog::new().add("metrics", || Metrics);
    /// DurableHandler::new(workflow).plugins_from_env(&catalog)?.run().await
    /// # }
    /// ```
    pub fn plugins_from_env(self, catalog: &PluginCatalog) -> Result<Self, PluginLoadError> {
        self.plugins_named(catalog, &PluginCatalog::configured())
    }

    /// [`DurableHandler::plugins_from_env`] with the names given here, in
    /// the variable's format (`"otel, metrics"`), from another source of
    /// configuration.
    ///
    /// # Errors
    ///
    /// As [`DurableHandler::plugins_from_env`].
    pub fn plugins_named(
        mut self,
        catalog: &PluginCatalog,
        names: &str,
    ) -> Result<Self, PluginLoadError> {
        catalog.register(&mut self.plugins, names)?;
        self.env_read = true;
        Ok(self)
    }

    /// Registers a lifecycle [`Plugin`]: it receives the hooks of every
    /// invocation, after the plugins registered before it.
    ///
    /// # Panics
    ///
    /// If a plugin registered before it is in one of its exclusive groups
    /// ([`Plugin::exclusive_groups`]: two `OtelPlugin`s, say), with a
    /// message that names both; [`DurableHandler::try_plugin`] returns
    /// that as an error instead.
    #[track_caller]
    pub fn plugin(mut self, plugin: impl Plugin) -> Self {
        self.plugins.push(plugin);
        self
    }

    /// Registers a plugin shared with a [`PluginCatalog`]
    /// ([`PluginCatalog::add_shared`]) as [`DurableHandler::plugin`] does:
    /// naming it in `DURABLE_EXECUTION_PLUGINS` as well then registers it
    /// once, with a warning.
    ///
    /// # Panics
    ///
    /// As [`DurableHandler::plugin`].
    #[track_caller]
    pub fn plugin_shared<P: Plugin>(mut self, plugin: Arc<P>) -> Self {
        self.plugins.push_shared(plugin);
        self
    }

    /// Registers a lifecycle [`Plugin`] as [`DurableHandler::plugin`] does,
    /// or says why not and leaves the handler as it was: a plugin
    /// registered before it is in one of its exclusive groups
    /// ([`Plugin::exclusive_groups`]).
    ///
    /// ```no_run
    /// # use durable_yield::{StepError, Workflow};
    /// # async fn workflow(_: Workflow, _: ()) -> Result<(), StepError> { Ok(()) }
    /// # struct Metrics;
    /// # impl durable_yield::plugin::Plugin for Metrics {
    /// #     fn invocation(&self, _: &durable_yield::plugin::InvocationStart<'_>)
    /// #     -> Result<Box<dyn durable_yield::plugin::InvocationHooks>, durable_yield::BoxError> { unimplemented!() }
    /// # }
    /// # async fn main_() -> Result<(), durable_yield::lambda::Error> {
    /// use durable_yield::lambda::DurableHandler;
    ///
    /// let mut handler = DurableHandler::new(workflow);
    /// if let Err(conflict) = handler.try_plugin(Metrics) {
    ///     tracing::warn!(%conflict, "running without the metrics plugin");
    /// }
    /// handler.run().await
    /// # }
    /// ```
    pub fn try_plugin(&mut self, plugin: impl Plugin) -> Result<&mut Self, PluginConflict> {
        self.plugins.try_push(plugin)?;
        Ok(self)
    }

    /// Checkpoints through this client (as it is configured).
    pub fn client(mut self, client: aws_sdk_lambda::Client) -> Self {
        self.service = Some(AwsDurableService::new(client));
        self
    }

    /// Builds the client from this configuration.
    pub fn sdk_config(mut self, config: &aws_config::SdkConfig) -> Self {
        self.service = Some(AwsDurableService::from_conf(config));
        self
    }

    /// Groups checkpoint updates as `batching` says.
    pub fn batching(mut self, batching: CheckpointBatching) -> Self {
        self.batching = batching;
        self
    }

    /// The handler as a `tower` service over Lambda events, to compose with
    /// your own middleware and hand to `lambda_runtime::run`.
    pub async fn into_service(self) -> DurableFunction<W, I, O, AwsDurableService> {
        if !self.env_read {
            warn_if_plugins_named();
        }
        let service = match self.service {
            Some(service) => service,
            None => AwsDurableService::from_conf(
                &aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await,
            ),
        };
        let mut function = DurableFunction::new(self.workflow, service, self.batching);
        function.plugins = Arc::new(self.plugins);
        function
    }

    /// Serves invocations until the Lambda runtime stops.
    pub async fn run(self) -> Result<(), Error> {
        lambda_runtime::run(self.into_service().await).await
    }
}

/// A durable Lambda function: a `tower` service from Lambda events with
/// the invocation envelope to the durable response. Cheap to clone.
pub struct DurableFunction<W, I, O, S> {
    workflow: Arc<W>,
    service: Arc<S>,
    batching: Arc<CheckpointBatching>,
    plugins: Arc<Plugins>,
    types: PhantomData<fn(I) -> O>,
}

impl<W, I, O, S> Clone for DurableFunction<W, I, O, S> {
    fn clone(&self) -> Self {
        DurableFunction {
            workflow: self.workflow.clone(),
            service: self.service.clone(),
            batching: self.batching.clone(),
            plugins: self.plugins.clone(),
            types: PhantomData,
        }
    }
}

impl<W, I, O, S> DurableFunction<W, I, O, S>
where
    I: DeserializeOwned + Send + 'static,
    O: Serialize + Send + 'static,
    W: WorkflowFn<I, O>,
    S: DurableService + 'static,
{
    /// A function of `workflow` that checkpoints through `service`.
    pub fn new(workflow: W, service: S, batching: CheckpointBatching) -> Self {
        DurableFunction {
            workflow: Arc::new(workflow),
            service: Arc::new(service),
            batching: Arc::new(batching),
            plugins: Arc::new(Plugins::default()),
            types: PhantomData,
        }
    }

    /// Registers a lifecycle [`Plugin`] (see
    /// [`DurableHandler::plugin`]).
    ///
    /// # Panics
    ///
    /// As [`DurableHandler::plugin`]: if a plugin registered before it is
    /// in one of its exclusive groups ([`DurableFunction::try_plugin`]
    /// returns that as an error instead).
    #[track_caller]
    pub fn plugin(mut self, plugin: impl Plugin) -> Self {
        Arc::make_mut(&mut self.plugins).push(plugin);
        self
    }

    /// Registers a plugin shared with a [`PluginCatalog`] (see
    /// [`DurableHandler::plugin_shared`]).
    ///
    /// # Panics
    ///
    /// As [`DurableHandler::plugin`].
    #[track_caller]
    pub fn plugin_shared<P: Plugin>(mut self, plugin: Arc<P>) -> Self {
        Arc::make_mut(&mut self.plugins).push_shared(plugin);
        self
    }

    /// Registers a lifecycle [`Plugin`], or says why not (see
    /// [`DurableHandler::try_plugin`]).
    pub fn try_plugin(&mut self, plugin: impl Plugin) -> Result<&mut Self, PluginConflict> {
        Arc::make_mut(&mut self.plugins).try_push(plugin)?;
        Ok(self)
    }

    /// Registers the plugins `DURABLE_EXECUTION_PLUGINS` names, from
    /// `catalog` (see [`DurableHandler::plugins_from_env`]).
    ///
    /// # Errors
    ///
    /// As [`DurableHandler::plugins_from_env`].
    pub fn plugins_from_env(self, catalog: &PluginCatalog) -> Result<Self, PluginLoadError> {
        self.plugins_named(catalog, &PluginCatalog::configured())
    }

    /// Registers the plugins `names` names, from `catalog` (see
    /// [`DurableHandler::plugins_named`]).
    ///
    /// # Errors
    ///
    /// As [`DurableHandler::plugins_from_env`].
    pub fn plugins_named(
        mut self,
        catalog: &PluginCatalog,
        names: &str,
    ) -> Result<Self, PluginLoadError> {
        catalog.register(Arc::make_mut(&mut self.plugins), names)?;
        Ok(self)
    }

    /// Handles one invocation.
    pub async fn handle(
        &self,
        input: InvocationInput,
    ) -> Result<InvocationOutput, InvocationError> {
        self.handle_request(input, None).await
    }

    /// Handles one invocation, with what Lambda says of the request (its
    /// id, trace header and tenant) recorded on its `durable_execution`
    /// tracing span.
    async fn handle_request(
        &self,
        input: InvocationInput,
        lambda: Option<LambdaRequest<'_>>,
    ) -> Result<InvocationOutput, InvocationError> {
        let summary = crate::driver::run_invocation_traced(
            &*self.workflow,
            input,
            &*self.service,
            &self.batching,
            lambda.as_ref(),
            &self.plugins,
        )
        .await?;
        Ok(summary.output)
    }
}

impl<W, I, O, S> lambda_runtime::Service<LambdaEvent<InvocationInput>>
    for DurableFunction<W, I, O, S>
where
    I: DeserializeOwned + Send + 'static,
    O: Serialize + Send + 'static,
    W: WorkflowFn<I, O>,
    S: DurableService + 'static,
{
    type Response = InvocationOutput;
    type Error = InvocationError;
    type Future = Pin<Box<dyn Future<Output = Result<InvocationOutput, InvocationError>> + Send>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> Poll<Result<(), InvocationError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, event: LambdaEvent<InvocationInput>) -> Self::Future {
        let function = self.clone();
        Box::pin(async move {
            let context = event.context;
            let lambda = LambdaRequest {
                request_id: &context.request_id,
                trace_header: context.xray_trace_id.as_deref(),
                tenant_id: context.tenant_id.as_deref().filter(|t| !t.is_empty()),
            };
            function.handle_request(event.payload, Some(lambda)).await
        })
    }
}

impl From<InvocationError> for Diagnostic {
    fn from(error: InvocationError) -> Self {
        Diagnostic {
            error_type: "DurableInvocationError".to_owned(),
            error_message: error.to_string(),
        }
    }
}

/// Warns that [`PLUGINS_ENV`] names plugins that nothing turns on (the
/// handler was built without [`DurableHandler::plugins_from_env`]).
fn warn_if_plugins_named() {
    let value = PluginCatalog::configured();
    if !value.trim().is_empty() {
        tracing::warn!(
            value = %value,
                "{PLUGINS_ENV} names plugins, but this function does not read it: \
                 no plugin is turned on by it; build the handler with \
                 DurableHandler::plugins_from_env and a PluginCatalog"
        );
    }
}

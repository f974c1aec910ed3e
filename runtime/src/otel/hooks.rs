//! What each hook of an invocation writes: the spans of one invocation
//! of an execution, in either view (see the [module docs](super)).

use super::*;

/// An operation as this invocation knows it.
struct OpSpan<S> {
    /// Its span: recording in the invocation view; in the execution view
    /// none until it ends (its derived context stands in for it).
    span: Option<S>,
    /// The context its children and attempts are parented to.
    context: SpanContext,
    /// The earliest instant seen for it or under it in this invocation.
    earliest: Option<SystemTime>,
    /// The context it runs in.
    parent: Option<OperationId>,
    /// Its status when the workflow reached it (what its span says if it
    /// closes with the invocation).
    status: OperationStatus,
    /// Whether it began in an earlier invocation.
    existed: bool,
}

pub(super) struct OtelHooks<T: Tracer> {
    tracer: Arc<T>,
    view: OtelView,
    flush: Option<SdkTracerProvider>,
    flush_timeout: Duration,
    warned: Arc<AtomicBool>,
    arn: Arc<str>,
    execution_started_at: Option<Millis>,
    /// The `Workflow` span's context (written when the execution ends).
    workflow: SpanContext,
    /// The parent of `Workflow`: remote (the trace header's) or the
    /// synthetic `DurableExecutionRoot`.
    ancestor: SpanContext,
    /// The trace header's sampling decision (`Sampled=1` or `Sampled=0`),
    /// if it made one.
    decided: Option<bool>,
    invocation: Option<(T::Span, SpanContext)>,
    /// The last instant given to a span: instants never go backwards.
    floor: Option<SystemTime>,
    operations: HashMap<OperationId, OpSpan<T::Span>>,
    /// Operations in the order their spans opened (closed in reverse).
    opened: Vec<OperationId>,
    attempts: HashMap<OperationId, T::Span>,
    /// Execution view: operations whose span this invocation wrote.
    exported: HashSet<OperationId>,
}

impl<T> OtelHooks<T>
where
    T: Tracer + Send + Sync + 'static,
    T::Span: Send + Sync + 'static,
{
    /// The hooks of one invocation: its trace (the header's, or derived
    /// from the ARN and the execution's start), the `Workflow` span's
    /// derived context and the execution's ancestor.
    pub(super) fn new(plugin: &OtelPlugin<T>, start: &InvocationStart<'_>) -> Self {
        let arn = start.execution_arn;
        // As AWS's plugin (2.0.0) reads the header: a valid `Root` is the
        // trace, a valid `Parent` beside it the remote ancestor, and
        // `Sampled=1`/`Sampled=0` the decision; what is missing is derived.
        let header = start
            .trace_header
            .filter(|_| plugin.from_header)
            .and_then(TraceHeader::read)
            .unwrap_or_default();
        let trace_id = header.trace.unwrap_or_else(|| {
            let seconds = start.execution_started_at.unwrap_or(start.at) / 1000;
            derived_trace_id(arn, seconds)
        });
        // Undecided: sampled for now; without a remote ancestor the
        // sampler's decision on the synthetic root settles it.
        let flags = if header.sampled == Some(false) {
            TraceFlags::default()
        } else {
            TraceFlags::SAMPLED
        };
        let workflow = SpanContext::new(
            trace_id,
            derived_span_id("workflow:", arn),
            flags,
            false,
            TraceState::default(),
        );
        // The parent of `Workflow`: the span the trace header names (the
        // Lambda invocation's), else a synthetic root derived from the
        // ARN, which every invocation writes again (`DurableExecutionRoot`).
        let ancestor = match (header.trace, header.parent) {
            (Some(trace), Some(parent)) => {
                SpanContext::new(trace, parent, flags, true, TraceState::default())
            }
            _ => SpanContext::new(
                trace_id,
                derived_span_id("execution-root:", arn),
                flags,
                false,
                TraceState::default(),
            ),
        };
        OtelHooks {
            ancestor,
            decided: header.sampled,
            tracer: plugin.tracer.clone(),
            view: plugin.view,
            flush: plugin.flush.clone(),
            flush_timeout: plugin.flush_timeout,
            warned: plugin.warned.clone(),
            arn: Arc::from(arn),
            execution_started_at: start.execution_started_at,
            workflow,
            invocation: None,
            floor: None,
            operations: HashMap::new(),
            opened: Vec::new(),
            attempts: HashMap::new(),
            exported: HashSet::new(),
        }
    }
}

impl<T: Tracer> OtelHooks<T> {
    /// `at`, moved after the last instant handed out.
    fn instant(&mut self, at: SystemTime) -> SystemTime {
        let at = match self.floor {
            Some(floor) if at <= floor => floor + Duration::from_micros(1),
            _ => at,
        };
        self.floor = Some(at);
        at
    }

    /// The invocation's spans are not sampled: the contexts every span
    /// descends from say so.
    fn not_sampled(&mut self) {
        let unsampled = |cx: &SpanContext| {
            SpanContext::new(
                cx.trace_id(),
                cx.span_id(),
                TraceFlags::default(),
                cx.is_remote(),
                cx.trace_state().clone(),
            )
        };
        self.workflow = unsampled(&self.workflow);
        self.ancestor = unsampled(&self.ancestor);
    }

    fn remote(&self, span_id: SpanId) -> SpanContext {
        SpanContext::new(
            self.workflow.trace_id(),
            span_id,
            self.workflow.trace_flags(),
            false,
            TraceState::default(),
        )
    }

    fn invocation_context(&self) -> SpanContext {
        self.invocation
            .as_ref()
            .map_or_else(|| self.workflow.clone(), |(_, cx)| cx.clone())
    }

    /// Builds a span under `parent` (none: a root in the workflow's
    /// trace), with derived ids where given.
    fn build(
        &self,
        builder: SpanBuilder,
        parent: Option<&SpanContext>,
        id: Option<SpanId>,
    ) -> T::Span {
        let context = match parent {
            Some(parent) => Context::new().with_remote_span_context(parent.clone()),
            None => Context::new(),
        };
        let trace = parent.is_none().then(|| self.workflow.trace_id());
        NEXT_IDS.with(|next| next.set((trace, id)));
        let span = self.tracer.build_with_context(builder, &context);
        NEXT_IDS.with(|next| next.set((None, None)));
        let got = span.span_context();
        let wrong =
            id.is_some_and(|id| got.span_id() != id) || trace.is_some_and(|t| got.trace_id() != t);
        if got.is_valid() && wrong && !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "durable-yield's OpenTelemetry spans need the DeterministicIds id generator on the \
                 tracer provider: without it the Workflow span starts a trace of its own and \
                 links point nowhere"
            );
        }
        span
    }

    /// The attributes every span has, in a vector with room for the
    /// others (an operation's identity and outcome: up to 8).
    fn base(&self) -> Vec<KeyValue> {
        let mut attributes = Vec::with_capacity(8);
        attributes.push(KeyValue::new("durable.execution.arn", self.arn.clone()));
        attributes
    }

    /// An operation's identifying attributes.
    fn identity(
        &self,
        id: &OperationId,
        op_type: OperationType,
        sub_type: Option<&str>,
        name: Option<&str>,
    ) -> Vec<KeyValue> {
        let mut attributes = self.base();
        attributes.push(KeyValue::new(
            "durable.operation.id",
            id.as_str().to_owned(),
        ));
        attributes.push(KeyValue::new("durable.operation.type", op_type.wire_name()));
        if let Some(sub_type) = sub_type {
            attributes.push(KeyValue::new(
                "durable.operation.subtype",
                sub_type.to_owned(),
            ));
        }
        if let Some(name) = name {
            attributes.push(KeyValue::new("durable.operation.name", name.to_owned()));
        }
        attributes
    }

    /// An operation span's attributes: its identity and status, and on a
    /// finished step its attempt.
    fn op_attributes(&self, event: &OperationEvent<'_>, status: OperationStatus) -> Vec<KeyValue> {
        let mut attributes = self.identity(event.id, event.op_type, event.sub_type, event.name);
        attributes.extend(outcome_attributes(event, status));
        attributes
    }

    /// The context an operation's span (or, in the execution view, its
    /// placeholder) goes under: its context's, else the invocation's (or
    /// the workflow's in the execution view).
    fn parent_of(&self, parent_id: Option<&OperationId>) -> SpanContext {
        if let Some(parent) = parent_id.and_then(|p| self.operations.get(p)) {
            return parent.context.clone();
        }
        match (parent_id, self.view) {
            (_, OtelView::Invocation) => self.invocation_context(),
            (Some(parent), OtelView::Execution) => {
                self.remote(operation_span_id(&self.arn, parent))
            }
            (None, OtelView::Execution) => self.workflow.clone(),
        }
    }

    /// Notes `at` as seen for `id` and every context around it.
    fn note(&mut self, mut id: Option<OperationId>, at: SystemTime) {
        while let Some(op) = id.and_then(|id| self.operations.get_mut(&id)) {
            op.earliest = Some(op.earliest.map_or(at, |e| e.min(at)));
            id = op.parent;
        }
    }

    fn links(&self) -> Vec<Link> {
        match self.view {
            OtelView::Invocation => vec![Link::with_context(self.workflow.clone())],
            OtelView::Execution => vec![Link::with_context(self.invocation_context())],
        }
    }

    /// The workflow reached an operation: its span opens (invocation
    /// view), or its placeholder is noted (execution view).
    fn open(&mut self, event: &OperationEvent<'_>, status: OperationStatus, existed: bool) {
        let at = self.instant(event.time);
        let derived = operation_span_id(&self.arn, event.id);
        let (span, context) = match self.view {
            OtelView::Invocation => {
                let parent = self.parent_of(event.parent_id);
                // The first span of an operation has its derived id; a
                // later one (the operation began in an earlier invocation)
                // a fresh id and a link to the first, unless it is a
                // virtual context (recorded nowhere, so never continued).
                let id = (!existed).then_some(derived);
                let virtual_context =
                    event.op_type == OperationType::Context && event.record.is_none();
                let mut links = Vec::new();
                if existed && !virtual_context {
                    links.push(Link::with_context(self.remote(derived)));
                }
                links.extend(self.links());
                let builder = SpanBuilder::from_name(span_name(event.name, event.id))
                    .with_kind(SpanKind::Internal)
                    .with_start_time(at)
                    .with_links(links)
                    .with_attributes(self.identity(
                        event.id,
                        event.op_type,
                        event.sub_type,
                        event.name,
                    ));
                let span = self.build(builder, Some(&parent), id);
                let context = span.span_context().clone();
                (Some(span), context)
            }
            // A virtual context, which records nothing, gets a fresh id
            // when it ends; nothing is parented to it (its operations
            // record the context around it as their parent).
            OtelView::Execution => (None, self.remote(derived)),
        };
        if let Some(previous) = self.operations.insert(
            *event.id,
            OpSpan {
                span,
                context,
                earliest: Some(at),
                parent: event.parent_id.copied(),
                status,
                existed,
            },
        ) {
            if let Some(mut span) = previous.span {
                span.end_with_timestamp(at);
            }
        } else {
            self.opened.push(*event.id);
        }
        self.note(event.parent_id.copied(), at);
    }

    /// An operation ended: its span closes with its outcome.
    fn close(&mut self, event: &OperationEvent<'_>) {
        match self.view {
            OtelView::Invocation => {
                if !self.operations.contains_key(event.id) {
                    // Started in an earlier invocation, ended since: a
                    // continuation span in this one.
                    self.open(event, event.status, true);
                }
                let at = self.instant(event.time);
                let attributes = outcome_attributes(event, event.status);
                if let Some(mut op) = self.operations.remove(event.id) {
                    if let Some(span) = op.span.as_mut() {
                        span.set_attributes(attributes);
                        span.set_status(span_status(event.status, event.error));
                        span.end_with_timestamp(at);
                    }
                }
            }
            OtelView::Execution => self.export(event),
        }
    }

    /// Execution view: writes an operation's one span.
    fn export(&mut self, event: &OperationEvent<'_>) {
        let recorded = event.record.is_some() || event.op_type != OperationType::Context;
        if recorded && !self.exported.insert(*event.id) {
            return;
        }
        let observed = self.instant(event.time);
        let placeholder = self.operations.remove(event.id);
        // The end: as the SDK saw it, or as the service recorded it for an
        // operation that ended between invocations.
        let service_end = event
            .record
            .and_then(|r| r.end_timestamp)
            .map(millis_to_time);
        let end = if event.replayed {
            service_end.unwrap_or(observed)
        } else {
            observed
        };
        let service_start = event
            .record
            .and_then(|r| r.start_timestamp)
            .map(millis_to_time);
        // The start: as the SDK saw it when it began in this invocation
        // (the service's timestamps have milliseconds only: operations
        // within one millisecond would overlap), else the earlier of the
        // service's and the first instant this invocation saw it.
        let observed_start = placeholder.as_ref().and_then(|p| p.earliest);
        let began_here = placeholder.as_ref().is_some_and(|p| !p.existed);
        let start = if began_here {
            observed_start
        } else {
            [service_start, observed_start].into_iter().flatten().min()
        }
        .unwrap_or(end)
        .min(end);
        let parent = self.parent_of(event.parent_id);
        let id = recorded.then(|| operation_span_id(&self.arn, event.id));
        let builder = SpanBuilder::from_name(span_name(event.name, event.id))
            .with_kind(SpanKind::Internal)
            .with_start_time(start)
            .with_links(self.links())
            .with_attributes(self.op_attributes(event, event.status));
        let mut span = self.build(builder, Some(&parent), id);
        span.set_status(span_status(event.status, event.error));
        span.end_with_timestamp(end);
        self.note(event.parent_id.copied(), start);
    }

    /// Ends the invocation's spans; writes `Workflow` if the execution is
    /// over.
    fn finish(&mut self, event: &InvocationEnd<'_>) {
        let end = self.instant(event.time);
        for (_, mut span) in self.attempts.drain() {
            span.set_attribute(KeyValue::new(
                "durable.span.truncated_at_invocation_boundary",
                true,
            ));
            span.end_with_timestamp(end);
        }
        // Operations going on (a wait, a retry, a callback) end with the
        // invocation, with the status they had when it saw them;
        // innermost first.
        for id in self.opened.drain(..).rev() {
            if let Some(op) = self.operations.remove(&id) {
                if let Some(mut span) = op.span {
                    span.set_attribute(KeyValue::new(
                        "durable.operation.status",
                        op.status.wire_name(),
                    ));
                    span.end_with_timestamp(end);
                }
            }
        }
        let message = event.error.and_then(|e| e.error_message.as_deref());
        if let Some((mut span, _)) = self.invocation.take() {
            span.set_attribute(KeyValue::new(
                "durable.invocation.status",
                match event.status {
                    InvocationEndStatus::Retry => "RETRYING",
                    other => other.as_str(),
                },
            ));
            match event.status {
                InvocationEndStatus::Succeeded | InvocationEndStatus::Pending => {
                    span.set_status(Status::Ok);
                }
                InvocationEndStatus::Failed => {
                    span.set_status(Status::error(message.unwrap_or_default().to_owned()));
                }
                _ => {}
            }
            span.end_with_timestamp(end);
        }
        if event.status.is_terminal() {
            let start = self
                .execution_started_at
                .map_or(end, millis_to_time)
                .min(end);
            let mut attributes = self.base();
            attributes.push(KeyValue::new(
                "durable.execution.status",
                event.status.as_str(),
            ));
            let builder = SpanBuilder::from_name("Workflow")
                .with_kind(SpanKind::Internal)
                .with_start_time(start)
                .with_attributes(attributes);
            let ancestor = self.ancestor.clone();
            let mut span = self.build(builder, Some(&ancestor), Some(self.workflow.span_id()));
            span.set_status(match event.status {
                InvocationEndStatus::Failed => {
                    Status::error(message.unwrap_or_default().to_owned())
                }
                _ => Status::Ok,
            });
            span.end_with_timestamp(end);
        }
    }

    /// Flushes the provider, waiting at most the timeout.
    fn flush(&self) {
        let Some(provider) = self.flush.clone() else {
            return;
        };
        let (done, flushed) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("durable-yield-otel-flush".into())
            .spawn(move || {
                let _ = done.send(provider.force_flush());
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "could not flush the OpenTelemetry spans");
            return;
        }
        match flushed.recv_timeout(self.flush_timeout) {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(%error, "flushing the OpenTelemetry spans failed");
            }
            Err(_) => tracing::warn!(
                timeout = ?self.flush_timeout,
                "flushing the OpenTelemetry spans did not finish in time; the invocation \
                 ends without waiting for it"
            ),
        }
    }
}

impl<T> InvocationHooks for OtelHooks<T>
where
    T: Tracer + Send + Sync + 'static,
    T::Span: Send + Sync + 'static,
{
    fn on_invocation_start(&mut self, start: &InvocationStart<'_>) -> HookResult {
        // A trace header's `Sampled=0` leaves the execution out: no span at
        // all, the synthetic root neither (every span follows its parent's
        // flags, which say so).
        if !self.ancestor.is_remote() && self.decided != Some(false) {
            // The synthetic root, a zero-length span at the execution's
            // start, written by every invocation (the same id each time: a
            // lost flush is made good by the next invocation). Without a
            // trace header to decide, the sampler's decision on it is the
            // invocation's one decision: every other span follows it (its
            // parent's flags), as in AWS's plugin, so that a trace is whole
            // or absent. With the header's `Sampled=1` the other spans are
            // sampled whatever the sampler makes of the root (AWS's plugin
            // overrides the sampler for the root too; OpenTelemetry's Rust
            // SDK lets no one but the sampler decide, so a sampler that
            // drops roots drops this one).
            let at = self.execution_started_at.map_or(start.time, millis_to_time);
            let attributes = vec![
                KeyValue::new("durable.execution.arn", self.arn.clone()),
                KeyValue::new("durable.execution.synthetic_root", true),
            ];
            let builder = SpanBuilder::from_name("DurableExecutionRoot")
                .with_kind(SpanKind::Internal)
                .with_start_time(at)
                .with_attributes(attributes);
            let mut root = self.build(builder, None, Some(self.ancestor.span_id()));
            let sampled = root.span_context().is_sampled();
            root.end_with_timestamp(at);
            if !sampled && self.decided.is_none() {
                self.not_sampled();
            }
        }
        let at = self.instant(start.time);
        let mut attributes = self.base();
        attributes.push(KeyValue::new(
            "durable.invocation.first",
            start.first_invocation,
        ));
        let builder = SpanBuilder::from_name("Invocation")
            .with_kind(SpanKind::Internal)
            .with_start_time(at)
            .with_attributes(attributes);
        // As AWS's plugins do: under the span current around the
        // invocation when it is on the execution's trace (a Lambda
        // instrumentation's invocation span), else under the execution's
        // ancestor, beside `Workflow`.
        let ambient = Context::current().span().span_context().clone();
        let parent = if ambient.is_valid() && ambient.trace_id() == self.workflow.trace_id() {
            ambient
        } else {
            self.ancestor.clone()
        };
        let span = self.build(builder, Some(&parent), None);
        let context = span.span_context().clone();
        self.invocation = Some((span, context));
        Ok(())
    }

    /// The span user code runs under, made the current OpenTelemetry
    /// context around each of its polls, as AWS's plugins make it: the
    /// attempt's span around a step body, the context's span around a
    /// context's code, the `Invocation` span around the rest of the
    /// workflow's code. Spans user code starts nest under it, and the
    /// JSON log lines it writes carry its ids.
    fn scope(&mut self, code: UserCode<'_>) -> Option<Arc<dyn Scope>> {
        let context = match code {
            UserCode::Attempt(event) => self.attempts.get(event.id)?.span_context().clone(),
            UserCode::Workflow => self.invocation.as_ref()?.1.clone(),
            UserCode::Context(event) => self.operations.get(event.id)?.context.clone(),
        };
        context
            .is_valid()
            .then(|| Arc::new(Current(Context::new().with_remote_span_context(context))) as _)
    }

    fn on_operation_start(&mut self, event: &OperationEvent<'_>) -> HookResult {
        self.open(event, event.status, event.replayed);
        Ok(())
    }

    fn on_operation_end(&mut self, event: &OperationEvent<'_>) -> HookResult {
        self.close(event);
        Ok(())
    }

    fn on_attempt_start(&mut self, event: &AttemptEvent<'_>) -> HookResult {
        let at = self.instant(event.time);
        let parent = match self.operations.get(event.id) {
            Some(op) => op.context.clone(),
            None => self.parent_of(event.parent_id),
        };
        let mut attributes = self.identity(
            event.id,
            OperationType::Step,
            Some(event.sub_type),
            event.name,
        );
        attributes.push(KeyValue::new(
            "durable.attempt.number",
            i64::from(event.attempt),
        ));
        let name = format!(
            "{} attempt {}",
            span_name(event.name, event.id),
            event.attempt
        );
        let builder = SpanBuilder::from_name(name)
            .with_kind(SpanKind::Internal)
            .with_start_time(at)
            .with_links(self.links())
            .with_attributes(attributes);
        let span = self.build(builder, Some(&parent), None);
        self.note(Some(*event.id), at);
        if let Some(mut previous) = self.attempts.insert(*event.id, span) {
            previous.end_with_timestamp(at);
        }
        Ok(())
    }

    fn on_attempt_end(&mut self, event: &AttemptEvent<'_>) -> HookResult {
        let at = self.instant(event.time);
        if let (Some(mut span), Some(outcome)) = (self.attempts.remove(event.id), event.outcome) {
            span.set_attribute(KeyValue::new("durable.attempt.outcome", outcome.as_str()));
            span.set_status(match event.error {
                Some(error) => Status::error(error.error_message.clone().unwrap_or_default()),
                None => Status::Ok,
            });
            span.end_with_timestamp(at);
        }
        Ok(())
    }

    fn on_invocation_end(&mut self, event: &InvocationEnd<'_>) -> HookResult {
        self.finish(event);
        self.flush();
        Ok(())
    }

    fn trace_header(&mut self, invoke: &ChainedInvokeStart<'_>) -> Option<String> {
        let span_id = self
            .operations
            .get(invoke.id)
            .map(|op| op.context.span_id())
            .unwrap_or_else(|| operation_span_id(&self.arn, invoke.id));
        Some(trace_header(&self.remote(span_id)))
    }
}

/// The attributes an operation span gets when it closes (set once: a span
/// keeps every value set): its status, and on a finished step its attempt.
fn outcome_attributes(event: &OperationEvent<'_>, status: OperationStatus) -> Vec<KeyValue> {
    let mut attributes = Vec::with_capacity(2);
    attributes.push(KeyValue::new(
        "durable.operation.status",
        status.wire_name(),
    ));
    if status.is_terminal() && event.op_type == OperationType::Step {
        if let Some(attempt) = event.attempt {
            attributes.push(KeyValue::new("durable.attempt.number", i64::from(attempt)));
        }
    }
    attributes
}

/// A span's name: the operation's, else its id (as AWS's plugins name
/// unnamed operations).
fn span_name(name: Option<&str>, id: &OperationId) -> String {
    name.map_or_else(|| id.as_str().to_owned(), str::to_owned)
}

fn span_status(status: OperationStatus, error: Option<&ErrorObject>) -> Status {
    match status {
        OperationStatus::Succeeded => Status::Ok,
        s if s.is_terminal() => Status::error(
            error
                .and_then(|e| e.error_message.clone())
                .unwrap_or_default(),
        ),
        _ => Status::Unset,
    }
}

/// An OpenTelemetry context made current around user code.
struct Current(Context);

impl Scope for Current {
    fn run(&self, code: &mut dyn FnMut()) {
        let _current = self.0.clone().attach();
        code();
    }
}

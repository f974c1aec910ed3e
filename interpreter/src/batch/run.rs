//! The [`Workflow`] methods that run child contexts, maps and parallel
//! operations (their configurations are in the parent module).

use super::*;

/// The execution and CONTEXT operation a context's result is encoded for.
type ContextOf = (Arc<str>, Option<OperationId>);

fn context_of(wf: &Workflow) -> ContextOf {
    (wf.arn(), wf.context_op())
}

/// A context's value, encoded with its codec as the context's result (a
/// codec whose storage is unreachable for a while ends the invocation).
fn encode_value<C: Codec, T: Serialize>(
    codec: &C,
    value: &T,
    what: &str,
    (arn, op): &ContextOf,
) -> Result<Payload, Ended> {
    let cx =
        PayloadContext::with_operation_bytes(arn, op.as_ref().map_or(b"", OperationId::as_bytes));
    Payload::encode(codec, value, &cx).map_err(|e| {
        if e.is_transient() {
            Ended::Unavailable(Box::new(e))
        } else {
            ErrorObject::new("CodecError", format!("the {what} result {e}")).into()
        }
    })
}

/// Wraps a typed body into one that encodes its value with `codec`.
fn encoding<T, C>(codec: C, body: BranchBody<T>, what: &'static str) -> ContextBody
where
    T: Serialize + Send + 'static,
    C: Codec + Clone,
{
    Box::new(move |wf| {
        let context = context_of(&wf);
        let run = body(wf);
        Box::pin(async move {
            let value = run.await?;
            encode_value(&codec, &value, what, &context)
        })
    })
}

impl Workflow {
    /// Runs `body` as a child context named `name`, checkpointing its
    /// result as JSON, and returns the result.
    ///
    /// The body gets its own [`Workflow`] handle; its operations are
    /// recorded as children of one CONTEXT operation (SubType
    /// `RunInChildContext`) and numbered within it, so a child is a unit
    /// of replay: once it succeeded, its recorded result is returned and
    /// neither the body nor its operations run again. If the body returns
    /// an error, the child fails and the error comes back here as a
    /// [`StepError`], which the workflow may handle and go on. A result
    /// over 256 KiB is not checkpointed (`ReplayChildren`): replays re-run
    /// the body over its recorded operations, sending nothing.
    pub async fn child<F, Fut, T, E>(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        body: F,
    ) -> Result<T, StepError>
    where
        F: FnOnce(Workflow) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Serialize + DeserializeOwned + Send + 'static,
        E: Into<BoxError>,
    {
        self.child_with(ChildConfig::named(name), body).await
    }

    /// Runs `body` as a child context configured by `config` (name,
    /// codec); otherwise like [`Workflow::child`].
    pub async fn child_with<C, S, F, Fut, T, E>(
        &mut self,
        config: ChildConfig<C, S>,
        body: F,
    ) -> Result<T, StepError>
    where
        C: Codec + Clone,
        S: Summarize<T>,
        F: FnOnce(Workflow) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Serialize + DeserializeOwned + Send + 'static,
        E: Into<BoxError>,
    {
        self.run_child(config, false, body).await
    }

    /// Runs `body` as a child context configured by `config`: a child
    /// context (`RunInChildContext`), or a wait-for-callback's context
    /// (`WaitForCallback`), unless the config gives a subtype.
    pub(crate) async fn run_child<C, S, F, Fut, T, E>(
        &mut self,
        config: ChildConfig<C, S>,
        wait_for_callback: bool,
        body: F,
    ) -> Result<T, StepError>
    where
        C: Codec + Clone,
        S: Summarize<T>,
        F: FnOnce(Workflow) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Serialize + DeserializeOwned + Send + 'static,
        E: Into<BoxError>,
    {
        let ChildConfig {
            name,
            codec,
            is_virtual,
            sub_type,
            summary,
        } = config;
        // What errors name it.
        let kind = if wait_for_callback {
            "wait for callback"
        } else {
            "child context"
        };
        let encoder = codec.clone();
        let body: ContextBody = Box::new(move |wf| {
            let context = context_of(&wf);
            Box::pin(async move {
                let value = body(wf).await.map_err(error_object_from)?;
                let payload = encode_value(&encoder, &value, kind, &context)?;
                // Too large to checkpoint: what is checkpointed instead.
                if summary.active() && crate::limits::too_large_for_a_context(payload.as_str()) {
                    if let Some(text) = summary.summarize(&value) {
                        crate::protocol::pending_summary::set(text);
                    }
                }
                Ok(payload)
            })
        });
        // A custom subtype, or the SDK's (see `Request::Child`).
        let sub_type = sub_type.map(|s| Arc::from(&*s));
        let request = Request::Child {
            name: name.clone(),
            sub_type,
            wait_for_callback,
            body,
            is_virtual,
        };
        // Settled by this statement, so that only the boxed abort is held
        // across the (fatal) await below.
        let settled = match self.yielder.yield_(request).await {
            Response::Step(Ok(payload)) => self.decode(&codec, &payload).map(Ok),
            Response::Step(Err(error)) => Ok(Err(StepError::new(kind, name, *error))),
            _ => Err(Fatal::Protocol(crate::workflow::UNEXPECTED_RESPONSE)),
        };
        match settled {
            Ok(result) => result,
            Err(fatal) => self.abort(fatal).await,
        }
    }

    /// Runs `f` over every item, each in its own child context, named
    /// `name`, with the defaults of [`MapConfig`]; returns one
    /// [`BatchItem`](crate::batch_result::BatchItem) per item, in item order.
    ///
    /// `f` gets the item's [`Workflow`] handle, the item and its index.
    /// Items run concurrently: a step body of one item runs while another
    /// item's runs, and an item that waits does not hold the others back.
    /// The error is the map operation's own (its result could not be
    /// encoded); failed items are items of the result.
    pub async fn map<I, F, Fut, T, E>(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        items: impl IntoIterator<Item = I>,
        f: F,
    ) -> Result<BatchResult<T>, StepError>
    where
        I: Send + 'static,
        F: Fn(Workflow, I, usize) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Serialize + DeserializeOwned + Send + 'static,
        E: Into<BoxError>,
    {
        self.map_with(MapConfig::named(name), items, f).await
    }

    /// [`Workflow::map`] configured by `config`: concurrency, completion
    /// policy, codecs, item names.
    pub async fn map_with<I, C, B, S, F, Fut, T, E>(
        &mut self,
        config: MapConfig<I, C, B, S>,
        items: impl IntoIterator<Item = I>,
        f: F,
    ) -> Result<BatchResult<T>, StepError>
    where
        I: Send + 'static,
        C: Codec + Clone,
        B: Codec + Clone,
        S: Summarize<BatchResult<T>>,
        F: Fn(Workflow, I, usize) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Serialize + DeserializeOwned + Send + 'static,
        E: Into<BoxError>,
    {
        let f = Arc::new(f);
        let items = items.into_iter();
        let mut names = Vec::with_capacity(items.size_hint().0);
        let mut slots = Vec::with_capacity(items.size_hint().0);
        let namer = config.namer.as_ref();
        for (index, item) in items.enumerate() {
            names.push(namer.map(|namer| Cow::Owned(namer(&item, index))));
            slots.push(Some(item));
        }
        let codec = config.item_codec.clone();
        // An item's body is built when it starts, not for an item (or a
        // map) that replays from its record.
        let bodies = Bodies::Items(Box::new(move |index| {
            let item = slots.get_mut(index)?.take()?;
            let (f, codec) = (f.clone(), codec.clone());
            // One closure and one future per item: the body and the
            // encoding of its value together.
            let body: ContextBody = Box::new(move |wf| {
                let context = context_of(&wf);
                Box::pin(async move {
                    let value = f(wf, item, index).await.map_err(error_object_from)?;
                    encode_value(&codec, &value, "map item", &context)
                })
            });
            Some(body)
        }));
        let request = config.shape.request(BatchKind::Map, names, bodies);
        self.batch(
            request,
            &config.item_codec,
            &config.batch_codec,
            &config.summary,
        )
        .await
    }

    /// Runs `branches` concurrently, each in its own child context, as a
    /// parallel operation named `name` with the defaults of
    /// [`ParallelConfig`]; returns one [`BatchItem`](crate::batch_result::BatchItem) per branch, in
    /// branch order.
    pub async fn parallel<T>(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        branches: Vec<Branch<T>>,
    ) -> Result<BatchResult<T>, StepError>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        self.parallel_with(ParallelConfig::named(name), branches)
            .await
    }

    /// [`Workflow::parallel`] configured by `config`.
    pub async fn parallel_with<C, B, S, T>(
        &mut self,
        config: ParallelConfig<C, B, S>,
        branches: Vec<Branch<T>>,
    ) -> Result<BatchResult<T>, StepError>
    where
        C: Codec + Clone,
        B: Codec + Clone,
        S: Summarize<BatchResult<T>>,
        T: Serialize + DeserializeOwned + Send + 'static,
    {
        let (names, bodies) = branches
            .into_iter()
            .map(|branch| {
                let body = encoding(config.item_codec.clone(), branch.body, "parallel branch");
                (branch.name, Some(body))
            })
            .unzip();
        let request = config
            .shape
            .request(BatchKind::Parallel, names, Bodies::Built(bodies));
        self.batch(
            request,
            &config.item_codec,
            &config.batch_codec,
            &config.summary,
        )
        .await
    }

    /// Runs a batch and decodes its result.
    async fn batch<T, C, B, S>(
        &mut self,
        request: BatchRequest,
        item_codec: &C,
        batch_codec: &B,
        summary: &S,
    ) -> Result<BatchResult<T>, StepError>
    where
        T: Serialize + DeserializeOwned,
        C: Codec,
        B: Codec,
        S: Summarize<BatchResult<T>>,
    {
        let name = request.name.clone();
        let kind = match request.kind {
            BatchKind::Map => "map",
            BatchKind::Parallel => "parallel",
        };
        let branches = request.names.len();
        let response = self.yielder.yield_(Request::Batch(Box::new(request))).await;
        let op = answered_op();
        let arn = self.arn();
        let id = op.as_ref().map_or(&b""[..], OperationId::as_bytes);
        let cx = PayloadContext::with_operation_bytes(&arn, id);
        let decode_batch = |payload: &Payload| {
            decode_recorded::<T, B>(batch_codec, payload.as_str(), &cx, branches).map(|mut b| {
                b.name = name.clone();
                // Results of earlier versions listed the branches that
                // never started too.
                b.items.retain(|i| i.status != BatchItemStatus::NotStarted);
                b
            })
        };
        let outcome = match response {
            Response::Batch(BatchReply::Recorded(payload)) => decode_batch(&payload),
            Response::Batch(BatchReply::Rebuilt(raw)) => typed(raw, item_codec, &name, &cx, &op),
            Response::Batch(BatchReply::Failed(error)) => {
                return Err(StepError::new(kind, name, *error));
            }
            Response::Batch(BatchReply::Live(raw)) => {
                // With JSON for the items and the batch (the defaults), the
                // batch result is the items' checkpointed JSON spliced in:
                // decoding it gives exactly the values decoded from the
                // items, so it is neither encoded again nor decoded back.
                let exact = spliced_is_exact::<C, B>();
                let spliced = exact.then(|| splice_json(&raw));
                let built = match typed::<T, C>(raw, item_codec, &name, &cx, &op) {
                    Ok(built) => built,
                    Err(error) => return self.abort(Fatal::Codec(error)).await,
                };
                let encoded = match spliced {
                    Some(json) => Ok(Payload::from(json)),
                    // The items are recorded: the next invocation replays
                    // them and encodes the result again.
                    None => match Payload::encode(batch_codec, &built, &cx) {
                        Err(error) if error.is_transient() => {
                            return self.abort(Fatal::Codec(error)).await;
                        }
                        encoded => encoded.map_err(|e| {
                            Box::new(ErrorObject::new(
                                "CodecError",
                                format!("the {kind} result {e}"),
                            ))
                        }),
                    },
                };
                // Too large to checkpoint: the caller's text for the
                // summary checkpointed instead.
                let text = match &encoded {
                    Ok(p)
                        if summary.active()
                            && crate::limits::too_large_for_a_context(p.as_str()) =>
                    {
                        summary.summarize(&built)
                    }
                    _ => None,
                };
                match self
                    .yielder
                    .yield_(Request::CloseBatch(encoded, text))
                    .await
                {
                    Response::Step(Ok(_)) if exact => Ok(built),
                    // Decoded from what was checkpointed, as a replay will.
                    Response::Step(Ok(payload)) => decode_batch(&payload),
                    // Too large to checkpoint: rebuilt the same way on replay.
                    Response::Continue => Ok(built),
                    Response::Step(Err(error)) => return Err(StepError::new(kind, name, *error)),
                    _ => return self.protocol_violation().await,
                }
            }
            _ => return self.protocol_violation().await,
        };
        match outcome {
            Ok(result) => Ok(result),
            Err(error) => self.abort(Fatal::Codec(error)).await,
        }
    }
}

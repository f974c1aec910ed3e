//! The checkpointer: sends the interpreter's updates to the service in
//! order, rotating the token, splitting requests at the limits, holding
//! updates back as `CheckpointBatching` allows, paging in large answers,
//! and classifying failed calls (fail the execution, or retry the
//! invocation).

use super::*;
use std::ops::DerefMut;

/// The service call that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Call {
    Checkpoint,
    GetState,
}

impl Call {
    pub(super) fn name(self) -> &'static str {
        match self {
            Call::Checkpoint => "CheckpointDurableExecution",
            Call::GetState => "GetDurableExecutionState",
        }
    }
}

/// A failed call to the service, with the call.
#[derive(Debug)]
pub(super) struct CallError {
    pub(super) call: Call,
    pub(super) error: ServiceError,
}

pub(super) trait During<T> {
    fn during(self, call: Call) -> Result<T, CallError>;
}

impl<T> During<T> for Result<T, ServiceError> {
    fn during(self, call: Call) -> Result<T, CallError> {
        self.map_err(|error| CallError { call, error })
    }
}

/// A rejected request fails the execution (`CheckpointRejected`, or
/// `ExecutionStateRejected` for a state page), naming the call; anything
/// else fails the invocation, so that the service invokes again.
pub(super) fn fail_or_retry(error: CallError) -> Result<InvocationOutput, InvocationError> {
    let CallError { call, error } = error;
    match error {
        ServiceError::Rejected(message) => {
            let error_type = match call {
                Call::Checkpoint => "CheckpointRejected",
                Call::GetState => "ExecutionStateRejected",
            };
            tracing::warn!(call = call.name(), %message, "request rejected; failing the execution");
            Ok(failed(ErrorObject::new(
                error_type,
                format!("{} was rejected by the service: {message}", call.name()),
            )))
        }
        other => {
            tracing::warn!(call = call.name(), error = %other, "request failed; failing the invocation");
            Err(InvocationError(other))
        }
    }
}

pub(super) enum Flushed {
    /// The operations the responses carried.
    Sent(Delta),
    /// The service withheld the next token: stop checkpointing.
    Revoked,
}

/// The operations the responses to one flush carried, one list per
/// request, in order: handed to the interpreter as they came (a map's
/// flush can be a hundred requests; joined, each operation was copied
/// once more).
#[derive(Default)]
pub(super) struct Delta {
    /// Those of the requests before the last.
    pub(super) earlier: Vec<Vec<Operation>>,
    /// Those of the last request.
    pub(super) last: Vec<Operation>,
}

impl Delta {
    fn of(last: Vec<Operation>) -> Self {
        Delta {
            earlier: Vec::new(),
            last,
        }
    }

    /// Adds the operations of a later request.
    fn append(&mut self, later: Delta) {
        for operations in later.earlier.into_iter().chain([later.last]) {
            let last = std::mem::replace(&mut self.last, operations);
            if !last.is_empty() {
                self.earlier.push(last);
            }
        }
    }

    /// Whether no operation came back.
    pub(super) fn is_empty(&self) -> bool {
        self.last.is_empty() && self.earlier.iter().all(Vec::is_empty)
    }

    /// Every operation, in order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Operation> {
        self.earlier.iter().flatten().chain(&self.last)
    }

    /// Merges the operations of the requests before the last into the
    /// interpreter's history, and hands back the last request's (for
    /// [`Interpreter::checkpoint_finished`] or
    /// [`Interpreter::merge_operations`]).
    #[inline]
    pub(super) fn merge_earlier(self, interpreter: &mut Interpreter) -> Vec<Operation> {
        if !self.earlier.is_empty() {
            for operations in self.earlier {
                interpreter.merge_operations(operations);
            }
        }
        self.last
    }
}

/// Sends checkpoints for one invocation: rotates the token, splits and
/// (optionally) holds back updates, pages in large responses.
pub(super) struct Checkpointer<'a, S: ?Sized> {
    pub(super) service: &'a S,
    pub(super) arn: &'a str,
    pub(super) token: String,
    pub(super) config: &'a CheckpointBatching,
    pub(super) held: Vec<OperationUpdate>,
    /// The size bound of each held update (`approx_size`, computed once).
    pub(super) held_sizes: Vec<usize>,
    pub(super) held_bytes: usize,
    pub(super) held_since: Option<Millis>,
    pub(super) requests: u64,
}

/// Where [`Checkpointer::page_in`] appends the pages: a vector of
/// operations, or a history (indexed as each page comes, see
/// `History::append_in_place`).
pub(super) trait Pages {
    /// The vector to append one page to, for as long as it is held.
    fn lend(&mut self) -> impl DerefMut<Target = Vec<Operation>>;
}

impl Pages for Vec<Operation> {
    fn lend(&mut self) -> impl DerefMut<Target = Vec<Operation>> {
        self
    }
}

impl Pages for History {
    fn lend(&mut self) -> impl DerefMut<Target = Vec<Operation>> {
        self.append_in_place()
    }
}

impl<S: DurableService + ?Sized> Checkpointer<'_, S> {
    /// Loads the pages after `marker` with `GetDurableExecutionState` onto
    /// `pages` (the history, which indexes each page as it comes, or a
    /// checkpoint response's operations). A
    /// marker seen before (the pages loop) or more than
    /// [`MAX_STATE_PAGES`] pages fail the invocation instead of looping
    /// until the Lambda timeout.
    pub(super) async fn page_in(
        &mut self,
        mut marker: Option<String>,
        pages: &mut impl Pages,
    ) -> Result<(), CallError> {
        let mut seen = HashSet::new();
        while let Some(m) = marker.take().filter(|m| !m.is_empty()) {
            let invalid = |what: String| CallError {
                call: Call::GetState,
                error: ServiceError::InvalidResponse(what),
            };
            if seen.len() >= MAX_STATE_PAGES {
                return Err(invalid(format!(
                    "the execution state did not end after {MAX_STATE_PAGES} pages"
                )));
            }
            if !seen.insert(m.clone()) {
                return Err(invalid(format!(
                    "the execution state pages loop: marker {m:?} came back after {} pages",
                    seen.len()
                )));
            }
            let mut operations = pages.lend();
            marker = self
                .service
                .get_state_into(self.arn, &self.token, &m, &mut operations)
                .await
                .during(Call::GetState)?;
        }
        Ok(())
    }

    /// Whether held updates have waited long enough.
    pub(super) fn is_due(&self) -> bool {
        let delay = Millis::try_from(self.config.max_delay.as_millis()).unwrap_or(Millis::MAX);
        self.held_since
            .is_some_and(|since| self.service.now().saturating_sub(since) >= delay)
    }

    /// Takes `updates` for sending: sends them (and everything held) now,
    /// or holds them back and acknowledges at once with no operations.
    pub(super) async fn submit(
        &mut self,
        updates: Vec<OperationUpdate>,
        wait_for_response: bool,
    ) -> Result<Flushed, CallError> {
        let now = wait_for_response || self.config.max_delay.is_zero();
        if self.held.is_empty() && now && updates.len() <= self.config.max_updates {
            let bytes: usize = updates.iter().map(OperationUpdate::approx_size).sum();
            if bytes <= self.config.max_bytes {
                // The common case: nothing held, one request, sent as it is.
                return self.send(updates).await;
            }
        }
        let first = self.held_sizes.len();
        self.held_sizes
            .extend(updates.iter().map(OperationUpdate::approx_size));
        self.held_bytes += self.held_sizes[first..].iter().sum::<usize>();
        if self.held.is_empty() {
            self.held = updates;
        } else {
            self.held.extend(updates);
        }
        if self.held_since.is_none() {
            self.held_since = Some(self.service.now());
        }
        let full =
            self.held.len() >= self.config.max_updates || self.held_bytes >= self.config.max_bytes;
        if now || full || self.is_due() {
            self.flush().await
        } else {
            Ok(Flushed::Sent(Delta::default()))
        }
    }

    /// Sends everything held, in order, in as few requests as the limits
    /// allow.
    pub(super) async fn flush(&mut self) -> Result<Flushed, CallError> {
        self.held_since = None;
        let bytes = std::mem::take(&mut self.held_bytes);
        let held = std::mem::take(&mut self.held);
        let mut sizes = std::mem::take(&mut self.held_sizes);
        if held.len() <= self.config.max_updates && bytes <= self.config.max_bytes {
            // The common case: one request (or none), sent as it is.
            sizes.clear();
            self.held_sizes = sizes;
            if held.is_empty() {
                return Ok(Flushed::Sent(Delta::default()));
            }
            return self.send(held).await;
        }
        let mut delta = Delta::default();
        let mut held = held.into_iter().peekable();
        let mut at = 0;
        while held.peek().is_some() {
            let mut request = Vec::with_capacity(self.config.max_updates.min(held.len()));
            let mut size = 0;
            while let Some(next) = held.peek() {
                let next_size = sizes.get(at).copied().unwrap_or_else(|| next.approx_size());
                let fits = request.len() < self.config.max_updates
                    && size + next_size <= self.config.max_bytes;
                if !request.is_empty() && !fits {
                    break;
                }
                size += next_size;
                at += 1;
                request.extend(held.next());
            }
            match self.send(request).await? {
                Flushed::Sent(sent) => delta.append(sent),
                Flushed::Revoked => return Ok(Flushed::Revoked),
            }
        }
        // Cleared, its allocation kept for the next updates held.
        sizes.clear();
        self.held_sizes = sizes;
        Ok(Flushed::Sent(delta))
    }

    /// One `CheckpointDurableExecution` request.
    pub(super) async fn send(
        &mut self,
        updates: Vec<OperationUpdate>,
    ) -> Result<Flushed, CallError> {
        self.requests += 1;
        tracing::trace!(updates = updates.len(), "checkpoint");
        let response = self
            .service
            .checkpoint(self.arn, &self.token, updates)
            .await
            .during(Call::Checkpoint)?;
        let Some(next) = response.checkpoint_token else {
            tracing::info!("the service withheld the checkpoint token; suspending");
            return Ok(Flushed::Revoked);
        };
        self.token = next;
        let mut operations = response.operations;
        self.page_in(response.next_marker, &mut operations).await?;
        Ok(Flushed::Sent(Delta::of(operations)))
    }

    /// Records a result too large for the response with an EXECUTION
    /// SUCCEED checkpoint; the response then carries an empty result.
    pub(super) async fn complete_execution(
        &mut self,
        execution: Option<OperationId>,
        payload: Payload,
    ) -> Result<InvocationOutput, CallError> {
        let Some(id) = execution else {
            return Ok(failed(ErrorObject::new(
                "InternalError",
                "no EXECUTION operation to record the large result on",
            )));
        };
        let mut update =
            OperationUpdate::new(id, OperationType::Execution, OperationAction::Succeed);
        update.payload = Some(payload);
        // Whether or not a next token comes back, the execution is closed.
        self.send(vec![update]).await?;
        Ok(succeeded(Payload::from("")))
    }
}

//! What a map or parallel operation ends with: its completion policy, the
//! status and result of each branch, and how the batch is recorded.

use std::any::TypeId;
use std::borrow::Cow;
use std::fmt;

use durable_yield_codecs::{Codec, CodecError, Json, PayloadContext, from_payload};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::id::IdGenerator;
use crate::model::OperationId;

use crate::failure::StepError;
use crate::model::{ErrorObject, Payload};

/// Why a map or parallel operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum CompletionReason {
    /// Every branch finished.
    AllCompleted,
    /// Enough branches succeeded.
    MinSuccessfulReached,
    /// More branches failed than tolerated.
    FailureToleranceExceeded,
    /// A custom predicate ended the batch as a success
    /// ([`CompletionPolicy::should_complete`](crate::CompletionPolicy::should_complete)).
    CustomCompletionSucceeded,
    /// A custom predicate ended the batch as a failure
    /// ([`CompletionPolicy::should_complete`](crate::CompletionPolicy::should_complete)).
    CustomCompletionFailed,
}

impl CompletionReason {
    /// The wire name: `ALL_COMPLETED`, `MIN_SUCCESSFUL_REACHED`,
    /// `FAILURE_TOLERANCE_EXCEEDED`, `CUSTOM_COMPLETION_SUCCEEDED` or
    /// `CUSTOM_COMPLETION_FAILED` (as AWS's SDKs report it).
    pub fn as_str(self) -> &'static str {
        match self {
            CompletionReason::AllCompleted => "ALL_COMPLETED",
            CompletionReason::MinSuccessfulReached => "MIN_SUCCESSFUL_REACHED",
            CompletionReason::FailureToleranceExceeded => "FAILURE_TOLERANCE_EXCEEDED",
            CompletionReason::CustomCompletionSucceeded => "CUSTOM_COMPLETION_SUCCEEDED",
            CompletionReason::CustomCompletionFailed => "CUSTOM_COMPLETION_FAILED",
        }
    }

    /// How a batch that ended for this reason stands, `has_failures` telling
    /// whether a branch failed: a custom decision says it, otherwise any
    /// failed branch makes it `FAILED` (as AWS's SDKs compute it).
    pub(crate) fn batch_status(self, has_failures: bool) -> BatchStatus {
        match self {
            CompletionReason::CustomCompletionSucceeded => BatchStatus::Succeeded,
            CompletionReason::CustomCompletionFailed => BatchStatus::Failed,
            _ if has_failures => BatchStatus::Failed,
            _ => BatchStatus::Succeeded,
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        [
            CompletionReason::AllCompleted,
            CompletionReason::MinSuccessfulReached,
            CompletionReason::FailureToleranceExceeded,
            CompletionReason::CustomCompletionSucceeded,
            CompletionReason::CustomCompletionFailed,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

impl fmt::Display for CompletionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one branch of a batch stands at the batch's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum BatchItemStatus {
    /// It returned a value.
    Succeeded,
    /// It returned an error.
    Failed,
    /// It had started when the batch ended early, and was abandoned.
    Started,
    /// The batch ended before it started. Only read from results that
    /// earlier versions checkpointed, and dropped when read: a
    /// [`BatchResult`] holds the branches that started.
    NotStarted,
}

/// How a map or parallel operation ended, as AWS's SDKs compute it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BatchStatus {
    /// No branch failed, or a custom predicate ended the batch as a
    /// success ([`CompletionReason::CustomCompletionSucceeded`]).
    Succeeded,
    /// At least one branch failed, or a custom predicate ended the batch
    /// as a failure ([`CompletionReason::CustomCompletionFailed`]). The
    /// batch operation itself still succeeded: its failures are items of
    /// the result.
    Failed,
}

impl BatchStatus {
    /// The wire name: `SUCCEEDED` or `FAILED`.
    pub fn as_str(self) -> &'static str {
        match self {
            BatchStatus::Succeeded => "SUCCEEDED",
            BatchStatus::Failed => "FAILED",
        }
    }
}

impl fmt::Display for BatchStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error as a batch result records it: every field written, so that
/// codecs that are not self-describing (bincode) can read it back.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ItemError {
    pub(crate) error_type: Option<String>,
    pub(crate) error_message: Option<String>,
    pub(crate) error_data: Option<String>,
    pub(crate) stack_trace: Option<Vec<String>>,
}

mod item_error {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        error: &Option<ErrorObject>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        error
            .as_ref()
            .map(|e| ItemError {
                error_type: e.error_type.clone(),
                error_message: e.error_message.clone(),
                error_data: e.error_data.clone(),
                stack_trace: e.stack_trace.clone(),
            })
            .serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<ErrorObject>, D::Error> {
        Ok(Option::<ItemError>::deserialize(d)?.map(|e| ErrorObject {
            error_type: e.error_type,
            error_message: e.error_message,
            error_data: e.error_data,
            stack_trace: e.stack_trace,
        }))
    }
}

/// One branch of a [`BatchResult`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct BatchItem<T> {
    /// The branch's index (the item's position; the branch's place in the list).
    pub index: usize,
    /// How it stands.
    pub status: BatchItemStatus,
    /// Its value, when it succeeded.
    pub result: Option<T>,
    /// Its error, when it failed.
    #[serde(with = "item_error")]
    pub error: Option<ErrorObject>,
}

/// Read as written, but for the value of a branch that succeeded with
/// one that a self-describing format writes as `null` (`()`, `None`, a
/// `null` JSON value): `Some` of that value, as the run that recorded it
/// had it, not `None` (which JSON and MessagePack cannot tell from it).
impl<'de, T: Deserialize<'de>> Deserialize<'de> for BatchItem<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename = "BatchItem")]
        struct Written<T> {
            index: usize,
            status: BatchItemStatus,
            result: Option<T>,
            #[serde(with = "item_error")]
            error: Option<ErrorObject>,
        }
        let Written {
            index,
            status,
            result,
            error,
        } = Written::<T>::deserialize(d)?;
        Ok(BatchItem {
            index,
            status,
            result: result.or_else(|| succeeded_null(status)),
            error,
        })
    }
}

/// The value written as `null` of a branch with this status: for one that
/// succeeded, its value as decoded from `null` (if the type has one);
/// for any other, none.
fn succeeded_null<'de, T: Deserialize<'de>>(status: BatchItemStatus) -> Option<T> {
    if status != BatchItemStatus::Succeeded {
        return None;
    }
    let null = serde::de::value::UnitDeserializer::<serde::de::value::Error>::new();
    T::deserialize(null).ok()
}

/// The outcome of a map or parallel operation: one item per branch that
/// started, in index order (whatever order they finished in), and why it
/// ended. Branches start in index order, so when the batch ends early the
/// branches left out are those after the last item.
///
/// Checkpointed with the batch codec as
/// `{"all":[{"index":0,"status":"SUCCEEDED","result":…,"error":null},…],"completionReason":"ALL_COMPLETED"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchResult<T> {
    #[serde(rename = "all")]
    pub(crate) items: Vec<BatchItem<T>>,
    #[serde(rename = "completionReason")]
    pub(crate) completion_reason: CompletionReason,
    #[serde(skip)]
    pub(crate) name: Option<Cow<'static, str>>,
}

impl<T> BatchResult<T> {
    /// Every branch that started, in index order.
    pub fn items(&self) -> &[BatchItem<T>] {
        &self.items
    }
    /// Why the batch ended.
    pub fn completion_reason(&self) -> CompletionReason {
        self.completion_reason
    }
    /// [`BatchStatus::Failed`] if any branch failed, else
    /// [`BatchStatus::Succeeded`] (as AWS's SDKs report a batch); when a
    /// custom predicate ended the batch, what it decided.
    pub fn status(&self) -> BatchStatus {
        self.completion_reason.batch_status(self.has_failures())
    }
    /// The number of branches that started (as AWS's SDKs count a
    /// batch's total): those that finished and those abandoned when the
    /// batch ended early. Branches that never started are not counted.
    pub fn total_count(&self) -> usize {
        self.items.len()
    }
    /// How many branches were still running when the batch ended early
    /// (abandoned, [`BatchItemStatus::Started`]).
    pub fn started_count(&self) -> usize {
        self.count(BatchItemStatus::Started)
    }
    /// How many branches have this status.
    pub fn count(&self, status: BatchItemStatus) -> usize {
        self.items.iter().filter(|i| i.status == status).count()
    }
    /// How many branches succeeded.
    pub fn success_count(&self) -> usize {
        self.count(BatchItemStatus::Succeeded)
    }
    /// How many branches failed.
    pub fn failure_count(&self) -> usize {
        self.count(BatchItemStatus::Failed)
    }
    /// Whether any branch failed.
    pub fn has_failures(&self) -> bool {
        self.items
            .iter()
            .any(|i| i.status == BatchItemStatus::Failed)
    }
    /// The values of the branches that succeeded, in index order.
    pub fn successes(&self) -> impl Iterator<Item = &T> {
        self.items.iter().filter_map(|i| i.result.as_ref())
    }
    /// The errors of the branches that failed, with their indexes.
    pub fn errors(&self) -> impl Iterator<Item = (usize, &ErrorObject)> {
        self.items
            .iter()
            .filter_map(|i| i.error.as_ref().map(|e| (i.index, e)))
    }
    /// The values of the branches that succeeded, in index order, or the
    /// error of the first (lowest-index) branch that failed. Branches that
    /// never finished (the batch ended early) are left out. When a custom
    /// predicate ended the batch as failed and no branch failed, the error
    /// is a `BatchCompletionError` (as AWS's SDKs' `throw_if_error`
    /// raises).
    pub fn into_values(self) -> Result<Vec<T>, StepError> {
        let kind = "batch item";
        let mut values = Vec::with_capacity(self.items.len());
        for item in self.items {
            if let Some(error) = item.error {
                let name = match &self.name {
                    Some(n) => format!("{n}[{}]", item.index),
                    None => format!("[{}]", item.index),
                };
                return Err(StepError::new(kind, Some(name.into()), error));
            }
            values.extend(item.result);
        }
        if self.completion_reason == CompletionReason::CustomCompletionFailed {
            let reason = self.completion_reason;
            return Err(StepError::new(
                "batch",
                self.name,
                ErrorObject::new(
                    "BatchCompletionError",
                    format!("Batch completed as failed by should_complete ({reason})"),
                ),
            ));
        }
        Ok(values)
    }
}

/// A batch's outcome before its values are decoded.
pub(crate) struct RawBatch {
    pub(crate) items: Vec<RawItem>,
    pub(crate) reason: CompletionReason,
}

/// One branch of a [`RawBatch`].
pub(crate) struct RawItem {
    pub(crate) status: BatchItemStatus,
    pub(crate) result: Option<Payload>,
    pub(crate) error: Option<ErrorObject>,
}

/// What is checkpointed instead of a batch result too large to
/// checkpoint (plain JSON, the shape AWS's other SDKs write).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BatchSummary {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) total_count: usize,
    pub(crate) completion_reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) started_indexes: Option<Vec<usize>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) completed_indexes: Option<Vec<usize>>,
    pub(crate) started_count: usize,
    pub(crate) success_count: usize,
    pub(crate) failure_count: usize,
    pub(crate) status: String,
    /// The caller's text (`MapConfig::summary`), stored as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) summary: Option<String>,
}

impl BatchSummary {
    /// The indexes of the branches that were started but never finished,
    /// sorted.
    pub(crate) fn started(&self) -> Option<Vec<usize>> {
        let mut started = match (&self.started_indexes, &self.completed_indexes) {
            (Some(started), _) => started.clone(),
            (None, Some(completed)) => {
                let mut completed = completed.clone();
                completed.sort_unstable();
                (0..self.total_count)
                    .filter(|i| completed.binary_search(i).is_err())
                    .collect()
            }
            (None, None) => return None,
        };
        started.sort_unstable();
        Some(started)
    }
}

/// How a map's items or a parallel operation's branches are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Nesting {
    /// Each item or branch is a CONTEXT operation of its own
    /// (`MapIteration` / `ParallelBranch`) holding its operations; a
    /// finished branch is replayed from its record. The default.
    #[default]
    Nested,
    /// Items and branches record no CONTEXT: their operations are children
    /// of the map or parallel operation, with ids of the branch's own
    /// namespace (`H("<branch id>-<n>")`, the branch id being
    /// `H("<map id>-<index>")`), as AWS's SDKs record `NestingType.FLAT`.
    /// Fewer operations and checkpoints; the price: while the batch is
    /// unfinished, each invocation runs every branch's code again (its
    /// operations replay from their records).
    Flat,
}

/// Whether the batch payload is the items' JSON spliced together (see
/// [`splice_json`]), so that the values decoded from the items are those a
/// replay decodes from the batch.
pub(crate) fn spliced_is_exact<C: Codec, B: Codec>() -> bool {
    is_json::<C>() && is_json::<B>()
}

/// Whether the codec is the default JSON one.
fn is_json<C: Codec>() -> bool {
    TypeId::of::<C>() == TypeId::of::<Json>()
}

/// A recorded batch result of at most `branches` items, decoded with the
/// batch codec `codec`: this SDK's JSON by [`from_json`], else the codec.
pub(crate) fn decode_recorded<T: DeserializeOwned, B: Codec>(
    codec: &B,
    payload: &str,
    cx: &PayloadContext<'_>,
    branches: usize,
) -> Result<BatchResult<T>, CodecError> {
    let fast = is_json::<B>().then(|| from_json(payload, branches));
    fast.flatten()
        .map_or_else(|| from_payload(codec, payload, cx), Ok)
}

/// The JSON of a [`BatchResult`] whose items were checkpointed as JSON:
/// each item's payload (compact JSON text, as the `Json` codec writes it)
/// is the `result` as it is; the same text `serde_json` writes for the
/// decoded batch.
pub(crate) fn splice_json(raw: &RawBatch) -> String {
    let size: usize = raw
        .items
        .iter()
        .map(|i| 64 + i.result.as_ref().map_or(4, Payload::len))
        .sum();
    let mut out = String::with_capacity(size + 64);
    out.push_str("{\"all\":[");
    for (index, item) in raw.items.iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        let status = match item.status {
            BatchItemStatus::Succeeded => "SUCCEEDED",
            BatchItemStatus::Failed => "FAILED",
            BatchItemStatus::Started => "STARTED",
            BatchItemStatus::NotStarted => "NOT_STARTED",
        };
        out.push_str("{\"index\":");
        push_decimal(&mut out, index as u64);
        out.push_str(",\"status\":\"");
        out.push_str(status);
        out.push_str("\",\"result\":");
        match (&item.status, &item.result) {
            (BatchItemStatus::Succeeded, Some(p)) => out.push_str(p.as_str()),
            _ => out.push_str("null"),
        }
        out.push_str(",\"error\":");
        let error = item.error.as_ref().map(|e| ItemError {
            error_type: e.error_type.clone(),
            error_message: e.error_message.clone(),
            error_data: e.error_data.clone(),
            stack_trace: e.stack_trace.clone(),
        });
        match error.and_then(|e| serde_json::to_string(&e).ok()) {
            Some(json) => out.push_str(&json),
            None => out.push_str("null"),
        }
        out.push('}');
    }
    out.push_str("],\"completionReason\":\"");
    out.push_str(raw.reason.as_str());
    out.push_str("\"}");
    out
}

/// Appends `n` in decimal to `out`.
pub(crate) fn push_decimal(out: &mut String, n: u64) {
    let mut digits = [0u8; 20];
    let len = crate::id::write_decimal(&mut digits, n);
    // Only ASCII digits were written.
    out.extend(digits[..len].iter().map(|&d| char::from(d)));
}

/// Decodes the branch values of a raw batch with the item codec, each for
/// its branch's CONTEXT operation.
pub(crate) fn typed<T: DeserializeOwned, C: Codec>(
    raw: RawBatch,
    codec: &C,
    name: &Option<Cow<'static, str>>,
    batch: &PayloadContext<'_>,
    batch_op: &Option<OperationId>,
) -> Result<BatchResult<T>, CodecError> {
    let items = raw
        .items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let decode = |payload: &str| {
                // The branch's id (a hash) only for a codec that reads it.
                let branch = batch_op
                    .filter(|_| codec.binds_context())
                    .map(|op| IdGenerator::branch(&op, index as u64));
                let id = branch.as_ref().map_or(&b""[..], OperationId::as_bytes);
                let cx = PayloadContext::with_operation_bytes(batch.execution_arn(), id);
                from_payload(codec, payload, &cx)
            };
            let result = match (&item.status, item.result) {
                (BatchItemStatus::Succeeded, Some(p)) => Some(decode(p.as_str())?),
                (BatchItemStatus::Succeeded, None) => Some(decode("null")?),
                _ => None,
            };
            Ok(BatchItem {
                index,
                status: item.status,
                result,
                error: item.error,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(BatchResult {
        items,
        completion_reason: raw.reason,
        name: name.clone(),
    })
}

// A map or parallel operation whose result was recorded replays by
// decoding that result, in every later invocation. Through serde's
// derived `Deserialize`, each item's keys and status are parsed as strings
// and matched by name: about 1,800 instructions for an item of 60 bytes.
// The JSON this SDK writes (`serde_json` and `splice_json`, the same text)
// has one shape,
// `{"all":[{"index":0,"status":"SUCCEEDED","result":…,"error":null},…],"completionReason":"…"}`,
// which `from_json` reads by comparing bytes, handing only each value
// (`result`, a non-null `error`) to serde. Any other text (whitespace,
// other key orders or extra keys, as another SDK may write them, or text
// that is not JSON) is left to serde: `from_json` returns `None`, never a
// different result.

/// `text` read as a batch result (room made for `capacity` items), if it
/// has exactly the shape this SDK writes and every value in it decodes;
/// otherwise `None` (serde then gives the same result or the error).
fn from_json<T: DeserializeOwned>(text: &str, capacity: usize) -> Option<BatchResult<T>> {
    let mut p = Cursor {
        text,
        bytes: text.as_bytes(),
        at: 0,
    };
    p.eat(b"{\"all\":[")?;
    let mut items = Vec::with_capacity(capacity);
    if !p.eat_byte(b']') {
        loop {
            p.eat(b"{\"index\":")?;
            let index = p.index()?;
            p.eat(b",\"status\":\"")?;
            let status = p.status()?;
            p.eat(b",\"result\":")?;
            let result = match p.value()? {
                // As `BatchItem`'s `Deserialize` reads it.
                "null" => succeeded_null(status),
                raw => Some(serde_json::from_str::<T>(raw).ok()?),
            };
            p.eat(b",\"error\":")?;
            let error = match p.value()? {
                "null" => None,
                raw => {
                    let mut de = serde_json::Deserializer::from_str(raw);
                    let error = item_error::deserialize(&mut de).ok()?;
                    de.end().ok()?;
                    error
                }
            };
            p.eat(b"}")?;
            items.push(BatchItem {
                index,
                status,
                result,
                error,
            });
            if p.eat_byte(b',') {
                continue;
            }
            p.eat(b"]")?;
            break;
        }
    }
    p.eat(b",\"completionReason\":\"")?;
    let completion_reason = CompletionReason::parse(p.plain_string()?)?;
    p.eat(b"}")?;
    (p.at == p.bytes.len()).then_some(BatchResult {
        items,
        completion_reason,
        name: None,
    })
}

/// A position in the text being read.
struct Cursor<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    /// Steps over `expected` if the text goes on with it.
    #[inline]
    fn eat(&mut self, expected: &[u8]) -> Option<()> {
        let end = self.at.checked_add(expected.len())?;
        if self.bytes.get(self.at..end)? == expected {
            self.at = end;
            Some(())
        } else {
            None
        }
    }

    /// Steps over `expected` if it is the next byte; whether it was.
    #[inline]
    fn eat_byte(&mut self, expected: u8) -> bool {
        let next = self.bytes.get(self.at) == Some(&expected);
        self.at += usize::from(next);
        next
    }

    /// A JSON number that is a `usize`: digits, no sign, no leading zero
    /// (serde rejects one), no fraction or exponent.
    fn index(&mut self) -> Option<usize> {
        let start = self.at;
        let mut n: usize = 0;
        while let Some(&b) = self.bytes.get(self.at) {
            if !b.is_ascii_digit() {
                break;
            }
            n = n.checked_mul(10)?.checked_add(usize::from(b - b'0'))?;
            self.at += 1;
        }
        let digits = self.at - start;
        let leading_zero = digits > 1 && self.bytes[start] == b'0';
        (digits > 0 && !leading_zero).then_some(n)
    }

    /// A status and its closing quote.
    fn status(&mut self) -> Option<BatchItemStatus> {
        for (text, status) in [
            (&b"SUCCEEDED\""[..], BatchItemStatus::Succeeded),
            (b"FAILED\"", BatchItemStatus::Failed),
            (b"STARTED\"", BatchItemStatus::Started),
            (b"NOT_STARTED\"", BatchItemStatus::NotStarted),
        ] {
            if self.eat(text).is_some() {
                return Some(status);
            }
        }
        None
    }

    /// The text up to the next quote, which it steps over, if it has no
    /// escape (a completion reason has none).
    fn plain_string(&mut self) -> Option<&'a str> {
        let start = self.at;
        let len = self.bytes[start..].iter().position(|&b| b == b'"')?;
        let text = self.text.get(start..start + len)?;
        if text.contains('\\') {
            return None;
        }
        self.at = start + len + 1;
        Some(text)
    }

    /// The text of the JSON value that starts here: a string, an object
    /// or an array (to its matching close, strings skipped), or anything
    /// else up to the next `,`, `}`, `]` or whitespace. Only its extent is
    /// found; serde checks the value when it decodes it.
    fn value(&mut self) -> Option<&'a str> {
        let start = self.at;
        let bytes = self.bytes;
        let end = match *bytes.get(start)? {
            b'"' => self.string_end(start)?,
            b'{' | b'[' => {
                let mut depth = 0usize;
                let mut i = start;
                loop {
                    match *bytes.get(i)? {
                        b'"' => {
                            i = self.string_end(i)?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                break i + 1;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
            // A number, `true`, `false` or `null`, up to what follows it:
            // whitespace around it is not this SDK's shape (and `"null "`
            // is not `"null"`), so it ends there and is refused after.
            _ => {
                let len = bytes[start..].iter().position(|&b| {
                    matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                })?;
                if len == 0 {
                    return None;
                }
                start + len
            }
        };
        self.at = end;
        self.text.get(start..end)
    }

    /// Where the string that opens at `open` (a quote) ends: just past its
    /// closing quote, escapes skipped.
    fn string_end(&self, open: usize) -> Option<usize> {
        let mut i = open + 1;
        loop {
            match *self.bytes.get(i)? {
                b'"' => return Some(i + 1),
                b'\\' => i += 2,
                _ => i += 1,
            }
        }
    }
}

#[cfg(test)]
mod json_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spliced_json_is_what_serde_writes() {
        let raw = RawBatch {
            items: vec![
                RawItem {
                    status: BatchItemStatus::Succeeded,
                    result: Some(Payload::from(r#"{"a":[1,2],"b":"x\"y"}"#)),
                    error: None,
                },
                RawItem {
                    status: BatchItemStatus::Failed,
                    result: None,
                    error: Some(ErrorObject::new("E", "m \" \n")),
                },
                RawItem {
                    status: BatchItemStatus::Started,
                    result: None,
                    error: None,
                },
                RawItem {
                    status: BatchItemStatus::NotStarted,
                    result: None,
                    error: None,
                },
            ],
            reason: CompletionReason::FailureToleranceExceeded,
        };
        let spliced = splice_json(&raw);
        let typed: BatchResult<serde_json::Value> =
            typed(raw, &Json, &None, &PayloadContext::DETACHED, &None).unwrap();
        assert_eq!(spliced, serde_json::to_string(&typed).unwrap());
        let back: BatchResult<serde_json::Value> = serde_json::from_str(&spliced).unwrap();
        assert_eq!(back, typed);
        // Indexes of more than one digit.
        let many = RawBatch {
            items: (0..12)
                .map(|i| RawItem {
                    status: BatchItemStatus::Succeeded,
                    result: Some(Payload::from(i.to_string())),
                    error: None,
                })
                .collect(),
            reason: CompletionReason::AllCompleted,
        };
        let spliced = splice_json(&many);
        let decoded: BatchResult<u32> =
            super::typed(many, &Json, &None, &PayloadContext::DETACHED, &None).unwrap();
        assert_eq!(spliced, serde_json::to_string(&decoded).unwrap());
        let empty = RawBatch {
            items: vec![],
            reason: CompletionReason::AllCompleted,
        };
        assert_eq!(
            splice_json(&empty),
            r#"{"all":[],"completionReason":"ALL_COMPLETED"}"#
        );
    }
}

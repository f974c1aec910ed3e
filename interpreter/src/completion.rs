//! When a map or parallel operation ends: its completion policy
//! (thresholds, or the code's own predicate and what it is shown).

use std::fmt;
use std::sync::Arc;

use crate::batch_result::{BatchItemStatus, CompletionReason};
use crate::text::SharedStr;

/// When a map or parallel operation ends.
///
/// The batch ends at the first of: every branch finished; `min_successful`
/// branches succeeded; more branches failed than tolerated. Branches not
/// started by then never start; branches still running are abandoned (their
/// further operations are not recorded) and show as
/// [`BatchItemStatus::Started`].
///
/// With no threshold at all (the default), the first failure ends the
/// batch, and setting only [`min_successful`](CompletionPolicy::min_successful)
/// tolerates every failure, as in AWS's other SDKs. The named constructors
/// keep their meaning whatever is added to them:
/// [`CompletionPolicy::fail_fast`] tolerates no failure (also with
/// `min_successful`), [`CompletionPolicy::all`] tolerates every failure.
///
/// ```
/// use durable_yield_interpreter::CompletionPolicy;
/// // The first success ends the batch; so does the first failure.
/// let race = CompletionPolicy::fail_fast().min_successful(1);
/// // Two successes end the batch; failures are tolerated until then.
/// let quorum = CompletionPolicy::all().min_successful(2);
/// # let _ = (race, quorum);
/// ```
///
/// Or a predicate decides ([`CompletionPolicy::should_complete`], AWS's
/// `should_complete` / `shouldComplete`): it sees every branch's status and
/// says whether to go on, or to end the batch now as a success or as a
/// failure.
#[derive(Clone, Default)]
pub struct CompletionPolicy {
    min_successful: Option<usize>,
    tolerated_failure_count: Option<usize>,
    tolerated_failure_percentage: Option<f64>,
    predicate: Option<Predicate>,
}

/// A custom completion predicate, shared by the clones of its policy.
type Predicate = Arc<dyn Fn(&CompletionStatus<'_>) -> CompletionDecision + Send + Sync>;

impl fmt::Debug for CompletionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompletionPolicy")
            .field("min_successful", &self.min_successful)
            .field("tolerated_failure_count", &self.tolerated_failure_count)
            .field(
                "tolerated_failure_percentage",
                &self.tolerated_failure_percentage,
            )
            .field(
                "should_complete",
                &self.predicate.as_ref().map(|_| "<predicate>"),
            )
            .finish()
    }
}

/// Two policies are equal when their thresholds are, and they have no
/// predicate or the very same one (shared by cloning the policy).
impl PartialEq for CompletionPolicy {
    fn eq(&self, other: &Self) -> bool {
        let same_predicate = match (&self.predicate, &other.predicate) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        self.min_successful == other.min_successful
            && self.tolerated_failure_count == other.tolerated_failure_count
            && self.tolerated_failure_percentage == other.tolerated_failure_percentage
            && same_predicate
    }
}

impl CompletionPolicy {
    /// Fail fast: the first failed branch ends the batch (no failure is
    /// tolerated), also when a threshold such as `min_successful` is
    /// added. What the default does while it has no threshold.
    pub fn fail_fast() -> Self {
        CompletionPolicy::default().tolerated_failure_count(0)
    }
    /// Runs every branch, whatever fails.
    pub fn all() -> Self {
        CompletionPolicy::default().tolerated_failure_count(usize::MAX)
    }
    /// A custom predicate decides when the batch ends, as AWS's SDKs'
    /// `should_complete` (`shouldComplete`) does: it is asked before the
    /// first branch starts, before each further branch starts and after
    /// each branch finishes, with every branch's status
    /// ([`CompletionStatus`]), and answers [`CompletionDecision::Continue`]
    /// or ends the batch now, as a success
    /// ([`CompletionReason::CustomCompletionSucceeded`]) or as a failure
    /// ([`CompletionReason::CustomCompletionFailed`]: the batch's
    /// [`status`](crate::BatchResult::status) is then `FAILED` and
    /// [`into_values`](crate::BatchResult::into_values) fails even when no branch
    /// failed). The batch still ends when every branch has finished,
    /// whatever it answers. No failure ends the batch by itself: the
    /// predicate decides alone, and cannot be combined with the
    /// thresholds (`min_successful`, `tolerated_failure_count`,
    /// `tolerated_failure_percentage`: the batch then fails with an
    /// invalid configuration, checkpointing nothing).
    ///
    /// The predicate must be deterministic: it runs again on replay while
    /// the batch has not ended (a batch that ended replays the recorded
    /// decision without asking it), and should only look at what it is
    /// given. It should also be monotonic: once some progress ends the
    /// batch, more progress must end it too. A panic in it fails the
    /// execution as a panic in workflow code does.
    ///
    /// ```
    /// use durable_yield_interpreter::{CompletionDecision, CompletionPolicy};
    /// // Two successes end the batch; three failures end it as failed.
    /// let quorum = CompletionPolicy::should_complete(|s| {
    ///     if s.success_count >= 2 {
    ///         CompletionDecision::succeed()
    ///     } else if s.failure_count >= 3 {
    ///         CompletionDecision::fail()
    ///     } else {
    ///         CompletionDecision::Continue
    ///     }
    /// });
    /// # let _ = quorum;
    /// ```
    pub fn should_complete<F>(predicate: F) -> Self
    where
        F: Fn(&CompletionStatus<'_>) -> CompletionDecision + Send + Sync + 'static,
    {
        CompletionPolicy {
            predicate: Some(Arc::new(predicate)),
            ..CompletionPolicy::default()
        }
    }
    /// Ends the batch once `n` branches succeeded (at least 1; more than
    /// there are branches means all of them).
    pub fn min_successful(mut self, n: usize) -> Self {
        self.min_successful = Some(n);
        self
    }
    /// Ends the batch once more than `n` branches failed.
    pub fn tolerated_failure_count(mut self, n: usize) -> Self {
        self.tolerated_failure_count = Some(n);
        self
    }
    /// Ends the batch once more than `percent` % of all branches failed
    /// (0 to 100).
    pub fn tolerated_failure_percentage(mut self, percent: f64) -> Self {
        self.tolerated_failure_percentage = Some(percent);
        self
    }

    /// Whether a custom predicate decides ([`CompletionPolicy::should_complete`]).
    pub(crate) fn has_predicate(&self) -> bool {
        self.predicate.is_some()
    }

    /// What is wrong with the policy, if anything.
    pub(crate) fn invalid(&self) -> Option<String> {
        let thresholds = self.min_successful.is_some()
            || self.tolerated_failure_count.is_some()
            || self.tolerated_failure_percentage.is_some();
        if self.predicate.is_some() && thresholds {
            return Some(
                "should_complete cannot be combined with min_successful, \
                 tolerated_failure_count or tolerated_failure_percentage: keep the \
                 predicate alone, or the thresholds without it"
                    .into(),
            );
        }
        if self.min_successful == Some(0) {
            return Some("min_successful must be at least 1".into());
        }
        match self.tolerated_failure_percentage {
            Some(p) if !(0.0..=100.0).contains(&p) => Some(format!(
                "tolerated_failure_percentage must be from 0 to 100, not {p}"
            )),
            _ => None,
        }
    }

    /// Whether a batch of `total` branches with these counts is over, and
    /// why. `items` is every branch's status, for a predicate (empty
    /// without one).
    pub(crate) fn evaluate(
        &self,
        total: usize,
        succeeded: usize,
        failed: usize,
        items: &[CompletionItem],
    ) -> Option<CompletionReason> {
        if let Some(predicate) = &self.predicate {
            let status = CompletionStatus {
                success_count: succeeded,
                failure_count: failed,
                completed_count: succeeded + failed,
                total_count: total,
                items,
            };
            // Asked first: its decision is the reason even when the last
            // branch just finished (as AWS's SDKs report it).
            return match predicate(&status) {
                CompletionDecision::Complete(CompletionOutcome::Succeeded) => {
                    Some(CompletionReason::CustomCompletionSucceeded)
                }
                CompletionDecision::Complete(CompletionOutcome::Failed) => {
                    Some(CompletionReason::CustomCompletionFailed)
                }
                CompletionDecision::Continue if succeeded + failed >= total => {
                    Some(CompletionReason::AllCompleted)
                }
                CompletionDecision::Continue => None,
            };
        }
        let thresholds =
            self.tolerated_failure_count.is_some() || self.tolerated_failure_percentage.is_some();
        let exceeded = if thresholds {
            self.tolerated_failure_count.is_some_and(|n| failed > n)
                || self
                    .tolerated_failure_percentage
                    .is_some_and(|p| total > 0 && failed as f64 * 100.0 / total as f64 > p)
        } else {
            self.min_successful.is_none() && failed > 0
        };
        if exceeded {
            Some(CompletionReason::FailureToleranceExceeded)
        } else if succeeded + failed >= total {
            Some(CompletionReason::AllCompleted)
        } else if self.min_successful.is_some_and(|n| succeeded >= n) {
            Some(CompletionReason::MinSuccessfulReached)
        } else {
            None
        }
    }
}

/// What a custom completion predicate
/// ([`CompletionPolicy::should_complete`]) is shown: the batch's progress
/// and every branch's status, as AWS's SDKs' `CompletionStatus`.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct CompletionStatus<'a> {
    /// Branches that succeeded so far.
    pub success_count: usize,
    /// Branches that failed so far.
    pub failure_count: usize,
    /// Branches that finished so far (`success_count + failure_count`).
    pub completed_count: usize,
    /// Branches in the batch.
    pub total_count: usize,
    /// Every branch, in index order (`items[i]` is branch `i`, whatever
    /// order they finish in).
    pub items: &'a [CompletionItem],
}

/// One branch as a custom completion predicate sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionItem {
    index: usize,
    name: Option<SharedStr>,
    status: Option<BatchItemStatus>,
}

impl CompletionItem {
    pub(crate) fn new(index: usize, name: Option<SharedStr>) -> Self {
        CompletionItem {
            index,
            name,
            status: None,
        }
    }
    pub(crate) fn set_status(&mut self, status: Option<BatchItemStatus>) {
        self.status = status;
    }
    /// Its index (the item's position; the branch's place in the list).
    pub fn index(&self) -> usize {
        self.index
    }
    /// The name the code gave it, if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_ref().map(SharedStr::as_str)
    }
    /// `None` while it has not started (held back by `max_concurrency`);
    /// then [`BatchItemStatus::Started`] while it runs (or waits), and
    /// [`BatchItemStatus::Succeeded`] or [`BatchItemStatus::Failed`].
    pub fn status(&self) -> Option<BatchItemStatus> {
        self.status
    }
}

/// Whether a custom completion ends the batch as a success or a failure
/// (AWS's `CompletionOutcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CompletionOutcome {
    /// The batch succeeded ([`CompletionReason::CustomCompletionSucceeded`]).
    Succeeded,
    /// The batch failed ([`CompletionReason::CustomCompletionFailed`]),
    /// even if no branch did.
    Failed,
}

/// What a custom completion predicate answers (AWS's `CompletionDecision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CompletionDecision {
    /// Go on: start and await the other branches.
    Continue,
    /// End the batch now, with this outcome: branches not started never
    /// start, running ones are abandoned.
    Complete(CompletionOutcome),
}

impl CompletionDecision {
    /// End the batch now as a success (AWS's `complete_batch()`).
    pub fn succeed() -> Self {
        CompletionDecision::Complete(CompletionOutcome::Succeeded)
    }
    /// End the batch now as a failure
    /// (AWS's `complete_batch(CompletionOutcome.FAILED)`).
    pub fn fail() -> Self {
        CompletionDecision::Complete(CompletionOutcome::Failed)
    }
}

//! Step retries: the [`RetryStrategy`] trait and ready strategies.
//!
//! When a step body fails, the interpreter asks the step's strategy whether
//! to try again and after how long. A retry is checkpointed (`RETRY`, with
//! the error and the delay), the invocation ends, and the service invokes
//! the function again when the delay is over; the next attempt then runs.
//! The decision is made once, when the attempt fails, and recorded: replay
//! never asks the strategy again, so jitter cannot break determinism.
//!
//! Delays are whole seconds: a strategy's delay is rounded up, to at least
//! one second and at most [`MAX_WAIT_SECONDS`].
//!
//! ```
//! use std::time::Duration;
//! use durable_yield_interpreter::retry::{ExponentialBackoff, FixedDelay, Jitter, RetryStrategyExt};
//!
//! // 4 attempts, 2 s, 4 s, 8 s apart (capped at 30 s), half jitter:
//! let backoff = ExponentialBackoff::new()
//!     .max_attempts(4)
//!     .initial_delay(Duration::from_secs(2))
//!     .max_delay(Duration::from_secs(30))
//!     .jitter(Jitter::Half);
//! // Retry only timeouts, every 10 s, 3 attempts in all:
//! let timeouts = FixedDelay::new(Duration::from_secs(10), 3).only_error_types(["Timeout"]);
//! ```

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use crate::limits::MAX_WAIT_SECONDS;
use crate::model::ErrorObject;

/// A failed attempt, as a strategy sees it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct FailedAttempt<'a> {
    /// The error the attempt failed with, as it is recorded.
    pub error: &'a ErrorObject,
    /// The number of the attempt that failed, from 1.
    pub attempt: u32,
    /// A number in `[0, 1)` for jitter: pseudo-random, different for every
    /// execution, step and attempt.
    pub random: f64,
    /// The error value the body failed with, when the attempt ran in this
    /// invocation (see [`FailedAttempt::downcast_ref`]); `None` for an
    /// attempt found interrupted on replay and for errors made by the SDK.
    pub source: Option<&'a (dyn StdError + Send + Sync + 'static)>,
}

impl<'a> FailedAttempt<'a> {
    /// A failed attempt with no error value (for testing strategies).
    pub fn new(error: &'a ErrorObject, attempt: u32, random: f64) -> Self {
        FailedAttempt {
            error,
            attempt,
            random,
            source: None,
        }
    }

    /// The same attempt, carrying the error value `source`.
    pub fn with_source(mut self, source: &'a (dyn StdError + Send + Sync + 'static)) -> Self {
        self.source = Some(source);
        self
    }

    /// The body's error value as `E`, if it is one: lets a strategy decide
    /// on the typed error instead of its recorded strings.
    ///
    /// ```
    /// use std::time::Duration;
    /// use durable_yield_interpreter::retry::FailedAttempt;
    /// use durable_yield_interpreter::StepConfig;
    ///
    /// // Retry I/O timeouts only, up to 5 attempts, 2 s apart.
    /// let config = StepConfig::named("fetch").retry(|failed: &FailedAttempt| {
    ///     let timeout = failed
    ///         .downcast_ref::<std::io::Error>()
    ///         .is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut);
    ///     (timeout && failed.attempt < 5).then(|| Duration::from_secs(2))
    /// });
    /// ```
    pub fn downcast_ref<E: StdError + 'static>(&self) -> Option<&'a E> {
        self.source.and_then(|s| s.downcast_ref::<E>())
    }
}

/// Decides whether a failed step attempt is tried again, and when.
///
/// Any `Fn(&FailedAttempt) -> Option<Duration>` is a strategy:
///
/// ```
/// use std::time::Duration;
/// use durable_yield_interpreter::retry::FailedAttempt;
/// use durable_yield_interpreter::StepConfig;
///
/// // Up to 3 attempts, waiting 1 s, then 2 s.
/// let config = StepConfig::named("call").retry(|failed: &FailedAttempt| {
///     (failed.attempt < 3).then(|| Duration::from_secs(u64::from(failed.attempt)))
/// });
/// ```
pub trait RetryStrategy: Send + Sync + 'static {
    /// `Some(delay)`: try again after `delay`; `None`: fail the step with
    /// this error.
    fn next_delay(&self, failed: &FailedAttempt<'_>) -> Option<Duration>;
}

impl<F> RetryStrategy for F
where
    F: Fn(&FailedAttempt<'_>) -> Option<Duration> + Send + Sync + 'static,
{
    fn next_delay(&self, failed: &FailedAttempt<'_>) -> Option<Duration> {
        self(failed)
    }
}

impl RetryStrategy for Arc<dyn RetryStrategy> {
    fn next_delay(&self, failed: &FailedAttempt<'_>) -> Option<Duration> {
        (**self).next_delay(failed)
    }
}

/// The delay the service records for `delay`: whole seconds, rounded up,
/// from 1 to [`MAX_WAIT_SECONDS`].
pub fn whole_seconds(delay: Duration) -> u32 {
    let secs = delay
        .as_secs()
        .saturating_add(u64::from(delay.subsec_nanos() > 0));
    secs.clamp(1, MAX_WAIT_SECONDS) as u32
}

/// How much of a backoff delay is randomized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Jitter {
    /// The delay as computed.
    None,
    /// A random delay between half the computed delay and all of it.
    Half,
    /// A random delay between zero and the computed delay (rounded up to
    /// one second at least). The default: it spreads retries best.
    #[default]
    Full,
}

/// Exponential backoff: attempt `k` (from 1) that fails waits
/// `initial_delay * backoff_rate^(k-1)`, capped at `max_delay`, jittered,
/// until `max_attempts` attempts were made.
///
/// The default is the other AWS SDKs' default: 6 attempts, 5 s initial
/// delay, rate 2, 60 s cap, full jitter.
#[derive(Debug, Clone, PartialEq)]
pub struct ExponentialBackoff {
    max_attempts: u32,
    initial_delay: Duration,
    max_delay: Duration,
    backoff_rate: f64,
    jitter: Jitter,
}

impl Default for ExponentialBackoff {
    fn default() -> Self {
        ExponentialBackoff {
            max_attempts: 6,
            initial_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(60),
            backoff_rate: 2.0,
            jitter: Jitter::Full,
        }
    }
}

impl ExponentialBackoff {
    /// The default strategy (see the type's docs).
    pub fn new() -> Self {
        ExponentialBackoff::default()
    }
    /// Attempts in all, the first included (at least 1).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }
    /// The delay after the first failed attempt.
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }
    /// The longest delay.
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }
    /// The factor between consecutive delays (at least 1).
    pub fn backoff_rate(mut self, rate: f64) -> Self {
        self.backoff_rate = if rate.is_finite() { rate.max(1.0) } else { 1.0 };
        self
    }
    /// The jitter.
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }
}

impl RetryStrategy for ExponentialBackoff {
    fn next_delay(&self, failed: &FailedAttempt<'_>) -> Option<Duration> {
        if failed.attempt >= self.max_attempts {
            return None;
        }
        let exponent = i32::try_from(failed.attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let base = self.initial_delay.as_secs_f64() * self.backoff_rate.powi(exponent);
        let capped = base.min(self.max_delay.as_secs_f64()).max(0.0);
        let random = failed.random.clamp(0.0, 1.0);
        let jittered = match self.jitter {
            Jitter::None => capped,
            Jitter::Half => capped / 2.0 + random * capped / 2.0,
            Jitter::Full => random * capped,
        };
        Some(Duration::from_secs_f64(
            jittered.min(MAX_WAIT_SECONDS as f64),
        ))
    }
}

/// The same delay between attempts, until `max_attempts` attempts were made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedDelay {
    delay: Duration,
    max_attempts: u32,
}

impl FixedDelay {
    /// `max_attempts` attempts in all (at least 1), `delay` apart.
    pub fn new(delay: Duration, max_attempts: u32) -> Self {
        FixedDelay {
            delay,
            max_attempts: max_attempts.max(1),
        }
    }
}

impl RetryStrategy for FixedDelay {
    fn next_delay(&self, failed: &FailedAttempt<'_>) -> Option<Duration> {
        (failed.attempt < self.max_attempts).then_some(self.delay)
    }
}

/// Never retries: the first failure fails the step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NoRetry;

impl RetryStrategy for NoRetry {
    fn next_delay(&self, _: &FailedAttempt<'_>) -> Option<Duration> {
        None
    }
}

/// A strategy that retries only the errors a predicate accepts.
pub struct OnlyIf<S, P> {
    strategy: S,
    retryable: P,
}

impl<S, P> RetryStrategy for OnlyIf<S, P>
where
    S: RetryStrategy,
    P: Fn(&ErrorObject) -> bool + Send + Sync + 'static,
{
    fn next_delay(&self, failed: &FailedAttempt<'_>) -> Option<Duration> {
        if (self.retryable)(failed.error) {
            self.strategy.next_delay(failed)
        } else {
            None
        }
    }
}

/// Combinators for every [`RetryStrategy`].
pub trait RetryStrategyExt: RetryStrategy + Sized {
    /// Retries only the errors `retryable` accepts; any other fails the
    /// step at once.
    fn only_if<P>(self, retryable: P) -> OnlyIf<Self, P>
    where
        P: Fn(&ErrorObject) -> bool + Send + Sync + 'static,
    {
        OnlyIf {
            strategy: self,
            retryable,
        }
    }

    /// Retries only errors whose `ErrorType` is one of `types`. A Rust
    /// error is recorded under its type's declared identifier (`Timeout`
    /// for `my_crate::Timeout`, `Wrapper` for `Wrapper<Timeout>`, see
    /// [`error_type_name`](crate::error_type_name)); a recorded or given
    /// name with a module path or generic arguments (another SDK's, or an
    /// older history's) matches by that identifier. To decide on the error
    /// value's type instead of a name, write a strategy with
    /// [`FailedAttempt::downcast_ref`].
    #[allow(clippy::type_complexity)]
    fn only_error_types<T: Into<String>>(
        self,
        types: impl IntoIterator<Item = T>,
    ) -> OnlyIf<Self, Box<dyn Fn(&ErrorObject) -> bool + Send + Sync>> {
        let types: Vec<(String, String)> = types
            .into_iter()
            .map(|t| {
                let t: String = t.into();
                let short = short_name(&t);
                (t, short)
            })
            .collect();
        self.only_if(Box::new(move |error: &ErrorObject| {
            error.error_type.as_deref().is_some_and(|t| {
                let short = short_name(t);
                types.iter().any(|(w, ws)| w == t || *ws == short)
            })
        }))
    }
}

impl<S: RetryStrategy> RetryStrategyExt for S {}

/// A type's identifier: Rust's `a::B<c::D>` reduces to `B`, Python's
/// `pkg.mod.Error` to `Error`.
fn short_name(t: &str) -> String {
    let rust = crate::failure::type_identifier(t);
    match rust.rsplit_once('.') {
        Some((_, last)) => last.to_owned(),
        None => rust.to_owned(),
    }
}

/// A well-mixed 64-bit value from `seed` (splitmix64's output function).
pub(crate) fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A pseudo-random number in `[0, 1)` from a seed.
pub(crate) fn unit_random(seed: u64) -> f64 {
    (mix(seed) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(error: &ErrorObject, attempt: u32, random: f64) -> FailedAttempt<'_> {
        FailedAttempt::new(error, attempt, random)
    }

    #[test]
    fn the_default_matches_the_other_sdks() {
        let e = ErrorObject::new("E", "m");
        let s = ExponentialBackoff::default().jitter(Jitter::None);
        let delays: Vec<_> = (1..=6)
            .map(|k| s.next_delay(&attempt(&e, k, 0.5)).map(whole_seconds))
            .collect();
        assert_eq!(
            delays,
            vec![Some(5), Some(10), Some(20), Some(40), Some(60), None]
        );
    }

    #[test]
    fn strategies_can_downcast_the_error_value() {
        let e = ErrorObject::new("Error", "timed out");
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out");
        let failed = FailedAttempt::new(&e, 1, 0.0).with_source(&io);
        assert_eq!(
            failed.downcast_ref::<std::io::Error>().map(|e| e.kind()),
            Some(std::io::ErrorKind::TimedOut)
        );
        assert!(failed.downcast_ref::<std::fmt::Error>().is_none());
        assert!(
            FailedAttempt::new(&e, 1, 0.0)
                .downcast_ref::<std::io::Error>()
                .is_none()
        );
    }

    #[test]
    fn jitter_stays_within_its_range() {
        let e = ErrorObject::new("E", "m");
        for r in [0.0, 0.25, 0.999] {
            let full = ExponentialBackoff::new()
                .next_delay(&attempt(&e, 3, r))
                .unwrap();
            assert!(full <= Duration::from_secs(20));
            let half = ExponentialBackoff::new()
                .jitter(Jitter::Half)
                .next_delay(&attempt(&e, 3, r))
                .unwrap();
            assert!(half >= Duration::from_secs(10) && half <= Duration::from_secs(20));
        }
        // Full jitter at random 0 still waits the minimum of one second.
        let zero = ExponentialBackoff::new()
            .next_delay(&attempt(&e, 1, 0.0))
            .unwrap();
        assert_eq!(whole_seconds(zero), 1);
    }

    #[test]
    fn delays_are_whole_seconds_within_the_service_limits() {
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1001)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(7)), 7);
        assert_eq!(whole_seconds(Duration::MAX), MAX_WAIT_SECONDS as u32);
    }

    #[test]
    fn fixed_delay_no_retry_and_predicates() {
        let e = ErrorObject::new("my_crate::Timeout", "slow");
        let other = ErrorObject::new("Fatal", "no");
        let fixed = FixedDelay::new(Duration::from_secs(3), 2);
        assert_eq!(
            fixed.next_delay(&attempt(&e, 1, 0.0)),
            Some(Duration::from_secs(3))
        );
        assert_eq!(fixed.next_delay(&attempt(&e, 2, 0.0)), None);
        assert_eq!(NoRetry.next_delay(&attempt(&e, 1, 0.0)), None);
        let only = FixedDelay::new(Duration::from_secs(1), 5).only_error_types(["Timeout"]);
        assert!(only.next_delay(&attempt(&e, 1, 0.0)).is_some());
        assert!(only.next_delay(&attempt(&other, 1, 0.0)).is_none());
        let pred = NoRetry.only_if(|_| true);
        assert!(pred.next_delay(&attempt(&e, 1, 0.0)).is_none());
        // Neither generic arguments nor module paths matter.
        let generic = ErrorObject::new("Wrapper<Timeout>", "slow");
        let only =
            FixedDelay::new(Duration::from_secs(1), 5).only_error_types(["x::Wrapper<y::Timeout>"]);
        assert!(only.next_delay(&attempt(&generic, 1, 0.0)).is_some());
        assert!(only.next_delay(&attempt(&e, 1, 0.0)).is_none());
        let python = ErrorObject::new("botocore.exceptions.Timeout", "slow");
        let only = FixedDelay::new(Duration::from_secs(1), 5).only_error_types(["Timeout"]);
        assert!(only.next_delay(&attempt(&python, 1, 0.0)).is_some());
    }

    #[test]
    fn unit_random_is_in_range_and_spread() {
        let xs: Vec<f64> = (0..1000).map(unit_random).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!((mean - 0.5).abs() < 0.05, "{mean}");
        assert_eq!(unit_random(42), unit_random(42));
    }
}

//! The `SubType` each operation is recorded with, as AWS's SDKs write them
//! (a console or another SDK reads them to tell operations apart).

/// A step.
pub const STEP: &str = "Step";
/// A wait.
pub const WAIT: &str = "Wait";
/// A callback.
pub const CALLBACK: &str = "Callback";
/// A chained invoke.
pub const CHAINED_INVOKE: &str = "ChainedInvoke";
/// A wait-for-condition (a STEP).
pub const WAIT_FOR_CONDITION: &str = "WaitForCondition";
/// A child context.
pub const RUN_IN_CHILD_CONTEXT: &str = "RunInChildContext";
/// A wait-for-callback's context.
pub const WAIT_FOR_CALLBACK: &str = "WaitForCallback";
/// A map operation's context.
pub const MAP: &str = "Map";
/// A map item's context.
pub const MAP_ITERATION: &str = "MapIteration";
/// A parallel operation's context.
pub const PARALLEL: &str = "Parallel";
/// A parallel branch's context.
pub const PARALLEL_BRANCH: &str = "ParallelBranch";

/// Every subtype above (names read from a history are interned against it).
pub(crate) const ALL: [&str; 11] = [
    STEP,
    WAIT,
    CALLBACK,
    CHAINED_INVOKE,
    WAIT_FOR_CONDITION,
    RUN_IN_CHILD_CONTEXT,
    WAIT_FOR_CALLBACK,
    MAP,
    MAP_ITERATION,
    PARALLEL,
    PARALLEL_BRANCH,
];

/// The longest custom subtype the service accepts.
pub const MAX_CUSTOM_LEN: usize = 32;

/// Why `sub_type` cannot label a step or child context
/// (`StepConfig::sub_type`, `ChildConfig::sub_type`): the service accepts
/// 1 to 32 characters from `A-Z`, `a-z`, `0-9`, `-` and `_`, as AWS's
/// SDKs check it.
pub(crate) fn invalid_custom(sub_type: &str) -> Option<String> {
    let valid = !sub_type.is_empty()
        && sub_type.len() <= MAX_CUSTOM_LEN
        && sub_type
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (!valid).then(|| {
        format!(
            "sub_type must be 1 to {MAX_CUSTOM_LEN} characters from A-Z, a-z, 0-9, '-' \
             and '_', not {sub_type:?}"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_subtypes_are_what_the_service_accepts() {
        for ok in ["Charge", "batch-processor", "a_b-C9", &"x".repeat(32)] {
            assert_eq!(invalid_custom(ok), None, "{ok}");
        }
        for bad in ["", "has space", "dot.ted", "é", &"x".repeat(33)] {
            assert!(
                invalid_custom(bad).is_some_and(|m| m.starts_with("sub_type must be 1 to 32")),
                "{bad}"
            );
        }
    }
}

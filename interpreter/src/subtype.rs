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

//! Properties of durable-yield checked on generated inputs: by the
//! cargo-fuzz targets in `fuzz/` (coverage-guided, nightly) and by
//! `tests/properties.rs` (fixed seeds, on stable, in every CI run).
//!
//! Each `check_*` function takes raw bytes, builds its input with
//! [`arbitrary`], and returns `Err` with a description when a property is
//! violated. A panic anywhere is a violation too.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use durable_yield::codecs::compress::Compressed;
use durable_yield::codecs::files::{FileSystem, StorageMode};
use durable_yield::codecs::seal::{
    Encrypted, Sealed, SealedFields, StaticKeyring, referenced_key_ids,
};
use durable_yield::codecs::{
    Bincode, Codec, Json, MsgPack, PayloadContext, from_payload, to_payload,
};
use durable_yield::id::operation_id;
use durable_yield::local::CallbackAnswer;
use durable_yield::local::CrashPoint;
use durable_yield::local::TimelineEvent;
use durable_yield::model::{
    ErrorObject, InvocationInput, InvocationStatus, Operation, OperationAction, OperationId,
    OperationStatus, OperationType,
};
use durable_yield::retry::FixedDelay;
use durable_yield::{
    Branch, CallbackConfig, ChildConfig, CompletionDecision, CompletionPolicy, Condition,
    ConditionConfig, ExecutionStatus, InvokeConfig, LocalExecution, LocalRunner, MapConfig,
    Nesting, ParallelConfig, StepConfig, StepError, StepFailure, StepSemantics, WaitConfig,
    WaitForCallbackConfig, Workflow,
};
use serde::{Deserialize, Serialize};

use crate::drive;

mod change;
mod codecs;
mod envelope;
mod hooks;
mod program;
mod record;
mod replay;

pub use change::*;
pub use codecs::*;
pub use envelope::*;
pub use hooks::*;
pub use program::*;
pub use record::*;
pub use replay::*;

//! The service's limits the interpreter enforces before anything is sent
//! (the runtime adds those of requests and responses).

/// The longest wait the service accepts, in seconds (366 days).
pub const MAX_WAIT_SECONDS: u64 = 31_622_400;

/// The longest callback timeout the service accepts, in seconds.
pub const MAX_CALLBACK_TIMEOUT_SECONDS: u32 = 99_999_999;

/// The longest operation name the service accepts, in bytes.
pub const MAX_NAME_LEN: usize = 256;

/// The longest operation id the service accepts.
pub const MAX_ID_LEN: usize = 64;

/// The largest payload one operation may checkpoint (1 MiB; the service
/// documents 1 MB for every operation but the execution's own result). A
/// step result over it fails the step with `PayloadTooLarge` before
/// anything is sent.
pub const MAX_OPERATION_PAYLOAD: usize = 1024 * 1024;

/// The largest result a child context, branch or batch checkpoints (256
/// KiB, in characters): a larger one is checkpointed with
/// `ReplayChildren` and an empty (or summary) payload, and rebuilt on
/// replay by re-running the body over its recorded children.
pub const MAX_CONTEXT_RESULT: usize = 256 * 1024;

/// Whether a context's (or batch's) encoded result is over
/// [`MAX_CONTEXT_RESULT`] characters: checkpointed with `ReplayChildren`.
pub(crate) fn too_large_for_a_context(payload: &str) -> bool {
    payload.len() > MAX_CONTEXT_RESULT && payload.chars().count() > MAX_CONTEXT_RESULT
}

/// The most bytes of JSON one error object may take: the strictest limit
/// among AWS's implementations (its emulator rejects larger errors; the
/// service documents 1 MB).
pub const MAX_ERROR_JSON: usize = 32 * 1024;

/// The longest `ErrorType` kept, in bytes.
pub const MAX_ERROR_TYPE: usize = 256;

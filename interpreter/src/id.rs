//! Deterministic operation ids (PROTOCOL.md §5).
//!
//! Each context numbers its durable calls 1, 2, 3, ... The raw id is the
//! number at the root and `"<parent id>-<n>"` inside a child context; the
//! operation id is the first 64 hex characters of BLAKE2b-512 of the raw id.
//! Ids depend only on the order of calls in code, never on timing.

use std::sync::OnceLock;

use crate::limits::MAX_ID_LEN;
use crate::model::OperationId;

/// Root ids memoized per chunk, allocated on first use.
const CHUNK: usize = 256;

/// How many root ids are memoized process-wide: at least the service's
/// 25,000 operations per execution.
pub(crate) const MEMOIZED_ROOT_IDS: usize = 98 * CHUNK;

type Chunk = [OnceLock<OperationId>; CHUNK];

/// Root ids are the same for every execution of every workflow, so a warm
/// process (a reused Lambda execution environment) computes each one once.
/// Lock-free after the first use of a slot. The table itself is 98
/// pointers in the binary; a chunk of 256 ids (18 KiB) is allocated the
/// first time one of its ids is asked for, so an execution of 1,000
/// operations holds 72 KiB and one of 25,000 holds 1.8 MiB.
static ROOT_IDS: [OnceLock<Box<Chunk>>; MEMOIZED_ROOT_IDS / CHUNK] =
    [const { OnceLock::new() }; MEMOIZED_ROOT_IDS / CHUNK];

/// The operation id of the `n`-th durable call (1-based) in the context
/// `parent` (`None` at the root): `H("<n>")` or `H("<parent>-<n>")`.
///
/// ```
/// use durable_yield_interpreter::id::operation_id;
/// assert!(operation_id(None, 1).as_str().starts_with("1ced8f5b"));
/// ```
pub fn operation_id(parent: Option<&OperationId>, n: u64) -> OperationId {
    match parent {
        None if (n as usize) < MEMOIZED_ROOT_IDS => {
            let n = n as usize;
            let chunk =
                ROOT_IDS[n / CHUNK].get_or_init(|| Box::new([const { OnceLock::new() }; CHUNK]));
            *chunk[n % CHUNK].get_or_init(|| hash(None, n as u64))
        }
        _ => hash(parent, n),
    }
}

/// Computes an operation id, without allocating and without the memo of
/// [`operation_id`] (which gives the same result).
pub(crate) fn hash(prefix: Option<&OperationId>, n: u64) -> OperationId {
    // The raw id, on the stack: at most a 64-byte parent, '-' and 20 digits.
    let mut raw = [0u8; MAX_ID_LEN + 1 + 20];
    let mut len = 0;
    if let Some(p) = prefix {
        let p = p.as_bytes();
        raw[..p.len()].copy_from_slice(p);
        raw[p.len()] = b'-';
        len = p.len() + 1;
    }
    len += write_decimal(&mut raw[len..], n);
    // BLAKE2b-512 (64-byte digest), of which the first 32 bytes are used.
    let digest = blake2b_simd::blake2b(&raw[..len]);
    let digest = digest.as_array();
    let mut out = [0u8; MAX_ID_LEN];
    for k in 0..MAX_ID_LEN / 2 {
        let [hi, lo] = HEX_PAIRS[usize::from(digest[k])];
        out[2 * k] = hi;
        out[2 * k + 1] = lo;
    }
    OperationId::from_hex(out)
}

/// Writes `n` in decimal at the start of `out` (at least 20 bytes long);
/// returns how many bytes it wrote.
pub(crate) fn write_decimal(out: &mut [u8], mut n: u64) -> usize {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let written = digits.len() - i;
    out[..written].copy_from_slice(&digits[i..]);
    written
}

/// The two lowercase hex digits of each byte.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0u8; 2]; 256];
    let mut b = 0;
    while b < 256 {
        pairs[b] = [HEX[b >> 4], HEX[b & 0xf]];
        b += 1;
    }
    pairs
};

/// The length of an [`idempotency_key`].
pub const IDEMPOTENCY_KEY_LEN: usize = 40;

/// A key for the operation `id` of the execution `execution_arn` that is
/// unique per execution and operation, and the same on every attempt and
/// every replay: 40 lowercase hex characters of BLAKE2b-512 over the ARN
/// and the id, short and plain enough for any provider's idempotency key
/// (`[0-9a-f]`, well under 64 characters).
///
/// Operation ids alone repeat in every execution of a workflow (they come
/// from the position of the call), so they must not be used as keys.
///
/// ```
/// use durable_yield_interpreter::id::{idempotency_key, operation_id};
/// let step = operation_id(None, 1);
/// let a = idempotency_key("arn:aws:lambda:us-east-1:1:function:f:1/durable-execution/a/1", &step);
/// let b = idempotency_key("arn:aws:lambda:us-east-1:1:function:f:1/durable-execution/b/2", &step);
/// assert_ne!(a, b);
/// assert_eq!(a.len(), 40);
/// ```
pub fn idempotency_key(execution_arn: &str, id: &OperationId) -> String {
    let mut state = blake2b_simd::State::new();
    state.update(b"durable-yield idempotency key\0");
    state.update(execution_arn.as_bytes());
    state.update(b"\0");
    state.update(id.as_bytes());
    let digest = state.finalize();
    digest
        .as_bytes()
        .iter()
        .take(IDEMPOTENCY_KEY_LEN / 2)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The id of the `index`-th (0-based) branch of the map or parallel
/// operation `parent`: `H("<parent>-<index>")`. The `n`-th call inside the
/// branch has the id `operation_id(Some(&branch_id(parent, index)), n)`.
///
/// ```
/// use durable_yield_interpreter::id::{branch_id, operation_id};
/// let map = operation_id(None, 1);
/// assert_ne!(branch_id(&map, 0), operation_id(Some(&map), 1));
/// ```
pub fn branch_id(parent: &OperationId, index: u64) -> OperationId {
    hash(Some(parent), index)
}

/// Hands out the ids of one context's durable calls, in call order.
#[derive(Debug, Clone)]
pub(crate) struct IdGenerator {
    /// The prefix ids are hashed with (the context's own id).
    prefix: Option<OperationId>,
    /// The `ParentId` its operations are recorded with: the prefix, but
    /// for a virtual context the nearest recorded context around it.
    parent: Option<OperationId>,
    counter: u64,
}

impl IdGenerator {
    /// The generator of the root context.
    pub fn root() -> Self {
        IdGenerator {
            prefix: None,
            parent: None,
            counter: 0,
        }
    }

    /// The generator of the child context whose CONTEXT operation is `parent`.
    pub fn child(parent: OperationId) -> Self {
        IdGenerator {
            prefix: Some(parent),
            parent: Some(parent),
            counter: 0,
        }
    }

    /// The generator of a virtual context (one that records no CONTEXT
    /// operation: a virtual child context, a branch of a flat map or
    /// parallel) whose own id is `id`: its operations get ids of its own
    /// namespace, `H("<id>-<n>")`, but are recorded as children of
    /// `parent`, the nearest recorded context around it (none at the
    /// root), as AWS's SDKs record them.
    pub fn virtual_child(id: OperationId, parent: Option<OperationId>) -> Self {
        IdGenerator {
            prefix: Some(id),
            parent,
            counter: 0,
        }
    }

    /// The id the next call will get, without taking it.
    pub(crate) fn peek_id(&self) -> OperationId {
        operation_id(self.prefix.as_ref(), self.counter + 1)
    }

    /// The id of the `index`-th (0-based) branch of a map or parallel
    /// operation `parent`: `H("<parent>-<index>")`.
    pub fn branch(parent: &OperationId, index: u64) -> OperationId {
        branch_id(parent, index)
    }

    /// The id of the next durable call, and its 1-based sequence number.
    pub fn next_id(&mut self) -> (OperationId, u64) {
        self.counter += 1;
        (
            operation_id(self.prefix.as_ref(), self.counter),
            self.counter,
        )
    }

    /// The `ParentId` of the context's operations: the owning context's
    /// id (none at the root; for a virtual context, the nearest recorded
    /// context around it).
    pub fn parent(&self) -> Option<&OperationId> {
        self.parent.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_test_vectors() {
        let mut root = IdGenerator::root();
        let (first, n) = root.next_id();
        assert_eq!(n, 1);
        let s = first.as_str();
        assert_eq!(s.len(), 64);
        assert!(
            s.starts_with("1ced8f5b") && s.ends_with("c1c7d1775a97"),
            "{s}"
        );
        let second = root.next_id().0;
        assert!(second.as_str().starts_with("c5faca15"));
        assert!(second.as_str().ends_with("fade3947e6"));

        let mut child = IdGenerator::child(first);
        let c1 = child.next_id().0;
        assert!(c1.as_str().starts_with("974bfc63"), "{c1}");
        assert!(c1.as_str().ends_with("a7755cc20fc4"));
        assert_eq!(child.parent(), Some(&first));

        let sixth = (0..4).map(|_| root.next_id().0).last().unwrap();
        assert_eq!(root.counter, 6);
        assert!(sixth.as_str().starts_with("8d322d4b"), "{sixth}");
        assert!(sixth.as_str().ends_with("f95b"), "{sixth}");
        let branch0 = IdGenerator::branch(&sixth, 0);
        assert!(branch0.as_str().starts_with("74fa7d67"), "{branch0}");
    }

    #[test]
    fn memoized_ids_equal_computed_ones() {
        let last = MEMOIZED_ROOT_IDS as u64;
        for n in [
            0,
            1,
            2,
            255,
            256,
            4095,
            4096,
            25_000,
            last - 1,
            last,
            last + 1,
        ] {
            assert_eq!(operation_id(None, n), hash(None, n));
            assert_eq!(operation_id(None, n), operation_id(None, n));
        }
        let p = operation_id(None, 3);
        assert_eq!(operation_id(Some(&p), 1), hash(Some(&p), 1));
    }

    #[test]
    fn large_counters_hash_their_decimal_form() {
        let mut g = IdGenerator::root();
        g.counter = 1_234_566;
        let a = g.next_id().0;
        let b = IdGenerator::child(a).next_id().0;
        assert_ne!(a, b);
        assert_eq!(g.counter, 1_234_567);
        // Same inputs, same ids.
        let mut g2 = IdGenerator::root();
        g2.counter = 1_234_566;
        assert_eq!(g2.next_id().0, a);
    }
}

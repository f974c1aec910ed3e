//! [`SharedStr`]: the names and subtypes operations carry, cheap to copy.

use std::borrow::{Borrow, Cow};
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// An immutable string that is cheap to clone: a `&'static str` (the
/// subtypes, names written as literals) or a shared `Arc<str>`.
///
/// Operation names and subtypes are copied with every update, record and
/// page of a history; as `String`s each copy was a heap allocation. A clone
/// of a `SharedStr` allocates nothing. It reads as a `&str` (it derefs to
/// one) and compares, hashes, orders and serializes as one; the subtypes
/// AWS's SDKs write (`Step`, `Wait`, `MapIteration`, ...) deserialize to the
/// static strings of [`crate::subtype`] without allocating.
///
/// ```
/// use durable_yield_interpreter::model::SharedStr;
///
/// let name = SharedStr::from("charge card");
/// let copy = name.clone(); // no allocation
/// assert_eq!(copy, "charge card");
/// assert_eq!(copy.len(), 11);
/// let owned: SharedStr = format!("item {}", 3).into();
/// assert_eq!(&*owned, "item 3");
/// ```
#[derive(Clone)]
pub struct SharedStr(Repr);

#[derive(Clone)]
enum Repr {
    Static(&'static str),
    Shared(Arc<str>),
}

impl SharedStr {
    /// A static string, with no allocation (usable in `const` items).
    pub const fn from_static(s: &'static str) -> Self {
        SharedStr(Repr::Static(s))
    }

    /// A copy of `s`: the subtypes AWS's SDKs write (`Step`, `Map`, ...)
    /// as static strings, any other string in a new shared allocation.
    pub fn new(s: &str) -> Self {
        match SharedStr::interned(s) {
            Some(s) => SharedStr(Repr::Static(s)),
            None => SharedStr(Repr::Shared(s.into())),
        }
    }

    /// The string.
    #[inline]
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(s) => s,
            Repr::Shared(s) => s,
        }
    }

    /// The string's static form, if it is one of the subtypes AWS's SDKs
    /// write (so that deserialized histories share them).
    fn interned(s: &str) -> Option<&'static str> {
        crate::subtype::ALL.into_iter().find(|k| *k == s)
    }
}

/// The empty string.
impl Default for SharedStr {
    fn default() -> Self {
        SharedStr::from_static("")
    }
}

impl Deref for SharedStr {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for SharedStr {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for SharedStr {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl From<&'static str> for SharedStr {
    fn from(s: &'static str) -> Self {
        SharedStr(Repr::Static(s))
    }
}

impl From<String> for SharedStr {
    fn from(s: String) -> Self {
        SharedStr(Repr::Shared(s.into()))
    }
}

impl From<Arc<str>> for SharedStr {
    fn from(s: Arc<str>) -> Self {
        SharedStr(Repr::Shared(s))
    }
}

impl From<Cow<'static, str>> for SharedStr {
    fn from(s: Cow<'static, str>) -> Self {
        match s {
            Cow::Borrowed(s) => SharedStr(Repr::Static(s)),
            Cow::Owned(s) => s.into(),
        }
    }
}

impl From<SharedStr> for String {
    fn from(s: SharedStr) -> Self {
        s.as_str().to_owned()
    }
}

impl fmt::Debug for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for SharedStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq for SharedStr {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SharedStr {}

impl PartialEq<str> for SharedStr {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SharedStr {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for SharedStr {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<SharedStr> for str {
    fn eq(&self, other: &SharedStr) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<SharedStr> for &str {
    fn eq(&self, other: &SharedStr) -> bool {
        *self == other.as_str()
    }
}

impl PartialOrd for SharedStr {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SharedStr {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl Hash for SharedStr {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl Serialize for SharedStr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SharedStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = SharedStr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SharedStr, E> {
                Ok(SharedStr::new(v))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<SharedStr, E> {
                Ok(match SharedStr::interned(&v) {
                    Some(s) => SharedStr(Repr::Static(s)),
                    None => v.into(),
                })
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_compares_and_round_trips_as_a_str() {
        let a = SharedStr::from("a");
        let b = SharedStr::from(String::from("a"));
        assert_eq!(a, b);
        assert_eq!(a, "a");
        assert_eq!("a", a);
        let (x, y) = (SharedStr::from("a"), SharedStr::new("b"));
        assert!(x < y);
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(json, "\"a\"");
        let back: SharedStr = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a);
        assert_eq!(format!("{back} {back:?}"), "a \"a\"");
    }

    #[test]
    fn known_subtypes_deserialize_to_static_strings() {
        let s: SharedStr = serde_json::from_str("\"MapIteration\"").unwrap();
        assert!(matches!(s.0, Repr::Static(crate::subtype::MAP_ITERATION)));
        let s: SharedStr = serde_json::from_str("\"checkout\"").unwrap();
        assert!(matches!(s.0, Repr::Shared(_)));
        assert!(serde_json::from_str::<SharedStr>("3").is_err());
    }
}

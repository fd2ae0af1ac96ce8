//! Keys: canonical bytes and a stable hash.
//!
//! A key's key group must be the same in every process, on every platform
//! and in every version, or a savepoint could not be restored. So keys are not
//! hashed with `std::hash` (whose output is not promised to be stable) but
//! with xxh3 over a canonical byte form defined here: integers big-endian,
//! variable-length values prefixed by their length, tuples as the
//! concatenation of their parts.
//!
//! Keys are also serde types: a snapshot stores each key with its state,
//! so a restored backend can hand keys back (to timers, to typed maps).

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::hash::Hash;
use xxhash_rust::xxh3::xxh3_64;

/// A type that can be used as a key of a keyed stream.
///
/// Implemented for integers, `bool`, `char`, `String`, `Vec<u8>`, `Option`
/// and tuples of up to four keys. A key is also a serde type (it is stored
/// with its state). For a struct of your own, write its fields' canonical
/// bytes in a fixed order:
///
/// ```
/// use dataflow_state::Key;
///
/// #[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
/// struct UserId { region: u16, id: u64 }
///
/// impl Key for UserId {
///     fn write_canonical(&self, out: &mut Vec<u8>) {
///         self.region.write_canonical(out);
///         self.id.write_canonical(out);
///     }
/// }
///
/// let a = UserId { region: 1, id: 7 };
/// assert_eq!(a.stable_hash(), a.clone().stable_hash());
/// ```
pub trait Key: Clone + Eq + Hash + Send + Sync + Serialize + DeserializeOwned + 'static {
    /// Appends the canonical bytes of this key to `out`. Two keys that are
    /// equal must write the same bytes and two that differ must not.
    fn write_canonical(&self, out: &mut Vec<u8>);

    /// The stable, seed-free hash of this key: xxh3 over its canonical bytes.
    ///
    /// ```
    /// use dataflow_state::Key;
    /// assert_eq!(42u64.stable_hash(), xxhash_rust::xxh3::xxh3_64(&42u64.to_be_bytes()));
    /// ```
    fn stable_hash(&self) -> u64 {
        let mut buf = Vec::with_capacity(32);
        self.write_canonical(&mut buf);
        xxh3_64(&buf)
    }
}

macro_rules! int_key {
    ($($t:ty),*) => {$(
        impl Key for $t {
            #[inline]
            fn write_canonical(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_be_bytes());
            }
            #[inline]
            fn stable_hash(&self) -> u64 {
                xxh3_64(&self.to_be_bytes())
            }
        }
    )*};
}
int_key!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128);

impl Key for usize {
    #[inline]
    fn write_canonical(&self, out: &mut Vec<u8>) {
        (*self as u64).write_canonical(out)
    }
    #[inline]
    fn stable_hash(&self) -> u64 {
        (*self as u64).stable_hash()
    }
}

impl Key for isize {
    #[inline]
    fn write_canonical(&self, out: &mut Vec<u8>) {
        (*self as i64).write_canonical(out)
    }
    #[inline]
    fn stable_hash(&self) -> u64 {
        (*self as i64).stable_hash()
    }
}

impl Key for bool {
    fn write_canonical(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
}

impl Key for char {
    fn write_canonical(&self, out: &mut Vec<u8>) {
        (*self as u32).write_canonical(out)
    }
}

impl Key for () {
    fn write_canonical(&self, _out: &mut Vec<u8>) {}
}

fn write_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    // Length first so that tuples of variable-length keys stay unambiguous.
    out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(bytes);
}

impl Key for String {
    fn write_canonical(&self, out: &mut Vec<u8>) {
        write_bytes(self.as_bytes(), out)
    }
}

impl Key for Vec<u8> {
    fn write_canonical(&self, out: &mut Vec<u8>) {
        write_bytes(self, out)
    }
}

impl<K: Key> Key for Option<K> {
    fn write_canonical(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(k) => {
                out.push(1);
                k.write_canonical(out);
            }
        }
    }
}

macro_rules! tuple_key {
    ($($name:ident),+) => {
        impl<$($name: Key),+> Key for ($($name,)+) {
            #[allow(non_snake_case)]
            fn write_canonical(&self, out: &mut Vec<u8>) {
                let ($($name,)+) = self;
                $($name.write_canonical(out);)+
            }
        }
    };
}
tuple_key!(A);
tuple_key!(A, B);
tuple_key!(A, B, C);
tuple_key!(A, B, C, D);

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes<K: Key>(k: &K) -> Vec<u8> {
        let mut v = Vec::new();
        k.write_canonical(&mut v);
        v
    }

    #[test]
    fn string_tuples_are_unambiguous() {
        let a = (String::from("ab"), String::from("c"));
        let b = (String::from("a"), String::from("bc"));
        assert_ne!(bytes(&a), bytes(&b));
        assert_ne!(a.stable_hash(), b.stable_hash());
    }

    #[test]
    fn hash_is_stable_across_calls_and_matches_bytes() {
        // A pinned value: if this changes, every savepoint's key groups move.
        assert_eq!(7u32.stable_hash(), xxh3_64(&[0, 0, 0, 7]));
        assert_eq!("x".to_string().stable_hash(), xxh3_64(&bytes(&"x".to_string())));
        assert_eq!(5usize.stable_hash(), 5u64.stable_hash());
    }

    #[test]
    fn option_distinguishes_none_and_some_default() {
        assert_ne!(bytes(&None::<u8>), bytes(&Some(0u8)));
    }
}

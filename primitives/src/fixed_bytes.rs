//! Serde helpers for fixed-size byte arrays of any length.
//!
//! Serde only derives array support up to 32 elements; signatures and BLS points are
//! longer. These helpers encode `[u8; N]` as a tuple of `N` bytes, which bincode writes
//! as exactly `N` raw bytes with no length prefix, so a decoder can never be asked to
//! allocate for them.

use serde::de::{Error as _, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserializer, Serializer};
use std::fmt;
use std::marker::PhantomData;

/// Serialize a fixed-size byte array as a tuple.
pub fn serialize<S: Serializer, const N: usize>(
    bytes: &[u8; N],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut tuple = serializer.serialize_tuple(N)?;
    for byte in bytes {
        tuple.serialize_element(byte)?;
    }
    tuple.end()
}

/// Deserialize a fixed-size byte array written by [`serialize`].
pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
    deserializer: D,
) -> Result<[u8; N], D::Error> {
    struct ArrayVisitor<const N: usize>(PhantomData<[u8; N]>);
    impl<'de, const N: usize> Visitor<'de> for ArrayVisitor<N> {
        type Value = [u8; N];
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "{N} bytes")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<[u8; N], A::Error> {
            let mut out = [0u8; N];
            for (i, slot) in out.iter_mut().enumerate() {
                *slot = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(i, &self))?;
            }
            Ok(out)
        }
    }
    deserializer.deserialize_tuple(N, ArrayVisitor::<N>(PhantomData))
}

/// Implements `Serialize`/`Deserialize` for a newtype over `[u8; N]` and hex `Debug`/`Display`.
macro_rules! fixed_bytes_newtype {
    ($name:ident, $len:expr) => {
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                $crate::fixed_bytes::serialize::<S, $len>(&self.0, s)
            }
        }
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::fixed_bytes::deserialize::<D, $len>(d).map($name)
            }
        }
        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let hex = hex::encode(&self.0);
                write!(f, "{}({}..)", stringify!($name), &hex[..hex.len().min(16)])
            }
        }
    };
}
pub(crate) use fixed_bytes_newtype;

//! [`Dims`]: the extents of a tile or a region.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use smallvec::SmallVec;
use std::fmt;
use std::ops::{Deref, DerefMut};

/// Extents, outermost dimension first. Up to two are kept inline (every
/// tile and region of a 1D or 2D kernel), so tracing a command allocates
/// nothing for its shapes; more go on the heap. It reads as a slice, prints
/// and serialises as a list, and compares equal to a `Vec` or an array of
/// the same extents.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dims(SmallVec<[usize; 2]>);

impl Dims {
    /// No extents (a scalar's shape).
    pub fn new() -> Self {
        Dims(SmallVec::new())
    }

    /// Appends an extent.
    pub fn push(&mut self, d: usize) {
        self.0.push(d);
    }

    /// Inserts an extent at `at`.
    pub fn insert(&mut self, at: usize, d: usize) {
        self.0.insert(at, d);
    }

    /// Removes and returns the extent at `at`.
    pub fn remove(&mut self, at: usize) -> usize {
        self.0.remove(at)
    }

    /// Removes and returns the last extent.
    pub fn pop(&mut self) -> Option<usize> {
        self.0.pop()
    }
}

impl Deref for Dims {
    type Target = [usize];
    fn deref(&self) -> &[usize] {
        &self.0
    }
}

impl DerefMut for Dims {
    fn deref_mut(&mut self) -> &mut [usize] {
        &mut self.0
    }
}

impl fmt::Debug for Dims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl From<Vec<usize>> for Dims {
    fn from(v: Vec<usize>) -> Self {
        Dims(SmallVec::from_vec(v))
    }
}

impl From<&[usize]> for Dims {
    fn from(v: &[usize]) -> Self {
        Dims(SmallVec::from_slice(v))
    }
}

impl From<&Vec<usize>> for Dims {
    fn from(v: &Vec<usize>) -> Self {
        Dims(SmallVec::from_slice(v))
    }
}

impl<const N: usize> From<[usize; N]> for Dims {
    fn from(v: [usize; N]) -> Self {
        Dims(v.into_iter().collect())
    }
}

impl From<Dims> for Vec<usize> {
    fn from(d: Dims) -> Self {
        d.0.into_vec()
    }
}

impl FromIterator<usize> for Dims {
    fn from_iter<I: IntoIterator<Item = usize>>(it: I) -> Self {
        Dims(it.into_iter().collect())
    }
}

impl Extend<usize> for Dims {
    fn extend<I: IntoIterator<Item = usize>>(&mut self, it: I) {
        self.0.extend(it);
    }
}

impl<'a> IntoIterator for &'a Dims {
    type Item = &'a usize;
    type IntoIter = std::slice::Iter<'a, usize>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl PartialEq<Vec<usize>> for Dims {
    fn eq(&self, o: &Vec<usize>) -> bool {
        self[..] == o[..]
    }
}

impl PartialEq<Dims> for Vec<usize> {
    fn eq(&self, o: &Dims) -> bool {
        self[..] == o[..]
    }
}

impl PartialEq<[usize]> for Dims {
    fn eq(&self, o: &[usize]) -> bool {
        self[..] == *o
    }
}

impl PartialEq<&[usize]> for Dims {
    fn eq(&self, o: &&[usize]) -> bool {
        self[..] == **o
    }
}

impl<const N: usize> PartialEq<[usize; N]> for Dims {
    fn eq(&self, o: &[usize; N]) -> bool {
        self[..] == o[..]
    }
}

impl Serialize for Dims {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self[..].serialize(s)
    }
}

impl<'de> Deserialize<'de> for Dims {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<usize>::deserialize(d).map(Dims::from)
    }
}

#[cfg(test)]
mod tests {
    use super::Dims;

    #[test]
    fn dims_read_print_and_serialise_like_a_vec() {
        for v in [vec![], vec![7], vec![3, 4], vec![2, 3, 4, 5]] {
            let d = Dims::from(v.clone());
            assert_eq!(d, v);
            assert_eq!(&d[..], &v[..]);
            assert_eq!(format!("{d:?}"), format!("{v:?}"));
            assert_eq!(
                serde_json::to_string(&d).unwrap(),
                serde_json::to_string(&v).unwrap()
            );
            let back: Dims = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
            assert_eq!(back, d);
            assert_eq!(Vec::from(d), v);
        }
    }
}

//! Finding the channel ends among a process's arguments, for poison and retire
//! propagation.
//!
//! When a process body ends with `Poisoned` (or fails in any other way), every
//! channel end among its arguments is poisoned; when it ends with `Retired`,
//! every such end is retired. That is how one `poison()` shuts a whole network
//! down. The ends are found through the [`Ends`] trait, which is implemented
//! for [`Reader`](crate::Reader), [`Writer`](crate::Writer), and for `Vec`,
//! `VecDeque`, `Option`, `Box`, arrays, slices and tuples of types that
//! implement it, and (as "no ends") for the primitive types, `String` and
//! `Duration`. An argument whose type does not implement `Ends` is skipped, so
//! implement `Ends` for your own structs that hold ends.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

/// One end's handle, kept aside by a process for propagation.
pub(crate) trait EndHandle: Send + Sync {
    fn poison_end(&self);
    fn retire_end(&self);
}

/// The ends found among a process's arguments.
#[derive(Default)]
pub struct EndSet {
    ends: Vec<Arc<dyn EndHandle>>,
}

impl EndSet {
    /// An empty set.
    pub fn new() -> Self {
        EndSet { ends: Vec::new() }
    }

    pub(crate) fn push(&mut self, end: Arc<dyn EndHandle>) {
        self.ends.push(end);
    }

    /// How many ends the set holds.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// True when the set holds no end.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Poisons every end in the set.
    pub fn poison_all(&self) {
        for e in &self.ends {
            e.poison_end();
        }
    }

    /// Retires every end in the set (ends that already retired stay retired).
    pub fn retire_all(&self) {
        for e in &self.ends {
            e.retire_end();
        }
    }
}

impl fmt::Debug for EndSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EndSet({} ends)", self.ends.len())
    }
}

/// A value that may hold channel ends, for propagation.
///
/// ```
/// use csp_runtime::{EndSet, Ends};
///
/// # #[allow(dead_code)]
/// struct Ports<R: csp_runtime::Runtime> {
///     input: csp_runtime::Reader<u64, R>,
///     output: csp_runtime::Writer<u64, R>,
/// }
///
/// impl<R: csp_runtime::Runtime> Ends for Ports<R> {
///     fn collect_ends(&self, set: &mut EndSet) {
///         self.input.collect_ends(set);
///         self.output.collect_ends(set);
///     }
/// }
/// ```
pub trait Ends {
    /// Adds every channel end this value holds to `set`.
    fn collect_ends(&self, set: &mut EndSet);
}

macro_rules! no_ends {
    ($($t:ty),*) => {$(
        impl Ends for $t {
            #[inline]
            fn collect_ends(&self, _set: &mut EndSet) {}
        }
    )*};
}
no_ends!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    String,
    str,
    std::time::Duration
);

impl<E: Ends + ?Sized> Ends for &E {
    fn collect_ends(&self, set: &mut EndSet) {
        (**self).collect_ends(set)
    }
}
impl<E: Ends + ?Sized> Ends for Box<E> {
    fn collect_ends(&self, set: &mut EndSet) {
        (**self).collect_ends(set)
    }
}
impl<E: Ends> Ends for Option<E> {
    fn collect_ends(&self, set: &mut EndSet) {
        if let Some(e) = self {
            e.collect_ends(set)
        }
    }
}
impl<E: Ends> Ends for [E] {
    fn collect_ends(&self, set: &mut EndSet) {
        for e in self {
            e.collect_ends(set)
        }
    }
}
impl<E: Ends, const N: usize> Ends for [E; N] {
    fn collect_ends(&self, set: &mut EndSet) {
        self.as_slice().collect_ends(set)
    }
}
impl<E: Ends> Ends for Vec<E> {
    fn collect_ends(&self, set: &mut EndSet) {
        self.as_slice().collect_ends(set)
    }
}
impl<E: Ends> Ends for VecDeque<E> {
    fn collect_ends(&self, set: &mut EndSet) {
        for e in self {
            e.collect_ends(set)
        }
    }
}
macro_rules! tuple_ends {
    ($($n:tt $t:ident),+) => {
        impl<$($t: Ends),+> Ends for ($($t,)+) {
            fn collect_ends(&self, set: &mut EndSet) {
                $( self.$n.collect_ends(set); )+
            }
        }
    };
}
tuple_ends!(0 A);
tuple_ends!(0 A, 1 B);
tuple_ends!(0 A, 1 B, 2 C);
tuple_ends!(0 A, 1 B, 2 C, 3 D);
tuple_ends!(0 A, 1 B, 2 C, 3 D, 4 E);
tuple_ends!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F);
tuple_ends!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G);
tuple_ends!(0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H);

/// Autoref specialization used by `#[process]`: `(&&Probe(&arg)).__csp_collect_ends(set)`
/// collects the ends of `arg` if its type implements [`Ends`], and does nothing
/// otherwise. Not part of the public API.
#[doc(hidden)]
#[derive(Debug)]
pub struct Probe<'a, T: ?Sized>(pub &'a T);

/// Picked when the argument's type implements [`Ends`].
#[doc(hidden)]
pub trait ViaEnds {
    fn __csp_collect_ends(&self, set: &mut EndSet);
}
impl<T: Ends + ?Sized> ViaEnds for &Probe<'_, T> {
    #[inline]
    fn __csp_collect_ends(&self, set: &mut EndSet) {
        self.0.collect_ends(set)
    }
}

/// Picked otherwise: the argument holds no ends we can see.
#[doc(hidden)]
pub trait ViaNothing {
    fn __csp_collect_ends(&self, set: &mut EndSet);
}
impl<T: ?Sized> ViaNothing for Probe<'_, T> {
    #[inline]
    fn __csp_collect_ends(&self, _set: &mut EndSet) {}
}

//! Channels and their ends. See [`Channel`].
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::backend::{ChanOps, ChannelSpec, Direction, Runtime};
use crate::ends::{EndHandle, EndSet, Ends};
use crate::{Error, Message, Result};

/// Channels and their ends.
///
/// A [`Channel`] is any-to-any: any number of [`Reader`]s and [`Writer`]s. It is
/// a rendezvous by default (a write completes when a reader has taken the
/// message) or buffered with a fixed capacity. Readers and writers are matched
/// in the order they arrived.
///
/// Ends are counted: [`Channel::reader`], [`Channel::writer`] and cloning an end
/// each add one end to its side. [`Reader::retire`] / [`Writer::retire`] take
/// one away; when the last end on one side has retired, the channel is retired
/// and the other side's operations fail with [`Error::Retired`]. A retired end
/// cannot be used again. Dropping an end does **not** retire it (as in PyCSP):
/// retire says "I leave", drop only releases memory.
///
/// [`poison`](Reader::poison) is global and sticky: every pending and later
/// operation on the channel fails with [`Error::Poisoned`].
///
/// A channel: make ends with [`reader`](Channel::reader) and
/// [`writer`](Channel::writer) and hand them to processes.
///
/// Cloning a `Channel` shares the same channel (it makes no end).
pub struct Channel<T: Message, R: Runtime> {
    chan: R::Chan<T>,
}

impl<T: Message, R: Runtime> Channel<T, R> {
    /// A rendezvous channel with a generated name.
    pub fn new() -> Self {
        Self::with_spec(ChannelSpec {
            name: None,
            capacity: 0,
        })
    }

    /// A rendezvous channel with the given name (used in deadlock reports and,
    /// on the parallel backend, to find the channel from another program).
    pub fn named(name: impl Into<String>) -> Self {
        Self::with_spec(ChannelSpec {
            name: Some(name.into()),
            capacity: 0,
        })
    }

    /// A buffered channel that holds up to `capacity` messages; `0` is a
    /// rendezvous channel.
    pub fn buffered(capacity: usize) -> Self {
        Self::with_spec(ChannelSpec {
            name: None,
            capacity,
        })
    }

    /// A channel made from a full specification.
    pub fn with_spec(spec: ChannelSpec) -> Self {
        Channel {
            chan: R::channel(spec),
        }
    }

    /// A new reader end (the reader count goes up by one).
    pub fn reader(&self) -> Reader<T, R> {
        Reader {
            end: End::join(&self.chan, Direction::Read),
        }
    }

    /// A new writer end (the writer count goes up by one).
    pub fn writer(&self) -> Writer<T, R> {
        Writer {
            end: End::join(&self.chan, Direction::Write),
        }
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        self.chan.name()
    }

    /// 0 for rendezvous, else the buffer's capacity.
    pub fn capacity(&self) -> usize {
        self.chan.capacity()
    }

    /// Poisons the channel for everyone, discarding buffered messages.
    pub fn poison(&self) {
        self.chan.poison(Direction::Read);
    }

    /// True once the channel is poisoned.
    pub fn is_poisoned(&self) -> bool {
        self.chan.is_poisoned()
    }

    /// True once the channel is retired.
    pub fn is_retired(&self) -> bool {
        self.chan.is_retired()
    }
}

impl<T: Message, R: Runtime> Default for Channel<T, R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Message, R: Runtime> Clone for Channel<T, R> {
    fn clone(&self) -> Self {
        Channel {
            chan: self.chan.clone(),
        }
    }
}

impl<T: Message, R: Runtime> fmt::Debug for Channel<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Channel({:?})", self.chan.name())
    }
}

/// The shared state of one end: its channel and whether it has retired.
/// The end's [`EndSet`] shadow (kept by a process for propagation) points at
/// the same `End`, so retiring twice (once by the body, once by propagation)
/// counts once.
pub(crate) struct End<T: Message, R: Runtime> {
    chan: R::Chan<T>,
    dir: Direction,
    retired: AtomicBool,
}

impl<T: Message, R: Runtime> End<T, R> {
    fn join(chan: &R::Chan<T>, dir: Direction) -> Arc<Self> {
        chan.join(dir);
        Arc::new(End {
            chan: chan.clone(),
            dir,
            retired: AtomicBool::new(false),
        })
    }

    #[inline]
    fn check(&self) -> Result<()> {
        if self.retired.load(Ordering::Relaxed) {
            Err(Error::Retired)
        } else {
            Ok(())
        }
    }

    fn retire(&self) {
        if !self.retired.swap(true, Ordering::AcqRel) {
            self.chan.retire(self.dir);
        }
    }

    fn poison(&self) {
        self.chan.poison(self.dir);
    }
}

impl<T: Message, R: Runtime> EndHandle for End<T, R> {
    fn poison_end(&self) {
        self.poison();
    }
    fn retire_end(&self) {
        self.retire();
    }
}

macro_rules! end_common {
    ($end:ident, $dir:expr, $what:literal) => {
        impl<T: Message, R: Runtime> $end<T, R> {
            /// Poisons the channel (see the [`Channel`] docs for the rules).
            pub fn poison(&self) {
                self.end.poison();
            }

            /// This end leaves the channel for good. When it was the last end on
            /// its side, the channel retires. Retiring twice does nothing more.
            pub fn retire(&self) {
                self.end.retire();
            }

            /// True once this end has retired (it can no longer be used).
            pub fn is_retired(&self) -> bool {
                self.end.retired.load(Ordering::Relaxed)
            }

            /// The channel's name.
            pub fn channel_name(&self) -> &str {
                self.end.chan.name()
            }

            /// The backend's channel state (for backends and the alternation).
            pub(crate) fn chan(&self) -> &R::Chan<T> {
                &self.end.chan
            }

            /// Fails with `Retired` if this end has retired.
            #[inline]
            pub(crate) fn check(&self) -> Result<()> {
                self.end.check()
            }
        }

        impl<T: Message, R: Runtime> Clone for $end<T, R> {
            /// A new end on the same side of the same channel: it counts as one
            /// more end and must be retired on its own.
            fn clone(&self) -> Self {
                $end {
                    end: End::join(&self.end.chan, $dir),
                }
            }
        }

        impl<T: Message, R: Runtime> fmt::Debug for $end<T, R> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($what, "({:?})"), self.end.chan.name())
            }
        }

        impl<T: Message, R: Runtime> Ends for $end<T, R> {
            fn collect_ends(&self, set: &mut EndSet) {
                set.push(self.end.clone());
            }
        }

        impl<T: Message, R: Runtime> Serialize for $end<T, R> {
            fn serialize<S: Serializer>(&self, _s: S) -> std::result::Result<S::Ok, S::Error> {
                Err(S::Error::custom(format!(
                    concat!(
                        "the ",
                        $what,
                        " of channel '{}' cannot leave this OS process on the {} backend: ",
                        "within one process ends are moved, never serialized"
                    ),
                    self.end.chan.name(),
                    R::NAME
                )))
            }
        }

        impl<'de, T: Message, R: Runtime> Deserialize<'de> for $end<T, R> {
            fn deserialize<D: Deserializer<'de>>(_d: D) -> std::result::Result<Self, D::Error> {
                Err(D::Error::custom(format!(
                    concat!(
                        "a ",
                        $what,
                        " cannot be received from another OS process on the {} backend"
                    ),
                    R::NAME
                )))
            }
        }
    };
}

/// The reading end of a channel.
///
/// ```
/// # #[allow(dead_code)]
/// # fn doc<R: csp_runtime::Runtime>() -> csp_runtime::Result<()> {
/// let c = csp_runtime::Channel::<u32, R>::buffered(1);
/// c.writer().write(7)?;
/// assert_eq!(c.reader().read()?, 7);
/// # Ok(()) }
/// ```
pub struct Reader<T: Message, R: Runtime> {
    end: Arc<End<T, R>>,
}

/// The writing end of a channel.
pub struct Writer<T: Message, R: Runtime> {
    end: Arc<End<T, R>>,
}

end_common!(Reader, Direction::Read, "Reader");
end_common!(Writer, Direction::Write, "Writer");

impl<T: Message, R: Runtime> Reader<T, R> {
    /// Reads one message, waiting for a writer.
    ///
    /// # Errors
    /// `Poisoned` or `Retired` when the channel is (or becomes) poisoned or
    /// retired; `Retired` when this end has retired; `Deadlock` on greenlets
    /// when the network can no longer move.
    #[inline]
    pub fn read(&self) -> Result<T> {
        self.end.check()?;
        self.end.chan.read()
    }
}

impl<T: Message, R: Runtime> Writer<T, R> {
    /// Writes one message, waiting until a reader has taken it (or, on a
    /// buffered channel, until there is room).
    ///
    /// # Errors
    /// As [`Reader::read`]. A message that could not be written is dropped.
    #[inline]
    pub fn write(&self, value: T) -> Result<()> {
        self.end.check()?;
        self.end.chan.write(value)
    }
}

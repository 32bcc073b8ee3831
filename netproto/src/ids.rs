//! Identifiers of the protocol: nodes, channels, processes, offers, guards,
//! home epochs, and the protocol's notion of time.
//!
//! Every id is a small `Copy` newtype with `Display`, serde, and a total
//! order. The order of [`OfferId`] (and of [`GuardRef`], which sorts by its
//! offer first) is the *global claim order*: a home that must claim two
//! offers for one match claims the smaller first, which is what keeps two
//! homes from ever deadlocking each other (see `PROTOCOL.md`).
//!
//! ```
//! use csp_netproto::ids::{ChannelId, GuardRef, NodeId, OfferId};
//!
//! let a = OfferId { node: NodeId(2), seq: 7 };
//! let b = OfferId { node: NodeId(1), seq: 9 };
//! assert!(b < a); // ordered by node, then sequence
//! assert_eq!(a.to_string(), "o2.7");
//! assert_eq!(GuardRef { offer: a, guard: 1 }.to_string(), "o2.7#1");
//! assert_eq!(ChannelId { origin: NodeId(3), num: 4 }.to_string(), "c3.4");
//! ```

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A node: one OS process taking part in the network (one QUIC endpoint).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u32);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// A channel: the node that created it (its first home) and a number unique
/// at that node. The id never changes when the channel's home moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ChannelId {
    /// The node that created the channel: its home at [`Epoch::FIRST`].
    pub origin: NodeId,
    /// A number unique among the channels created at `origin`.
    pub num: u64,
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}.{}", self.origin.0, self.num)
    }
}

/// A process: the node it runs on and a number unique there. The protocol
/// only carries it back in events, for the driver's convenience.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ProcessId {
    /// The node the process runs on.
    pub node: NodeId,
    /// A number unique among that node's processes.
    pub num: u64,
}

impl fmt::Display for ProcessId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}.{}", self.node.0, self.num)
    }
}

/// One blocking operation of a process: a read, a write, an Alt (all its
/// guards share the id), or a control operation (join, retire, poison,
/// become-home). Owned by the node `node`, which alone decides how it ends.
///
/// The derived order (node, then sequence) is the global claim order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OfferId {
    /// The node that owns the offer (where its process runs).
    pub node: NodeId,
    /// A sequence number, increasing at that node.
    pub seq: u64,
}

impl fmt::Display for OfferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "o{}.{}", self.node.0, self.seq)
    }
}

/// One guard of an offer: what waits in a home's queue (the home's *party*).
/// A plain read or write is guard 0 of its offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GuardRef {
    /// The offer the guard belongs to.
    pub offer: OfferId,
    /// The guard's position in the offer (its priority: 0 is first).
    pub guard: u16,
}

impl fmt::Display for GuardRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.offer, self.guard)
    }
}

impl crate::home::Party for GuardRef {
    fn same_offer(&self, other: &Self) -> bool {
        self.offer == other.offer
    }
}

/// The generation of a channel's home: [`Epoch::FIRST`] at its origin, one
/// more at each move. A node that hosted a channel at epoch `e` and handed it
/// on answers later traffic with "the home is now node N at epoch e + 1".
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Epoch(pub u64);

impl Epoch {
    /// The epoch of a channel at the node that created it.
    pub const FIRST: Epoch = Epoch(0);

    /// The epoch after this one (saturating: `u64::MAX` moves are not a
    /// concern, but bad input must not overflow).
    #[must_use]
    pub fn next(self) -> Epoch {
        Epoch(self.0.saturating_add(1))
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "e{}", self.0)
    }
}

/// A point in time, in nanoseconds since an origin the driver chooses (its
/// start, say). The protocol never reads a clock: the driver passes `now`.
///
/// ```
/// use csp_netproto::ids::Time;
/// use std::time::Duration;
///
/// let t = Time::from_nanos(5) + Duration::from_nanos(10);
/// assert_eq!(t, Time::from_nanos(15));
/// ```
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Time(pub u64);

impl Time {
    /// The driver's origin of time.
    pub const ZERO: Time = Time(0);

    /// `nanos` nanoseconds after the origin.
    #[must_use]
    pub fn from_nanos(nanos: u64) -> Time {
        Time(nanos)
    }

    /// Nanoseconds since the origin.
    #[must_use]
    pub fn as_nanos(self) -> u64 {
        self.0
    }
}

impl std::ops::Add<Duration> for Time {
    type Output = Time;
    /// Saturates at the end of time rather than overflowing.
    fn add(self, d: Duration) -> Time {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Time(self.0.saturating_add(nanos))
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}ns", self.0)
    }
}

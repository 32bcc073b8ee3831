//! The home of one channel: where its readers and writers are matched.
//!
//! A [`ChannelHome`] holds a channel's buffer, its queues of waiting offers,
//! its reader and writer counts, and its poisoned/retired state, and applies
//! the channel rules of `shared/reference/pycsp-semantics.md` §3 (with the
//! §10 fixes):
//!
//! - **FIFO**: waiting readers and writers are served in the order they
//!   queued; a buffered channel hands out messages in the order written.
//! - **Rendezvous** (capacity 0): a read and a write complete together.
//! - **Buffered** (capacity `n`): a write completes once its message is in the
//!   buffer; a reader takes from the buffer, and a writer waiting on a full
//!   buffer moves its message in as soon as there is room.
//! - **Poison**: every waiting and later operation fails with
//!   [`Failure::Poisoned`]. A *writer's* poison of a non-empty buffer lets
//!   readers drain the buffer first (writers fail at once); a reader's poison
//!   discards it.
//! - **Retire**: when the last reader (or last writer) end retires, the
//!   channel is retired and operations fail with [`Failure::Retired`]; the
//!   last writer's retire of a non-empty buffer waits until it drains.
//!
//! The home is generic over the *party* type `P` (who waits: a blocked thread
//! in memory, or an offer id from another node) and the value type `V` (the
//! message itself in memory, its encoded bytes on the wire). It never blocks
//! and never wakes anyone itself: it tells a [`Parties`] what happened, and
//! asks it to *claim* a waiting offer that could still commit elsewhere (an
//! Alt guard) before committing it here.
//!
//! # Example
//!
//! ```
//! use csp_netproto::home::{ChannelHome, Claim, Offer, Outcome, Parties, Side, TryRead, TryWrite};
//!
//! /// Records what the home reports; every claim succeeds.
//! #[derive(Default)]
//! struct Log(Vec<(u32, Outcome<String>)>);
//! impl Parties<u32, String> for Log {
//!     fn claim(&mut self, _: &u32) -> Claim { Claim::Won }
//!     fn release(&mut self, _: &u32) {}
//!     fn complete(&mut self, party: u32, outcome: Outcome<String>) { self.0.push((party, outcome)) }
//!     fn give_back(&mut self, _: u32, _: String) {}
//! }
//!
//! let mut home = ChannelHome::<u32, String>::new(0); // rendezvous
//! let mut log = Log::default();
//! home.join(Side::Read);
//! home.join(Side::Write);
//!
//! // Nobody is reading yet: a running writer would block, so it queues as party 7.
//! let TryWrite::NotReady(msg) = home.try_write("hello".to_string(), &mut log) else { panic!() };
//! home.wait_write(Offer { party: 7, needs_claim: false }, msg);
//!
//! // A reader arrives and takes the message; the waiting writer is told it is done.
//! let TryRead::Done(m) = home.try_read(&mut log) else { panic!() };
//! assert_eq!(m, "hello");
//! assert!(matches!(log.0.as_slice(), [(7, Outcome::Written)]));
//! ```

use std::collections::VecDeque;
use std::fmt;

/// Which side of a channel: readers or writers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Side {
    /// The reading side.
    Read,
    /// The writing side.
    Write,
}

/// Why an operation on a channel failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Failure {
    /// The channel was poisoned.
    Poisoned,
    /// The channel was retired (every end of one side has left).
    Retired,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Failure::Poisoned => "the channel is poisoned",
            Failure::Retired => "the channel is retired",
        })
    }
}

/// The answer to a claim of a waiting offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The offer is now committed to this channel: the home completes it.
    Won,
    /// The offer already committed elsewhere (or gave up): the home drops it.
    Lost,
    /// The answer will come later (an offer owned by another node). The home
    /// treats the offer as not ready for now and keeps it queued.
    Pending,
}

/// How a waiting offer ended, as told to [`Parties::complete`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<V> {
    /// A waiting reader received this message.
    Read(V),
    /// A waiting writer's message was taken (by a reader, or into the buffer).
    Written,
    /// The channel failed; a waiting writer gets its message back.
    Failed(Failure, Option<V>),
}

/// The parties that wait at a home, as the home's driver knows them.
///
/// The home calls these while it is being operated on (under the driver's
/// lock, for an in-memory driver); implementations record what to do and act
/// (wake a thread, send a message) after the operation returns.
pub trait Parties<P, V> {
    /// Claims the waiting offer `party` (queued with `needs_claim`) for a
    /// match on this channel. In memory: one compare-and-swap on the waiter's
    /// state.
    fn claim(&mut self, party: &P) -> Claim;
    /// Undoes a claim that answered [`Claim::Won`] when the match it was for
    /// fell through (only when two claims are needed for one match).
    fn release(&mut self, party: &P);
    /// The waiting offer `party` has ended with `outcome`. Called for every
    /// queued offer when the channel fails, whether or not it needs a claim:
    /// a party that may have committed elsewhere must check that itself.
    fn complete(&mut self, party: P, outcome: Outcome<V>);
    /// A waiting writer's claim was [`Claim::Lost`]: its message goes back to
    /// its owner.
    fn give_back(&mut self, party: P, value: V);
}

/// A waiting read or write, queued at a home.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Offer<P> {
    /// Who waits.
    pub party: P,
    /// True for an offer that could still commit elsewhere (a guard of an
    /// Alt): the home must [claim](Parties::claim) it before committing it.
    pub needs_claim: bool,
}

/// The result of [`ChannelHome::try_read`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TryRead<V> {
    /// A message was read.
    Done(V),
    /// Nothing to read now.
    NotReady,
    /// The channel has failed.
    Failed(Failure),
}

/// The result of [`ChannelHome::try_write`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TryWrite<V> {
    /// The message was taken (by a waiting reader or into the buffer).
    Done,
    /// No room and no reader now: the message comes back.
    NotReady(V),
    /// The channel has failed: the message comes back.
    Failed(Failure, V),
}

/// How a channel stops once its buffer has drained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Stop {
    /// A writer poisoned a non-empty buffer.
    Poison,
    /// The last writer retired from a non-empty buffer.
    Retire,
}

/// The state of one channel at its home. See the [module docs](self).
///
/// # Invariants (between calls)
///
/// - A waiting reader is queued only while the buffer is empty; a waiting
///   writer only while the buffer is full (capacity 0: always). Queued
///   offers may be stale (their owner committed elsewhere): every match
///   claims an offer that needs it, and drops it if the claim is lost.
/// - Once poisoned or retired, the channel stays so, and no offer is queued.
pub struct ChannelHome<P, V> {
    capacity: usize,
    readers: u64,
    writers: u64,
    poisoned: bool,
    retired: bool,
    after_drain: Option<Stop>,
    buffer: VecDeque<V>,
    read_offers: VecDeque<Offer<P>>,
    write_offers: VecDeque<(Offer<P>, V)>,
    /// The match whose claims are outstanding (network matching only).
    in_flight: Option<InFlight<P, V>>,
    /// No new matches start (a move of the home is waiting).
    held: bool,
}

impl<P: fmt::Debug, V> fmt::Debug for ChannelHome<P, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelHome")
            .field("capacity", &self.capacity)
            .field("readers", &self.readers)
            .field("writers", &self.writers)
            .field("poisoned", &self.poisoned)
            .field("retired", &self.retired)
            .field("after_drain", &self.after_drain)
            .field("buffered", &self.buffer.len())
            .field("read_offers", &self.read_offers)
            .field(
                "write_offers",
                &self.write_offers.iter().map(|(o, _)| o).collect::<Vec<_>>(),
            )
            .field(
                "in_flight",
                &self.in_flight.as_ref().map(|m| {
                    (
                        m.reader.as_ref().map(|r| &r.offer),
                        m.writer.as_ref().map(|(w, _)| &w.offer),
                    )
                }),
            )
            .field("held", &self.held)
            .finish()
    }
}

/// What [`ChannelHome::claim_reader`] found at the head of a queue.
enum Head {
    /// The head offer is committed to this match.
    Won,
    /// No offer can be committed now.
    None,
    /// The head offer's claim will be answered later: nothing may overtake it.
    Pending,
}

impl<P, V> ChannelHome<P, V> {
    /// A new home for a channel with `capacity` (0: rendezvous).
    pub fn new(capacity: usize) -> Self {
        ChannelHome {
            capacity,
            readers: 0,
            writers: 0,
            poisoned: false,
            retired: false,
            after_drain: None,
            buffer: VecDeque::with_capacity(capacity.min(1024)),
            read_offers: VecDeque::new(),
            write_offers: VecDeque::new(),
            in_flight: None,
            held: false,
        }
    }

    /// 0 for a rendezvous channel, else the buffer's capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The number of ends on `side` that joined and have not retired.
    pub fn ends(&self, side: Side) -> u64 {
        match side {
            Side::Read => self.readers,
            Side::Write => self.writers,
        }
    }

    /// Messages in the buffer now.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// The number of queued offers on `side` (stale ones included).
    pub fn waiting(&self, side: Side) -> usize {
        match side {
            Side::Read => self.read_offers.len(),
            Side::Write => self.write_offers.len(),
        }
    }

    /// True once poisoned (a writer's poison of a non-empty buffer counts
    /// once the buffer has drained).
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// True once retired.
    pub fn is_retired(&self) -> bool {
        self.retired
    }

    /// The failure an operation meets now on `side`, if any.
    fn failure(&self, side: Side) -> Option<Failure> {
        if self.poisoned || (side == Side::Write && self.after_drain == Some(Stop::Poison)) {
            Some(Failure::Poisoned)
        } else if self.retired {
            Some(Failure::Retired)
        } else {
            None
        }
    }

    /// A new end joins on `side`.
    pub fn join(&mut self, side: Side) {
        match side {
            Side::Read => self.readers += 1,
            Side::Write => self.writers += 1,
        }
    }

    /// An end on `side` leaves for good. When the last end of a side leaves,
    /// the channel retires (after the buffer drains, for the last writer).
    pub fn retire(&mut self, side: Side, parties: &mut impl Parties<P, V>) {
        match side {
            Side::Read => {
                self.readers = self.readers.saturating_sub(1);
                if self.readers == 0 && !self.poisoned && !self.retired {
                    self.stop(Failure::Retired, parties);
                }
            }
            Side::Write => {
                self.writers = self.writers.saturating_sub(1);
                if self.writers == 0 && !self.poisoned && !self.retired {
                    if !self.buffer.is_empty() {
                        self.after_drain.get_or_insert(Stop::Retire);
                    } else {
                        self.stop(Failure::Retired, parties);
                    }
                }
            }
        }
    }

    /// Poisons the channel through an end on `side`. A writer's poison of a
    /// non-empty buffer lets readers drain it first; writers fail at once.
    pub fn poison(&mut self, side: Side, parties: &mut impl Parties<P, V>) {
        if self.poisoned {
            return;
        }
        if side == Side::Write && !self.buffer.is_empty() {
            self.after_drain = Some(Stop::Poison);
            fail_writers(&mut self.write_offers, Failure::Poisoned, parties);
        } else {
            self.buffer.clear();
            self.stop(Failure::Poisoned, parties);
        }
    }

    /// Marks the channel failed and tells every queued offer.
    fn stop(&mut self, failure: Failure, parties: &mut impl Parties<P, V>) {
        match failure {
            Failure::Poisoned => self.poisoned = true,
            Failure::Retired => self.retired = true,
        }
        self.after_drain = None;
        for o in self.read_offers.drain(..) {
            parties.complete(o.party, Outcome::Failed(failure, None));
        }
        fail_writers(&mut self.write_offers, failure, parties);
    }

    /// After the buffer shrank: finish a deferred stop once it is empty.
    fn after_take(&mut self, parties: &mut impl Parties<P, V>) {
        if self.buffer.is_empty() {
            match self.after_drain.take() {
                Some(Stop::Poison) => self.stop(Failure::Poisoned, parties),
                Some(Stop::Retire) => self.stop(Failure::Retired, parties),
                None => {}
            }
        }
    }

    /// A running reader (one not queued here) reads now if it can: from the
    /// buffer, or from the first waiting writer that can commit.
    ///
    /// While a network match is in flight (see [`post_read`](Self::post_read))
    /// nothing can be taken: the answer is `NotReady`.
    pub fn try_read(&mut self, parties: &mut impl Parties<P, V>) -> TryRead<V> {
        if self.poisoned {
            return TryRead::Failed(Failure::Poisoned);
        }
        if self.in_flight.is_some() {
            return TryRead::NotReady;
        }
        if let Some(v) = self.buffer.pop_front() {
            // Room now: the first waiting writer that commits moves in.
            if let Some((o, m)) = self.commit_writer(parties) {
                self.buffer.push_back(m);
                parties.complete(o.party, Outcome::Written);
            }
            self.after_take(parties);
            return TryRead::Done(v);
        }
        if self.retired {
            return TryRead::Failed(Failure::Retired);
        }
        if self.capacity == 0 {
            if let Some((o, m)) = self.commit_writer(parties) {
                parties.complete(o.party, Outcome::Written);
                return TryRead::Done(m);
            }
        }
        TryRead::NotReady
    }

    /// A running writer (one not queued here) writes now if it can: to the
    /// first waiting reader that can commit, or into the buffer.
    ///
    /// A queued reader whose claim answers [`Claim::Pending`] keeps its place:
    /// the message is not buffered past it, and the answer is `NotReady`.
    pub fn try_write(&mut self, value: V, parties: &mut impl Parties<P, V>) -> TryWrite<V> {
        if let Some(f) = self.failure(Side::Write) {
            return TryWrite::Failed(f, value);
        }
        if self.in_flight.is_some() {
            return TryWrite::NotReady(value);
        }
        match self.claim_reader(parties) {
            Head::Won => {
                if let Some(o) = self.read_offers.pop_front() {
                    parties.complete(o.party, Outcome::Read(value));
                    return TryWrite::Done;
                }
            }
            Head::Pending => return TryWrite::NotReady(value),
            Head::None => {}
        }
        if self.buffer.len() < self.capacity {
            self.buffer.push_back(value);
            return TryWrite::Done;
        }
        TryWrite::NotReady(value)
    }

    /// Claims queued readers from the front until one commits (it stays at
    /// the front) or none is left or an answer is pending.
    fn claim_reader(&mut self, parties: &mut impl Parties<P, V>) -> Head {
        while let Some(o) = self.read_offers.front() {
            if !o.needs_claim {
                return Head::Won;
            }
            match parties.claim(&o.party) {
                Claim::Won => return Head::Won,
                Claim::Lost => {
                    self.read_offers.pop_front();
                }
                Claim::Pending => return Head::Pending,
            }
        }
        Head::None
    }

    /// Takes the first queued writer that commits, with its message.
    fn commit_writer(&mut self, parties: &mut impl Parties<P, V>) -> Option<(Offer<P>, V)> {
        while let Some((o, _)) = self.write_offers.front() {
            if o.needs_claim {
                match parties.claim(&o.party) {
                    Claim::Won => {}
                    Claim::Lost => {
                        if let Some((o, m)) = self.write_offers.pop_front() {
                            parties.give_back(o.party, m);
                        }
                        continue;
                    }
                    Claim::Pending => return None,
                }
            }
            return self.write_offers.pop_front();
        }
        None
    }

    /// Queues a waiting reader, without trying to match it: call after
    /// [`try_read`](Self::try_read) said `NotReady` (with no other operation
    /// in between), or to register an Alt guard (see [`ready`](Self::ready)).
    pub fn wait_read(&mut self, offer: Offer<P>) {
        self.read_offers.push_back(offer);
    }

    /// Queues a waiting writer with its message, without trying to match it;
    /// as [`wait_read`](Self::wait_read).
    pub fn wait_write(&mut self, offer: Offer<P>, value: V) {
        self.write_offers.push_back((offer, value));
    }

    /// Would a running party on `side` find something now: a message or a
    /// waiting writer (for a reader), room or a waiting reader (for a writer),
    /// or a failure? Queued offers count even if they may be stale.
    ///
    /// An Alt registers its guards with `wait_*` and no matching, so a guard
    /// registered on a ready channel must give up its wait and try again.
    pub fn ready(&self, side: Side) -> bool {
        if self.failure(side).is_some() {
            return true;
        }
        match side {
            Side::Read => {
                !self.buffer.is_empty() || (self.capacity == 0 && !self.write_offers.is_empty())
            }
            Side::Write => !self.read_offers.is_empty() || self.buffer.len() < self.capacity,
        }
    }

    /// Removes the queued offers on `side` whose party satisfies `is`, and
    /// returns a removed writer's message (the last one, if several match).
    ///
    /// A party of the network match in flight is marked withdrawn instead:
    /// the match falls through when it is next looked at, and a writer's
    /// message is [given back](Parties::give_back) then.
    pub fn withdraw(&mut self, side: Side, mut is: impl FnMut(&P) -> bool) -> Option<V> {
        if let Some(m) = self.in_flight.as_mut() {
            match side {
                Side::Read => {
                    if let Some(r) = m.reader.as_mut().filter(|r| is(&r.offer.party)) {
                        r.withdrawn = true;
                    }
                }
                Side::Write => {
                    if let Some((w, _)) = m.writer.as_mut().filter(|(w, _)| is(&w.offer.party)) {
                        w.withdrawn = true;
                    }
                }
            }
        }
        match side {
            Side::Read => {
                self.read_offers.retain(|o| !is(&o.party));
                None
            }
            Side::Write => {
                let mut back = None;
                let mut i = 0;
                while i < self.write_offers.len() {
                    if is(&self.write_offers[i].0.party) {
                        back = self.write_offers.remove(i).map(|(_, m)| m);
                    } else {
                        i += 1;
                    }
                }
                back
            }
        }
    }
}

/// A party the network API can match: it can tell whether two parties are
/// guards of one offer (one Alt), which must never be matched together.
pub trait Party: Ord + Clone {
    /// True if `self` and `other` belong to the same offer.
    fn same_offer(&self, other: &Self) -> bool;
}

/// One party of a match in flight, with where it stood in its queue.
#[derive(Clone, Debug)]
struct Held<P> {
    offer: Offer<P>,
    /// Its position in its queue when taken out (it goes back there).
    index: usize,
    /// Its claim was won (or it needs none).
    won: bool,
    /// Withdrawn while in flight: it must not commit nor go back.
    withdrawn: bool,
}

/// A match whose claims are not all answered yet. Reader only: it takes the
/// buffer's first message; writer only: its message goes into the buffer;
/// both: a rendezvous.
#[derive(Clone, Debug)]
struct InFlight<P, V> {
    reader: Option<Held<P>>,
    writer: Option<(Held<P>, V)>,
    /// The side whose claim is outstanding.
    awaiting: Option<Side>,
}

impl<P: Clone, V> InFlight<P, V> {
    fn parties(&self) -> Vec<P> {
        let mut v = Vec::new();
        if let Some(r) = &self.reader {
            v.push(r.offer.party.clone());
        }
        if let Some((w, _)) = &self.writer {
            v.push(w.offer.party.clone());
        }
        v
    }
}

/// Where [`ChannelHome::advance`] stopped.
enum Step {
    /// The match committed or fell through: look for the next one.
    Again,
    /// A claim is outstanding.
    Wait,
}

/// The whole state of a home, as handed from an old home to a new one when
/// the channel moves (see [`ChannelHome::hand_over`]). Queued offers keep
/// their order.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HomeState<P, V> {
    /// 0 for a rendezvous channel, else the buffer's capacity.
    pub capacity: u64,
    /// Reader ends that joined and have not retired.
    pub readers: u64,
    /// Writer ends that joined and have not retired.
    pub writers: u64,
    /// Poisoned.
    pub poisoned: bool,
    /// Retired.
    pub retired: bool,
    /// A stop deferred until the buffer drains.
    pub after_drain: Option<Stop>,
    /// The buffered messages, oldest first.
    pub buffer: Vec<V>,
    /// Waiting readers, in queue order.
    pub read_offers: Vec<Offer<P>>,
    /// Waiting writers with their messages, in queue order.
    pub write_offers: Vec<(Offer<P>, V)>,
}

impl<P, V> HomeState<P, V> {
    /// Checks what a home's state must satisfy; a state from the network is
    /// bad input until checked.
    ///
    /// # Errors
    ///
    /// A short description of the first rule broken.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.buffer.len() as u64 > self.capacity {
            return Err("more buffered messages than the capacity");
        }
        if self.poisoned && !(self.read_offers.is_empty() && self.write_offers.is_empty()) {
            return Err("offers queued at a poisoned home");
        }
        if self.retired
            && !(self.write_offers.is_empty()
                && (self.read_offers.is_empty() || !self.buffer.is_empty()))
        {
            return Err("offers queued at a retired home with nothing to read");
        }
        if self.after_drain.is_some() && self.buffer.is_empty() {
            return Err("a deferred stop with an empty buffer");
        }
        Ok(())
    }
}

/// Network matching: for parties whose claims may be answered
/// [`Claim::Pending`] (offers owned by other nodes).
///
/// Offers are *posted* (queued, then matched by the home itself), and a home
/// has at most one match in flight: the parties of that match are taken out
/// of their queues (reserved) until every claim it needs is answered. Claims
/// of one match are taken in the parties' order (`P: Ord`, the global claim
/// order), which is what keeps two homes from deadlocking each other. When a
/// claim is lost, the lost party is dropped (a writer's message is
/// [given back](Parties::give_back)), a won party is
/// [released](Parties::release), and the survivors go back to the place in
/// their queue they were taken from. Nothing overtakes a match in flight: no
/// other match starts, and [`try_read`](Self::try_read) /
/// [`try_write`](Self::try_write) answer not-ready.
///
/// A match commits only once all its claims are won, and checks the channel
/// again then: if it was poisoned or retired meanwhile, its parties fail
/// (their claims are won, so failing them is how they end).
///
/// ```
/// use csp_netproto::home::{ChannelHome, Claim, Offer, Outcome, Parties, Party};
///
/// #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
/// struct Guard(u32, u8); // (offer, guard)
/// impl Party for Guard {
///     fn same_offer(&self, o: &Self) -> bool { self.0 == o.0 }
/// }
/// /// Every claim is answered later.
/// #[derive(Default)]
/// struct Remote { claims: Vec<Guard>, done: Vec<(Guard, Outcome<u8>)> }
/// impl Parties<Guard, u8> for Remote {
///     fn claim(&mut self, g: &Guard) -> Claim { self.claims.push(*g); Claim::Pending }
///     fn release(&mut self, _: &Guard) {}
///     fn complete(&mut self, g: Guard, o: Outcome<u8>) { self.done.push((g, o)) }
///     fn give_back(&mut self, _: Guard, _: u8) {}
/// }
///
/// let mut home = ChannelHome::<Guard, u8>::new(0);
/// let mut net = Remote::default();
/// home.post_write(Offer { party: Guard(1, 0), needs_claim: false }, 42, &mut net);
/// home.post_read(Offer { party: Guard(2, 1), needs_claim: true }, &mut net); // an Alt's guard
/// assert_eq!(net.claims, [Guard(2, 1)]); // the match waits for the Alt's owner
/// assert!(home.in_flight());
/// home.claim_answered(&Guard(2, 1), true, &mut net);
/// assert_eq!(net.done, [(Guard(1, 0), Outcome::Written), (Guard(2, 1), Outcome::Read(42))]);
/// ```
impl<P: Party, V> ChannelHome<P, V> {
    /// Queues a reader offer and matches what can be matched. On a poisoned
    /// or retired channel (with nothing left to read) it fails at once.
    pub fn post_read(&mut self, offer: Offer<P>, parties: &mut impl Parties<P, V>) {
        if self.poisoned || (self.retired && self.buffer.is_empty()) {
            let f = if self.poisoned {
                Failure::Poisoned
            } else {
                Failure::Retired
            };
            parties.complete(offer.party, Outcome::Failed(f, None));
            return;
        }
        self.read_offers.push_back(offer);
        self.pump(parties);
    }

    /// Queues a writer offer with its message and matches what can be
    /// matched. On a poisoned or retired channel it fails at once and the
    /// message goes back with the failure.
    pub fn post_write(&mut self, offer: Offer<P>, value: V, parties: &mut impl Parties<P, V>) {
        if let Some(f) = self.failure(Side::Write) {
            parties.complete(offer.party, Outcome::Failed(f, Some(value)));
            return;
        }
        self.write_offers.push_back((offer, value));
        self.pump(parties);
    }

    /// The answer to a claim that was [`Claim::Pending`]. Returns false (and
    /// does nothing) if no match in flight waits for `party`: a stale or
    /// unexpected answer.
    pub fn claim_answered(
        &mut self,
        party: &P,
        won: bool,
        parties: &mut impl Parties<P, V>,
    ) -> bool {
        let Some(m) = self.in_flight.as_mut() else {
            return false;
        };
        let side = match m.awaiting {
            Some(Side::Read) if m.reader.as_ref().is_some_and(|r| r.offer.party == *party) => {
                Side::Read
            }
            Some(Side::Write)
                if m.writer
                    .as_ref()
                    .is_some_and(|(w, _)| w.offer.party == *party) =>
            {
                Side::Write
            }
            _ => return false,
        };
        m.awaiting = None;
        if won {
            match side {
                Side::Read => {
                    if let Some(r) = m.reader.as_mut() {
                        r.won = true;
                    }
                }
                Side::Write => {
                    if let Some((w, _)) = m.writer.as_mut() {
                        w.won = true;
                    }
                }
            }
            if let Step::Wait = self.advance(parties) {
                return true;
            }
        } else {
            self.lose(side, parties);
        }
        self.pump(parties);
        true
    }

    /// True while a match waits for a claim's answer.
    pub fn in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// The parties of the match in flight, if any.
    pub fn in_flight_parties(&self) -> Vec<P> {
        self.in_flight
            .as_ref()
            .map(InFlight::parties)
            .unwrap_or_default()
    }

    /// The party whose claim the match in flight waits for, if any.
    pub fn awaiting(&self) -> Option<&P> {
        let m = self.in_flight.as_ref()?;
        match m.awaiting? {
            Side::Read => m.reader.as_ref().map(|r| &r.offer.party),
            Side::Write => m.writer.as_ref().map(|(w, _)| &w.offer.party),
        }
    }

    /// Stops starting new matches (the match in flight, if any, finishes):
    /// the first step of moving the home.
    pub fn hold(&mut self) {
        self.held = true;
    }

    /// Starts matching again after [`hold`](Self::hold) (a move that was
    /// called off), and matches what can be matched.
    pub fn unhold(&mut self, parties: &mut impl Parties<P, V>) {
        self.held = false;
        self.pump(parties);
    }

    /// True if a match could start now: the home is not held, nothing is in
    /// flight, and two queued parties (or a party and the buffer) fit.
    /// Queued offers count even if stale. Used to check progress.
    pub fn can_match(&self) -> bool {
        !self.held && self.in_flight.is_none() && self.candidate().is_some()
    }

    /// The queued reader offers, in order.
    pub fn read_queue(&self) -> impl Iterator<Item = &Offer<P>> {
        self.read_offers.iter()
    }

    /// The queued writer offers with their messages, in order.
    pub fn write_queue(&self) -> impl Iterator<Item = (&Offer<P>, &V)> {
        self.write_offers.iter().map(|(o, v)| (o, v))
    }

    /// The buffered messages, oldest first.
    pub fn buffer(&self) -> impl Iterator<Item = &V> {
        self.buffer.iter()
    }

    /// Takes the whole state out to hand it to a new home, leaving this one
    /// empty. `None` (and nothing changes) while a match is in flight.
    pub fn hand_over(&mut self) -> Option<HomeState<P, V>> {
        if self.in_flight.is_some() {
            return None;
        }
        Some(HomeState {
            capacity: self.capacity as u64,
            readers: self.readers,
            writers: self.writers,
            poisoned: self.poisoned,
            retired: self.retired,
            after_drain: self.after_drain.take(),
            buffer: self.buffer.drain(..).collect(),
            read_offers: self.read_offers.drain(..).collect(),
            write_offers: self.write_offers.drain(..).collect(),
        })
    }

    /// A home made from a handed-over state. Check the state with
    /// [`HomeState::validate`] first if it came from the network.
    pub fn from_state(state: HomeState<P, V>) -> Self {
        ChannelHome {
            capacity: usize::try_from(state.capacity).unwrap_or(usize::MAX),
            readers: state.readers,
            writers: state.writers,
            poisoned: state.poisoned,
            retired: state.retired,
            after_drain: state.after_drain,
            buffer: state.buffer.into(),
            read_offers: state.read_offers.into(),
            write_offers: state.write_offers.into(),
            in_flight: None,
            held: false,
        }
    }

    /// Matches whatever can be matched, until a claim is outstanding.
    pub fn pump(&mut self, parties: &mut impl Parties<P, V>) {
        loop {
            // Survivors of a lost claim may have gone back to a channel that
            // failed meanwhile: they fail now, held or not.
            self.settle(parties);
            if self.in_flight.is_some() || self.held {
                return;
            }
            let Some((r, w)) = self.candidate() else {
                return;
            };
            // Take the parties out, the later index first.
            let writer = w.and_then(|j| {
                self.write_offers.remove(j).map(|(o, v)| {
                    let won = !o.needs_claim;
                    (
                        Held {
                            offer: o,
                            index: j,
                            won,
                            withdrawn: false,
                        },
                        v,
                    )
                })
            });
            let reader = r.and_then(|i| {
                self.read_offers.remove(i).map(|o| Held {
                    won: !o.needs_claim,
                    offer: o,
                    index: i,
                    withdrawn: false,
                })
            });
            self.in_flight = Some(InFlight {
                reader,
                writer,
                awaiting: None,
            });
            if let Step::Wait = self.advance(parties) {
                return;
            }
        }
    }

    /// The next match to try: (reader index, writer index), either may be
    /// absent (buffer) but not both.
    fn candidate(&self) -> Option<(Option<usize>, Option<usize>)> {
        if !self.buffer.is_empty() && !self.read_offers.is_empty() && !self.poisoned {
            return Some((Some(0), None));
        }
        if self.capacity > 0 {
            if self.buffer.len() < self.capacity
                && !self.write_offers.is_empty()
                && self.failure(Side::Write).is_none()
            {
                return Some((None, Some(0)));
            }
            return None;
        }
        if self.poisoned || self.retired {
            return None;
        }
        // Rendezvous: the first reader with a writer of another offer.
        for (i, r) in self.read_offers.iter().enumerate() {
            if let Some(j) = self
                .write_offers
                .iter()
                .position(|(w, _)| !w.party.same_offer(&r.party))
            {
                return Some((Some(i), Some(j)));
            }
        }
        None
    }

    /// Fails queued offers that can no longer succeed (the home's invariant:
    /// nothing waits at a failed channel).
    fn settle(&mut self, parties: &mut impl Parties<P, V>) {
        if let Some(f) = self.failure(Side::Write) {
            fail_writers(&mut self.write_offers, f, parties);
        }
        if self.poisoned || (self.retired && self.buffer.is_empty()) {
            let f = if self.poisoned {
                Failure::Poisoned
            } else {
                Failure::Retired
            };
            for o in self.read_offers.drain(..) {
                parties.complete(o.party, Outcome::Failed(f, None));
            }
        }
    }

    /// Claims the parties of the match in flight that still need it, in
    /// order, and commits it once all are won.
    fn advance(&mut self, parties: &mut impl Parties<P, V>) -> Step {
        loop {
            let Some(m) = self.in_flight.as_mut() else {
                return Step::Again;
            };
            // A withdrawn party is as good as a lost claim.
            if m.reader.as_ref().is_some_and(|r| r.withdrawn) {
                self.lose(Side::Read, parties);
                return Step::Again;
            }
            if m.writer.as_ref().is_some_and(|(w, _)| w.withdrawn) {
                self.lose(Side::Write, parties);
                return Step::Again;
            }
            let r = m.reader.as_ref().filter(|r| !r.won).map(|r| &r.offer.party);
            let w = m
                .writer
                .as_ref()
                .filter(|(w, _)| !w.won)
                .map(|(w, _)| &w.offer.party);
            let (side, party) = match (r, w) {
                (None, None) => {
                    self.commit(parties);
                    return Step::Again;
                }
                (Some(r), None) => (Side::Read, r),
                (None, Some(w)) => (Side::Write, w),
                (Some(r), Some(w)) if r < w => (Side::Read, r),
                (Some(_), Some(w)) => (Side::Write, w),
            };
            match parties.claim(party) {
                Claim::Won => match side {
                    Side::Read => {
                        if let Some(r) = m.reader.as_mut() {
                            r.won = true;
                        }
                    }
                    Side::Write => {
                        if let Some((w, _)) = m.writer.as_mut() {
                            w.won = true;
                        }
                    }
                },
                Claim::Lost => {
                    self.lose(side, parties);
                    return Step::Again;
                }
                Claim::Pending => {
                    m.awaiting = Some(side);
                    return Step::Wait;
                }
            }
        }
    }

    /// The claim of the party on `side` of the match in flight was lost.
    fn lose(&mut self, side: Side, parties: &mut impl Parties<P, V>) {
        let Some(m) = self.in_flight.take() else {
            return;
        };
        let (lost_r, keep_r) = match side {
            Side::Read => (m.reader, None),
            Side::Write => (None, m.reader),
        };
        let (lost_w, keep_w) = match side {
            Side::Write => (m.writer, None),
            Side::Read => (None, m.writer),
        };
        drop(lost_r);
        if let Some((w, v)) = lost_w {
            parties.give_back(w.offer.party, v);
        }
        if let Some(r) = keep_r {
            if r.won && r.offer.needs_claim {
                parties.release(&r.offer.party);
            }
            if !r.withdrawn {
                let at = r.index.min(self.read_offers.len());
                self.read_offers.insert(at, r.offer);
            }
        }
        if let Some((w, v)) = keep_w {
            if w.won && w.offer.needs_claim {
                parties.release(&w.offer.party);
            }
            if w.withdrawn {
                parties.give_back(w.offer.party, v);
            } else {
                let at = w.index.min(self.write_offers.len());
                self.write_offers.insert(at, (w.offer, v));
            }
        }
    }

    /// Every claim of the match in flight is won: do it, or fail its parties
    /// if the channel failed meanwhile.
    fn commit(&mut self, parties: &mut impl Parties<P, V>) {
        let Some(m) = self.in_flight.take() else {
            return;
        };
        match (m.reader, m.writer) {
            (Some(r), None) => match self.buffer.pop_front() {
                Some(v) => {
                    parties.complete(r.offer.party, Outcome::Read(v));
                    self.after_take(parties);
                }
                None => {
                    let f = self.failure(Side::Read).unwrap_or(Failure::Poisoned);
                    parties.complete(r.offer.party, Outcome::Failed(f, None));
                }
            },
            (None, Some((w, v))) => {
                if let Some(f) = self.failure(Side::Write) {
                    parties.complete(w.offer.party, Outcome::Failed(f, Some(v)));
                } else if self.buffer.len() < self.capacity {
                    self.buffer.push_back(v);
                    parties.complete(w.offer.party, Outcome::Written);
                } else {
                    // Cannot happen (nothing fills the buffer while a match
                    // is in flight); keep the writer rather than lose it.
                    if w.offer.needs_claim {
                        parties.release(&w.offer.party);
                    }
                    self.write_offers.push_front((w.offer, v));
                }
            }
            (Some(r), Some((w, v))) => {
                if let Some(f) = self.failure(Side::Read).or(self.failure(Side::Write)) {
                    parties.complete(w.offer.party, Outcome::Failed(f, Some(v)));
                    parties.complete(r.offer.party, Outcome::Failed(f, None));
                } else {
                    parties.complete(w.offer.party, Outcome::Written);
                    parties.complete(r.offer.party, Outcome::Read(v));
                }
            }
            (None, None) => {}
        }
    }
}

fn fail_writers<P, V>(
    q: &mut VecDeque<(Offer<P>, V)>,
    failure: Failure,
    parties: &mut impl Parties<P, V>,
) {
    for (o, m) in q.drain(..) {
        parties.complete(o.party, Outcome::Failed(failure, Some(m)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Records outcomes; parties in `lost` lose their claims.
    #[derive(Default)]
    struct Log {
        done: Vec<(u32, Outcome<u32>)>,
        back: Vec<(u32, u32)>,
        lost: HashSet<u32>,
        claims: Vec<u32>,
    }

    impl Parties<u32, u32> for Log {
        fn claim(&mut self, p: &u32) -> Claim {
            self.claims.push(*p);
            if self.lost.contains(p) {
                Claim::Lost
            } else {
                Claim::Won
            }
        }
        fn release(&mut self, _: &u32) {}
        fn complete(&mut self, p: u32, o: Outcome<u32>) {
            self.done.push((p, o));
        }
        fn give_back(&mut self, p: u32, v: u32) {
            self.back.push((p, v));
        }
    }

    fn home(cap: usize) -> ChannelHome<u32, u32> {
        let mut h = ChannelHome::new(cap);
        h.join(Side::Read);
        h.join(Side::Write);
        h
    }

    fn plain(p: u32) -> Offer<u32> {
        Offer {
            party: p,
            needs_claim: false,
        }
    }

    fn alt(p: u32) -> Offer<u32> {
        Offer {
            party: p,
            needs_claim: true,
        }
    }

    #[test]
    fn rendezvous_serves_writers_in_order() {
        let mut h = home(0);
        let mut log = Log::default();
        for p in 1..=3 {
            h.wait_write(plain(p), p * 10);
        }
        for want in [10, 20, 30] {
            assert_eq!(h.try_read(&mut log), TryRead::Done(want));
        }
        assert_eq!(h.try_read(&mut log), TryRead::NotReady);
        let order: Vec<u32> = log.done.iter().map(|(p, _)| *p).collect();
        assert_eq!(order, [1, 2, 3]);
    }

    #[test]
    fn rendezvous_serves_readers_in_order() {
        let mut h = home(0);
        let mut log = Log::default();
        h.wait_read(plain(1));
        h.wait_read(plain(2));
        assert_eq!(h.try_write(5, &mut log), TryWrite::Done);
        assert_eq!(h.try_write(6, &mut log), TryWrite::Done);
        assert_eq!(h.try_write(7, &mut log), TryWrite::NotReady(7));
        assert_eq!(
            log.done,
            [(1, Outcome::Read(5)), (2, Outcome::Read(6))].to_vec()
        );
    }

    #[test]
    fn lost_claims_are_skipped_and_values_given_back() {
        let mut h = home(0);
        let mut log = Log::default();
        log.lost.insert(1);
        h.wait_write(alt(1), 100);
        h.wait_write(alt(2), 200);
        assert_eq!(h.try_read(&mut log), TryRead::Done(200));
        assert_eq!(log.back, [(1, 100)].to_vec());
        assert_eq!(log.claims, [1, 2].to_vec());
        assert_eq!(h.waiting(Side::Write), 0);

        log.lost.insert(3);
        h.wait_read(alt(3));
        h.wait_read(alt(4));
        assert_eq!(h.try_write(9, &mut log), TryWrite::Done);
        assert_eq!(log.done.last(), Some(&(4, Outcome::Read(9))));
    }

    #[test]
    fn buffer_is_fifo_and_refills_from_waiting_writers() {
        let mut h = home(2);
        let mut log = Log::default();
        assert_eq!(h.try_write(1, &mut log), TryWrite::Done);
        assert_eq!(h.try_write(2, &mut log), TryWrite::Done);
        assert_eq!(h.try_write(3, &mut log), TryWrite::NotReady(3));
        h.wait_write(plain(9), 3);
        assert!(!h.ready(Side::Write));
        assert_eq!(h.try_read(&mut log), TryRead::Done(1));
        assert_eq!(log.done, [(9, Outcome::Written)].to_vec());
        assert_eq!(h.try_read(&mut log), TryRead::Done(2));
        assert_eq!(h.try_read(&mut log), TryRead::Done(3));
        assert_eq!(h.try_read(&mut log), TryRead::NotReady);
    }

    #[test]
    fn writer_poison_drains_buffer_first() {
        let mut h = home(3);
        let mut log = Log::default();
        let _ = h.try_write(1, &mut log);
        let _ = h.try_write(2, &mut log);
        h.poison(Side::Write, &mut log);
        assert_eq!(
            h.try_write(3, &mut log),
            TryWrite::Failed(Failure::Poisoned, 3)
        );
        assert!(!h.is_poisoned());
        assert_eq!(h.try_read(&mut log), TryRead::Done(1));
        assert_eq!(h.try_read(&mut log), TryRead::Done(2));
        assert!(h.is_poisoned());
        assert_eq!(h.try_read(&mut log), TryRead::Failed(Failure::Poisoned));
    }

    #[test]
    fn reader_poison_discards_buffer_and_fails_waiters() {
        let mut h = home(1);
        let mut log = Log::default();
        let _ = h.try_write(1, &mut log);
        h.wait_write(plain(5), 2);
        h.poison(Side::Read, &mut log);
        assert_eq!(
            log.done,
            [(5, Outcome::Failed(Failure::Poisoned, Some(2)))].to_vec()
        );
        assert_eq!(h.try_read(&mut log), TryRead::Failed(Failure::Poisoned));
        assert_eq!(h.buffered(), 0);
    }

    #[test]
    fn last_writer_retire_waits_for_drain() {
        let mut h = home(2);
        let mut log = Log::default();
        let _ = h.try_write(1, &mut log);
        h.retire(Side::Write, &mut log);
        assert!(!h.is_retired());
        assert_eq!(h.try_read(&mut log), TryRead::Done(1));
        assert!(h.is_retired());
        assert_eq!(h.try_read(&mut log), TryRead::Failed(Failure::Retired));
    }

    #[test]
    fn retire_counts_ends() {
        let mut h = home(0);
        let mut log = Log::default();
        h.join(Side::Read);
        h.wait_write(plain(1), 7);
        h.retire(Side::Read, &mut log);
        assert!(!h.is_retired());
        h.retire(Side::Read, &mut log);
        assert!(h.is_retired());
        assert_eq!(
            log.done,
            [(1, Outcome::Failed(Failure::Retired, Some(7)))].to_vec()
        );
    }

    #[test]
    fn withdraw_returns_a_writers_message() {
        let mut h = home(0);
        h.wait_write(alt(1), 11);
        h.wait_write(alt(2), 22);
        h.wait_read(alt(1));
        assert_eq!(h.withdraw(Side::Write, |p| *p == 2), Some(22));
        assert_eq!(h.withdraw(Side::Write, |p| *p == 3), None);
        assert_eq!(h.withdraw(Side::Read, |p| *p == 1), None);
        assert_eq!(h.waiting(Side::Read), 0);
        assert_eq!(h.waiting(Side::Write), 1);
    }

    #[test]
    fn ready_reflects_what_a_running_party_would_find() {
        let mut h = home(0);
        let mut log = Log::default();
        assert!(!h.ready(Side::Read));
        assert!(!h.ready(Side::Write));
        h.wait_write(plain(1), 1);
        assert!(h.ready(Side::Read));
        assert!(!h.ready(Side::Write));
        h.poison(Side::Read, &mut log);
        assert!(h.ready(Side::Read) && h.ready(Side::Write));
    }
}

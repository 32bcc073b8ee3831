//! One node of the network, as a sans-IO state machine: the homes of the
//! channels homed here, and the offers of the processes running here.
//!
//! A [`Node`] performs no I/O, reads no clock and starts no thread. Its
//! driver feeds it:
//!
//! - calls from local processes: [`read`](Node::read), [`write`](Node::write),
//!   [`alt`](Node::alt), [`join`](Node::join), [`retire`](Node::retire),
//!   [`poison`](Node::poison), [`become_home`](Node::become_home), and
//!   [`create_channel`](Node::create_channel);
//! - messages from links: [`handle_message`](Node::handle_message) (or
//!   [`handle_frame`](Node::handle_frame) for undecoded bytes);
//! - time: [`handle_timeout`](Node::handle_timeout) when
//!   [`poll_timeout`](Node::poll_timeout) is due;
//! - faults: [`link_lost`](Node::link_lost) when a peer is gone for good.
//!
//! After each call the driver drains the outputs, in this order:
//! [`poll_transmit`](Node::poll_transmit) (messages to send, each to one
//! node, in order per destination), [`poll_event`](Node::poll_event)
//! (completed operations for local processes), then
//! [`poll_timeout`](Node::poll_timeout) (when to call `handle_timeout`).
//! Messages a node sends to itself never leave it: they are handled before
//! the call returns.
//!
//! Links must be reliable and FIFO per pair of nodes (a QUIC stream); nothing
//! is assumed across links. `PROTOCOL.md` describes the protocol.
//!
//! # Example
//!
//! ```
//! use csp_netproto::codec::Payload;
//! use csp_netproto::home::Side;
//! use csp_netproto::ids::{NodeId, ProcessId, Time};
//! use csp_netproto::node::{Event, Node, Outcome};
//!
//! let (mut a, mut b) = (Node::new(NodeId(0)), Node::new(NodeId(1)));
//! let chan = a.create_channel(0); // a rendezvous channel homed at node 0
//! let (pa, pb) = (ProcessId { node: NodeId(0), num: 0 }, ProcessId { node: NodeId(1), num: 0 });
//! let now = Time::ZERO;
//!
//! let read = a.read(now, pa, chan); // blocks: nobody writes yet
//! let write = b.write(now, pb, chan, Payload::from(b"hi".to_vec()));
//! // Carry messages between the two nodes until both are quiet.
//! loop {
//!     let mut moved = false;
//!     while let Some(t) = b.poll_transmit() { a.handle_message(now, NodeId(1), t.message); moved = true; }
//!     while let Some(t) = a.poll_transmit() { b.handle_message(now, NodeId(0), t.message); moved = true; }
//!     if !moved { break; }
//! }
//! let Some(Event::Completed(done)) = a.poll_event() else { panic!() };
//! assert_eq!(done.offer, read);
//! assert_eq!(done.outcome, Outcome::Read { guard: 0, value: Payload::from(b"hi".to_vec()) });
//! let Some(Event::Completed(done)) = b.poll_event() else { panic!() };
//! assert_eq!((done.offer, done.outcome), (write, Outcome::Written { guard: 0 }));
//! ```

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::time::Duration;

use crate::codec::Payload;
use crate::frame::FrameRef;
use crate::home::{ChannelHome, Claim, Failure, Offer, Outcome as HomeOutcome, Parties, Side};
use crate::ids::{ChannelId, Epoch, GuardRef, NodeId, OfferId, ProcessId, Time};
use crate::offer::{Fx, GuardKind, GuardState, OfferState, Offers};
use crate::wire::{
    Ack, Claim as ClaimMsg, ClaimReply, Complete, Completion, HandOver, HomeOp, Message, Moved,
    Redirect, Release, ToHome,
};

/// One guard of an [`alt`](Node::alt).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Guard {
    /// Input guard: ready when a message can be read from the channel.
    Read(ChannelId),
    /// Output guard: ready when the channel takes the message.
    Write(ChannelId, Payload),
    /// Always ready.
    Skip,
    /// Ready once this long has passed since the `alt` call.
    Timeout(Duration),
}

/// How an operation of a local process ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Guard `guard` (0 for a plain read) read `value`.
    Read {
        /// The guard that committed.
        guard: u16,
        /// The message.
        value: Payload,
    },
    /// Guard `guard` (0 for a plain write) wrote its message.
    Written {
        /// The guard that committed.
        guard: u16,
    },
    /// The skip guard `guard` was chosen.
    Skipped {
        /// The guard that committed.
        guard: u16,
    },
    /// The timeout guard `guard` expired and was chosen.
    TimedOut {
        /// The guard that committed.
        guard: u16,
    },
    /// The channel of guard `guard` is poisoned or retired; a writer's
    /// message comes back.
    Failed {
        /// The guard whose channel failed.
        guard: u16,
        /// Why.
        failure: Failure,
        /// The message, for a writer.
        value: Option<Payload>,
    },
    /// A control operation (join, retire, poison, become-home) took effect.
    Done,
    /// A node the operation depended on is lost; whether it took effect
    /// there is unknown.
    Lost {
        /// The lost node.
        node: NodeId,
    },
}

/// A local operation completed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completed {
    /// The operation, as its call returned it.
    pub offer: OfferId,
    /// The process that made it.
    pub process: ProcessId,
    /// How it ended.
    pub outcome: Outcome,
}

/// What a node reports to its driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// An operation of a local process ended.
    Completed(Completed),
    /// A peer sent something the protocol cannot take; it was ignored.
    BadMessage {
        /// The peer.
        from: NodeId,
        /// What was wrong.
        reason: String,
    },
}

/// A message to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The destination node.
    pub to: NodeId,
    /// The message.
    pub message: Message,
}

/// A call a node refuses.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeError {
    /// An Alt with more guards than a guard index can name.
    TooManyGuards(usize),
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeError::TooManyGuards(n) => {
                write!(f, "an alt has {n} guards; at most {} are allowed", u16::MAX)
            }
        }
    }
}

impl std::error::Error for NodeError {}

/// A channel homed here.
#[derive(Debug)]
struct Resident {
    epoch: Epoch,
    home: ChannelHome<GuardRef, Payload>,
    /// A become-home operation waiting for the match in flight.
    handing: Option<GuardRef>,
    /// Operations that arrived while handing (sent on after the move).
    deferred: Vec<(NodeId, HomeOp)>,
}

/// What this node knows about a channel it homes or homed.
#[derive(Debug)]
enum Slot {
    Resident(Box<Resident>),
    /// Handed on: the home is `to` at `epoch` (or later).
    Gone {
        to: NodeId,
        epoch: Epoch,
    },
}

/// One node. See the [module docs](self).
#[derive(Debug)]
pub struct Node {
    me: NodeId,
    now: Time,
    next_channel: u64,
    next_offer: u64,
    homes: BTreeMap<ChannelId, Slot>,
    /// Where remote homes are, as last learned.
    cache: BTreeMap<ChannelId, (NodeId, Epoch)>,
    /// Operations addressed to a home this node will be at a later epoch.
    parked: BTreeMap<ChannelId, Vec<(NodeId, Epoch, HomeOp)>>,
    lost: BTreeSet<NodeId>,
    offers: Offers,
    fx: Fx,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

/// The home's view of its parties, over the node's offers and links.
struct Ctx<'a> {
    me: NodeId,
    channel: ChannelId,
    now: Time,
    offers: &'a mut Offers,
    fx: &'a mut Fx,
    lost: &'a BTreeSet<NodeId>,
}

impl Parties<GuardRef, Payload> for Ctx<'_> {
    fn claim(&mut self, party: &GuardRef) -> Claim {
        let owner = party.offer.node;
        if owner == self.me {
            self.offers
                .claim(self.me, self.channel, *party, self.now, self.fx)
        } else if self.lost.contains(&owner) {
            Claim::Lost
        } else {
            self.fx.send(
                owner,
                Message::Claim(ClaimMsg {
                    channel: self.channel,
                    guard: *party,
                }),
            );
            Claim::Pending
        }
    }

    fn release(&mut self, party: &GuardRef) {
        if party.offer.node == self.me {
            self.offers.release(self.me, *party, self.now, self.fx);
        } else {
            self.fx.send(
                party.offer.node,
                Message::Release(Release {
                    channel: self.channel,
                    guard: *party,
                }),
            );
        }
    }

    fn complete(&mut self, party: GuardRef, outcome: HomeOutcome<Payload>) {
        let outcome = match outcome {
            HomeOutcome::Read(v) => Completion::Read(v),
            HomeOutcome::Written => Completion::Written,
            HomeOutcome::Failed(failure, value) => Completion::Failed { failure, value },
        };
        self.done(party, outcome);
    }

    fn give_back(&mut self, _party: GuardRef, _value: Payload) {
        // The claim was lost: the offer ended elsewhere and its owner does
        // not want this copy of the message.
    }
}

impl Ctx<'_> {
    fn done(&mut self, party: GuardRef, outcome: Completion) {
        if party.offer.node == self.me {
            self.offers
                .complete(self.me, party, outcome, self.now, self.fx);
        } else {
            self.fx.send(
                party.offer.node,
                Message::Complete(Complete {
                    channel: self.channel,
                    guard: party,
                    outcome,
                }),
            );
        }
    }
}

impl Node {
    /// A node with no channels and no processes.
    pub fn new(id: NodeId) -> Node {
        Node {
            me: id,
            now: Time::ZERO,
            next_channel: 0,
            next_offer: 0,
            homes: BTreeMap::new(),
            cache: BTreeMap::new(),
            parked: BTreeMap::new(),
            lost: BTreeSet::new(),
            offers: Offers::default(),
            fx: Fx::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.me
    }

    /// Creates a channel homed here, with `capacity` (0: rendezvous).
    pub fn create_channel(&mut self, capacity: usize) -> ChannelId {
        let id = ChannelId {
            origin: self.me,
            num: self.next_channel,
        };
        self.next_channel += 1;
        self.homes.insert(
            id,
            Slot::Resident(Box::new(Resident {
                epoch: Epoch::FIRST,
                home: ChannelHome::new(capacity),
                handing: None,
                deferred: Vec::new(),
            })),
        );
        id
    }

    /// A blocking read by `process`; ends with `Read`, `Failed` or `Lost`.
    pub fn read(&mut self, now: Time, process: ProcessId, channel: ChannelId) -> OfferId {
        self.start(now, process, false, vec![GuardKind::Read(channel)], |g| {
            vec![(
                channel,
                HomeOp::Read {
                    guard: g(0),
                    needs_claim: false,
                    ack: false,
                },
            )]
        })
    }

    /// A blocking write by `process`; ends with `Written`, `Failed` (the
    /// message comes back) or `Lost`.
    pub fn write(
        &mut self,
        now: Time,
        process: ProcessId,
        channel: ChannelId,
        value: Payload,
    ) -> OfferId {
        self.start(now, process, false, vec![GuardKind::Write(channel)], |g| {
            vec![(
                channel,
                HomeOp::Write {
                    guard: g(0),
                    needs_claim: false,
                    ack: false,
                    value,
                },
            )]
        })
    }

    /// A priority Alt by `process` over `guards` (earlier guards first):
    /// exactly one guard commits. See `PROTOCOL.md` for what priority
    /// guarantees across homes.
    ///
    /// # Errors
    ///
    /// [`NodeError::TooManyGuards`] for more than `u16::MAX` guards.
    pub fn alt(
        &mut self,
        now: Time,
        process: ProcessId,
        guards: Vec<Guard>,
    ) -> Result<OfferId, NodeError> {
        if guards.len() > usize::from(u16::MAX) {
            return Err(NodeError::TooManyGuards(guards.len()));
        }
        let kinds = guards
            .iter()
            .map(|g| match g {
                Guard::Read(c) => GuardKind::Read(*c),
                Guard::Write(c, _) => GuardKind::Write(*c),
                Guard::Skip => GuardKind::Skip,
                Guard::Timeout(d) => GuardKind::Timeout(now + *d),
            })
            .collect();
        // Guards after a skip guard can never commit: not posted.
        let until = guards
            .iter()
            .position(|g| *g == Guard::Skip)
            .unwrap_or(guards.len());
        Ok(self.start(now, process, true, kinds, |g| {
            guards
                .into_iter()
                .enumerate()
                .take(until)
                .filter_map(|(i, guard)| {
                    let i = u16::try_from(i).ok()?;
                    match guard {
                        Guard::Read(c) => Some((
                            c,
                            HomeOp::Read {
                                guard: g(i),
                                needs_claim: true,
                                ack: true,
                            },
                        )),
                        Guard::Write(c, value) => Some((
                            c,
                            HomeOp::Write {
                                guard: g(i),
                                needs_claim: true,
                                ack: true,
                                value,
                            },
                        )),
                        Guard::Skip | Guard::Timeout(_) => None,
                    }
                })
                .collect()
        }))
    }

    /// A new end of `channel` on `side` (the home counts ends); ends with
    /// `Done` or `Lost`.
    pub fn join(
        &mut self,
        now: Time,
        process: ProcessId,
        channel: ChannelId,
        side: Side,
    ) -> OfferId {
        self.control(now, process, channel, |op| HomeOp::Join { op, side })
    }

    /// An end of `channel` on `side` leaves; ends with `Done` or `Lost`.
    pub fn retire(
        &mut self,
        now: Time,
        process: ProcessId,
        channel: ChannelId,
        side: Side,
    ) -> OfferId {
        self.control(now, process, channel, |op| HomeOp::Retire { op, side })
    }

    /// Poisons `channel` through an end on `side`; ends with `Done` or
    /// `Lost`. Operations issued after it ended see the poison.
    pub fn poison(
        &mut self,
        now: Time,
        process: ProcessId,
        channel: ChannelId,
        side: Side,
    ) -> OfferId {
        self.control(now, process, channel, |op| HomeOp::Poison { op, side })
    }

    /// Moves the home of `channel` to this node; ends with `Done` once this
    /// node is its home, or `Lost`.
    pub fn become_home(&mut self, now: Time, process: ProcessId, channel: ChannelId) -> OfferId {
        self.control(now, process, channel, |op| HomeOp::BecomeHome { op })
    }

    /// A message `message` arrived from node `from`.
    pub fn handle_message(&mut self, now: Time, from: NodeId, message: Message) {
        self.tick(now);
        if self.lost.contains(&from) {
            return; // after link_lost, nothing more from that node counts
        }
        self.dispatch(from, message);
        self.flush();
    }

    /// A frame arrived from node `from`: decodes it and handles it. A frame
    /// that is not a message is reported as [`Event::BadMessage`].
    pub fn handle_frame<'a>(&mut self, now: Time, from: NodeId, frame: impl Into<FrameRef<'a>>) {
        match Message::decode(frame) {
            Ok(m) => self.handle_message(now, from, m),
            Err(e) => self.events.push_back(Event::BadMessage {
                from,
                reason: e.to_string(),
            }),
        }
    }

    /// Time has passed: decides Alts whose timeout guard is due.
    pub fn handle_timeout(&mut self, now: Time) {
        self.tick(now);
        self.offers.tick(self.now, &mut self.fx);
        self.flush();
    }

    /// The link to `node` is gone for good (the node crashed, or its
    /// connection timed out): every operation that depended on it ends with
    /// `Lost`, and its offers leave this node's homes.
    pub fn link_lost(&mut self, now: Time, node: NodeId) {
        self.tick(now);
        if node == self.me || !self.lost.insert(node) {
            return;
        }
        let me = self.me;
        let channels: Vec<ChannelId> = self.homes.keys().copied().collect();
        for c in channels {
            let Some(Slot::Resident(r)) = self.homes.get_mut(&c) else {
                continue;
            };
            let mut ctx = Ctx {
                me,
                channel: c,
                now: self.now,
                offers: &mut self.offers,
                fx: &mut self.fx,
                lost: &self.lost,
            };
            r.home.withdraw(Side::Read, |p| p.offer.node == node);
            r.home.withdraw(Side::Write, |p| p.offer.node == node);
            if let Some(p) = r.home.awaiting().copied() {
                if p.offer.node == node {
                    r.home.claim_answered(&p, false, &mut ctx);
                }
            }
            r.deferred.retain(|(from, _)| *from != node);
            if r.handing.is_some_and(|op| op.offer.node == node) {
                r.handing = None;
                r.home.unhold(&mut ctx);
            }
            self.try_hand_over(c);
        }
        for ops in self.parked.values_mut() {
            ops.retain(|(from, _, _)| *from != node);
        }
        self.offers.node_lost(node, self.now, &mut self.fx);
        self.flush();
    }

    /// The next message to send, if any.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for local processes, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Time> {
        self.offers.next_deadline()
    }

    /// The channels homed here now, with their epochs and homes (for
    /// inspection and tests).
    pub fn homes(
        &self,
    ) -> impl Iterator<Item = (ChannelId, Epoch, &ChannelHome<GuardRef, Payload>)> {
        self.homes.iter().filter_map(|(c, s)| match s {
            Slot::Resident(r) => Some((*c, r.epoch, &r.home)),
            Slot::Gone { .. } => None,
        })
    }

    /// True while the home of `channel` here waits to be handed on.
    pub fn is_handing(&self, channel: ChannelId) -> bool {
        matches!(self.homes.get(&channel), Some(Slot::Resident(r)) if r.handing.is_some())
    }

    /// The operations of local processes that have not ended.
    pub fn live_offers(&self) -> impl Iterator<Item = OfferId> + '_ {
        self.offers.ids().copied()
    }

    /// The number of operations of local processes that have not ended.
    pub fn live_offer_count(&self) -> usize {
        self.offers.len()
    }

    /// True if `guard` belongs to an operation that has not ended.
    pub fn is_live(&self, guard: &GuardRef) -> bool {
        self.offers.is_live(guard)
    }

    /// The channels an operation has guards on (for inspection and tests).
    pub fn offer_channels(&self, offer: &OfferId) -> Vec<ChannelId> {
        self.offers
            .get(offer)
            .map(|st| {
                st.guards
                    .iter()
                    .filter_map(|g| match g.kind {
                        GuardKind::Read(c) | GuardKind::Write(c) | GuardKind::Control(c) => Some(c),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Operations parked here for a home this node is about to receive.
    pub fn parked(&self) -> usize {
        self.parked.values().map(Vec::len).sum()
    }

    /// Where this node believes the home of `channel` is.
    pub fn locate(&self, channel: ChannelId) -> (NodeId, Epoch) {
        match self.homes.get(&channel) {
            Some(Slot::Resident(r)) => return (self.me, r.epoch),
            Some(Slot::Gone { to, epoch }) => {
                if let Some(&(n, e)) = self.cache.get(&channel) {
                    if e > *epoch {
                        return (n, e);
                    }
                }
                return (*to, *epoch);
            }
            None => {}
        }
        self.cache
            .get(&channel)
            .copied()
            .unwrap_or((channel.origin, Epoch::FIRST))
    }

    fn tick(&mut self, now: Time) {
        self.now = self.now.max(now);
    }

    fn new_offer(&mut self) -> OfferId {
        let id = OfferId {
            node: self.me,
            seq: self.next_offer,
        };
        self.next_offer += 1;
        id
    }

    /// Creates an offer and posts its guards.
    fn start(
        &mut self,
        now: Time,
        process: ProcessId,
        alt: bool,
        kinds: Vec<GuardKind>,
        posts: impl FnOnce(&dyn Fn(u16) -> GuardRef) -> Vec<(ChannelId, HomeOp)>,
    ) -> OfferId {
        self.tick(now);
        let id = self.new_offer();
        let guards = kinds
            .into_iter()
            .map(|kind| GuardState {
                kind,
                at: None,
                acked: false,
            })
            .collect();
        self.offers
            .insert(id, OfferState::new(process, alt, guards));
        let ops = posts(&|guard| GuardRef { offer: id, guard });
        for (c, op) in ops {
            self.send_to_home(c, op);
        }
        self.offers.drive(id, self.now, &mut self.fx, None);
        self.flush();
        id
    }

    fn control(
        &mut self,
        now: Time,
        process: ProcessId,
        channel: ChannelId,
        op: impl FnOnce(GuardRef) -> HomeOp,
    ) -> OfferId {
        self.start(
            now,
            process,
            false,
            vec![GuardKind::Control(channel)],
            |g| vec![(channel, op(g(0)))],
        )
    }

    /// Sends `op` to where the home of `channel` is believed to be, and
    /// records that the op's guard waits there.
    fn send_to_home(&mut self, channel: ChannelId, op: HomeOp) {
        let (node, epoch) = self.locate(channel);
        if !matches!(op, HomeOp::Withdraw { .. }) {
            self.offers.set_at(&op.guard(), (node, epoch));
        }
        self.fx
            .send(node, Message::ToHome(ToHome { channel, epoch, op }));
    }

    /// Routes effects: messages to self are handled here, messages to lost
    /// nodes fail what they carried, the rest go out.
    fn flush(&mut self) {
        loop {
            self.events.extend(self.fx.events.drain(..));
            if self.fx.out.is_empty() {
                break;
            }
            let out: Vec<(NodeId, Message)> = self.fx.out.drain(..).collect();
            for (to, message) in out {
                if to == self.me {
                    self.dispatch(to, message);
                } else if self.lost.contains(&to) {
                    self.undeliverable(to, message);
                } else {
                    self.transmits.push_back(Transmit { to, message });
                }
            }
        }
    }

    /// A message for a lost node: an operation it carried is lost.
    fn undeliverable(&mut self, to: NodeId, message: Message) {
        if let Message::ToHome(ToHome { op, .. }) = message {
            if !matches!(op, HomeOp::Withdraw { .. }) && op.guard().offer.node == self.me {
                self.offers
                    .unreachable(op.guard(), to, self.now, &mut self.fx);
            }
        }
    }

    fn bad(&mut self, from: NodeId, reason: String) {
        self.events.push_back(Event::BadMessage { from, reason });
    }

    fn dispatch(&mut self, from: NodeId, message: Message) {
        match message {
            Message::ToHome(m) => self.home_op(from, m.channel, m.epoch, m.op),
            Message::Redirect(m) => self.redirected(from, m),
            Message::Ack(m) => {
                if m.guard.offer.node == self.me {
                    self.offers.ack(m.guard, self.now, &mut self.fx);
                }
            }
            Message::Claim(m) => {
                if m.guard.offer.node != self.me {
                    return self.bad(from, format!("claim of {} not owned here", m.guard));
                }
                let won = match self
                    .offers
                    .claim(from, m.channel, m.guard, self.now, &mut self.fx)
                {
                    Claim::Won => true,
                    Claim::Lost => false,
                    Claim::Pending => return,
                };
                self.fx.send(
                    from,
                    Message::ClaimReply(ClaimReply {
                        channel: m.channel,
                        guard: m.guard,
                        won,
                    }),
                );
            }
            Message::ClaimReply(m) => self.claim_reply(from, m),
            Message::Release(m) => {
                if m.guard.offer.node == self.me {
                    self.offers.release(from, m.guard, self.now, &mut self.fx);
                }
            }
            Message::Complete(m) => {
                if m.guard.offer.node == self.me
                    && !self
                        .offers
                        .complete(from, m.guard, m.outcome, self.now, &mut self.fx)
                {
                    self.bad(from, format!("completion of {} it does not hold", m.guard));
                }
            }
            Message::HandOver(m) => self.hand_over_received(from, m),
            Message::Moved(m) => {
                self.learn(m.channel, m.home, m.epoch);
                for g in m.guards {
                    if g.offer.node == self.me {
                        self.offers.set_at(&g, (m.home, m.epoch));
                    }
                }
            }
        }
    }

    /// Updates the cache if `epoch` is newer than what is known.
    fn learn(&mut self, channel: ChannelId, home: NodeId, epoch: Epoch) {
        if matches!(self.homes.get(&channel), Some(Slot::Resident(_))) {
            return;
        }
        let known = self.locate(channel).1;
        if epoch > known || !self.cache.contains_key(&channel) && epoch >= known {
            self.cache.insert(channel, (home, epoch));
        }
    }

    fn home_op(&mut self, from: NodeId, channel: ChannelId, epoch: Epoch, op: HomeOp) {
        match self.homes.get(&channel) {
            Some(Slot::Resident(r)) if epoch <= r.epoch => self.apply(from, channel, op),
            Some(Slot::Gone { to, epoch: ge }) if epoch <= *ge => {
                let (to, ge) = (*to, *ge);
                let (home, he) = self.locate(channel);
                let (home, he) = if he > ge { (home, he) } else { (to, ge) };
                self.fx.send(
                    from,
                    Message::Redirect(Redirect {
                        channel,
                        home,
                        epoch: he,
                        op,
                    }),
                );
            }
            None if epoch == Epoch::FIRST => {
                if channel.origin == self.me {
                    self.bad(from, format!("{channel} is not a channel of this node"));
                } else {
                    // The sender thinks this node is the first home: it is not.
                    self.fx.send(
                        from,
                        Message::Redirect(Redirect {
                            channel,
                            home: channel.origin,
                            epoch: Epoch::FIRST,
                            op,
                        }),
                    );
                }
            }
            _ => {
                // Addressed to this node as the home at a later epoch: the
                // hand-over is on its way. Acknowledge a post now (priority
                // must never wait on a move), and keep the op until then.
                self.ack_post(channel, &op);
                self.parked
                    .entry(channel)
                    .or_default()
                    .push((from, epoch, op));
            }
        }
    }

    fn ack_post(&mut self, channel: ChannelId, op: &HomeOp) {
        if let HomeOp::Read {
            guard, ack: true, ..
        }
        | HomeOp::Write {
            guard, ack: true, ..
        } = op
        {
            self.fx.send(
                guard.offer.node,
                Message::Ack(Ack {
                    channel,
                    guard: *guard,
                }),
            );
        }
    }

    /// Carries out `op` at the resident home of `channel`.
    fn apply(&mut self, from: NodeId, channel: ChannelId, op: HomeOp) {
        let me = self.me;
        let Some(Slot::Resident(r)) = self.homes.get_mut(&channel) else {
            return;
        };
        if r.handing.is_some() && matches!(op, HomeOp::BecomeHome { .. }) {
            r.deferred.push((from, op));
            return;
        }
        let mut ctx = Ctx {
            me,
            channel,
            now: self.now,
            offers: &mut self.offers,
            fx: &mut self.fx,
            lost: &self.lost,
        };
        let ack = matches!(
            op,
            HomeOp::Read { ack: true, .. } | HomeOp::Write { ack: true, .. }
        );
        let guard = op.guard();
        if self.lost.contains(&guard.offer.node) {
            return; // its owner is gone
        }
        match op {
            HomeOp::Read {
                guard, needs_claim, ..
            } => r.home.post_read(
                Offer {
                    party: guard,
                    needs_claim,
                },
                &mut ctx,
            ),
            HomeOp::Write {
                guard,
                needs_claim,
                value,
                ..
            } => r.home.post_write(
                Offer {
                    party: guard,
                    needs_claim,
                },
                value,
                &mut ctx,
            ),
            HomeOp::Withdraw { guard, side } => {
                r.home.withdraw(side, |p| *p == guard);
            }
            HomeOp::Join { op, side } => {
                r.home.join(side);
                ctx.done(op, Completion::Done);
            }
            HomeOp::Retire { op, side } => {
                r.home.retire(side, &mut ctx);
                ctx.done(op, Completion::Done);
            }
            HomeOp::Poison { op, side } => {
                r.home.poison(side, &mut ctx);
                ctx.done(op, Completion::Done);
            }
            HomeOp::BecomeHome { op } => {
                if op.offer.node == me {
                    ctx.done(op, Completion::Done);
                } else {
                    r.home.hold();
                    r.handing = Some(op);
                }
            }
        }
        if ack {
            self.ack_post(
                channel,
                &HomeOp::Read {
                    guard,
                    needs_claim: true,
                    ack: true,
                },
            );
        }
        self.try_hand_over(channel);
    }

    /// Hands the home of `channel` on if a move waits and nothing is in
    /// flight.
    fn try_hand_over(&mut self, channel: ChannelId) {
        let Some(Slot::Resident(r)) = self.homes.get_mut(&channel) else {
            return;
        };
        let Some(op) = r.handing else { return };
        let Some(state) = r.home.hand_over() else {
            return; // a match is in flight: once it resolves
        };
        let to = op.offer.node;
        let epoch = r.epoch.next();
        let deferred = std::mem::take(&mut r.deferred);
        let mut owners: BTreeMap<NodeId, Vec<GuardRef>> = BTreeMap::new();
        for g in state
            .read_offers
            .iter()
            .map(|o| o.party)
            .chain(state.write_offers.iter().map(|(o, _)| o.party))
        {
            owners.entry(g.offer.node).or_default().push(g);
        }
        self.homes.insert(channel, Slot::Gone { to, epoch });
        self.fx.send(
            to,
            Message::HandOver(HandOver {
                channel,
                epoch,
                op,
                state,
            }),
        );
        for (owner, guards) in owners {
            self.fx.send(
                owner,
                Message::Moved(Moved {
                    channel,
                    home: to,
                    epoch,
                    guards,
                }),
            );
        }
        for (from, op) in deferred {
            self.home_op(from, channel, epoch, op);
        }
    }

    fn claim_reply(&mut self, from: NodeId, m: ClaimReply) {
        let me = self.me;
        let Some(Slot::Resident(r)) = self.homes.get_mut(&m.channel) else {
            return self.bad(
                from,
                format!("claim reply for {} not homed here", m.channel),
            );
        };
        let mut ctx = Ctx {
            me,
            channel: m.channel,
            now: self.now,
            offers: &mut self.offers,
            fx: &mut self.fx,
            lost: &self.lost,
        };
        if !r.home.claim_answered(&m.guard, m.won, &mut ctx) {
            return self.bad(from, format!("unexpected claim reply for {}", m.guard));
        }
        self.try_hand_over(m.channel);
    }

    fn redirected(&mut self, from: NodeId, m: Redirect) {
        self.learn(m.channel, m.home, m.epoch);
        let guard = m.op.guard();
        if guard.offer.node != self.me {
            return self.bad(from, format!("redirect of {guard}, not owned here"));
        }
        let mut op = m.op;
        let withdraw = matches!(op, HomeOp::Withdraw { .. });
        if !withdraw && !self.offers.is_live(&guard) {
            return;
        }
        if op.take_ack() {
            // The old home answered: the guard was not ready there.
            self.offers.ack(guard, self.now, &mut self.fx);
        }
        if withdraw || self.offers.is_live(&guard) {
            self.send_to_home(m.channel, op);
        }
    }

    fn hand_over_received(&mut self, from: NodeId, m: HandOver) {
        if let Err(e) = m.state.validate() {
            return self.bad(from, format!("hand-over of {}: {e}", m.channel));
        }
        match self.homes.get(&m.channel) {
            Some(Slot::Resident(r)) => {
                let e = r.epoch;
                return self.bad(
                    from,
                    format!(
                        "hand-over of {} at {}: already home at {e}",
                        m.channel, m.epoch
                    ),
                );
            }
            Some(Slot::Gone { epoch, .. }) if *epoch >= m.epoch => {
                let e = *epoch;
                return self.bad(
                    from,
                    format!(
                        "hand-over of {} at {}: stale (gone at {e})",
                        m.channel, m.epoch
                    ),
                );
            }
            _ => {}
        }
        let me = self.me;
        let mut home = ChannelHome::from_state(m.state);
        // Offers of nodes lost meanwhile leave with them.
        let lost = &self.lost;
        home.withdraw(Side::Read, |p| lost.contains(&p.offer.node));
        home.withdraw(Side::Write, |p| lost.contains(&p.offer.node));
        self.cache.remove(&m.channel);
        self.homes.insert(
            m.channel,
            Slot::Resident(Box::new(Resident {
                epoch: m.epoch,
                home,
                handing: None,
                deferred: Vec::new(),
            })),
        );
        if m.op.offer.node == me {
            self.offers
                .complete(from, m.op, Completion::Done, self.now, &mut self.fx);
        }
        // Operations that waited for this hand-over.
        let parked = self.parked.remove(&m.channel).unwrap_or_default();
        let (now_ops, later): (Vec<_>, Vec<_>) =
            parked.into_iter().partition(|(_, e, _)| *e <= m.epoch);
        if !later.is_empty() {
            self.parked.insert(m.channel, later);
        }
        for (from, epoch, op) in now_ops {
            // Already acknowledged when parked.
            let op = match op {
                HomeOp::Read {
                    guard, needs_claim, ..
                } => HomeOp::Read {
                    guard,
                    needs_claim,
                    ack: false,
                },
                HomeOp::Write {
                    guard,
                    needs_claim,
                    value,
                    ..
                } => HomeOp::Write {
                    guard,
                    needs_claim,
                    ack: false,
                    value,
                },
                op => op,
            };
            // Through the front door: an earlier parked op may have moved
            // the home on already (then this one is redirected).
            self.home_op(from, m.channel, epoch, op);
        }
        if let Some(Slot::Resident(r)) = self.homes.get_mut(&m.channel) {
            let mut ctx = Ctx {
                me,
                channel: m.channel,
                now: self.now,
                offers: &mut self.offers,
                fx: &mut self.fx,
                lost: &self.lost,
            };
            r.home.pump(&mut ctx);
        }
        self.try_hand_over(m.channel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nodes with per-link FIFO queues, delivered by hand.
    struct Net {
        nodes: Vec<Node>,
        links: BTreeMap<(usize, usize), VecDeque<Message>>,
        events: Vec<Completed>,
    }

    impl Net {
        fn new(n: usize) -> Net {
            Net {
                nodes: (0..n).map(|i| Node::new(NodeId(i as u32))).collect(),
                links: BTreeMap::new(),
                events: Vec::new(),
            }
        }
        fn collect(&mut self) {
            for (i, n) in self.nodes.iter_mut().enumerate() {
                while let Some(t) = n.poll_transmit() {
                    self.links
                        .entry((i, t.to.0 as usize))
                        .or_default()
                        .push_back(t.message);
                }
                while let Some(e) = n.poll_event() {
                    match e {
                        Event::Completed(c) => self.events.push(c),
                        Event::BadMessage { reason, .. } => panic!("bad message: {reason}"),
                    }
                }
            }
        }
        /// Delivers everything on the link from `a` to `b`.
        fn flush_link(&mut self, a: usize, b: usize) {
            self.collect();
            while let Some(m) = self.links.get_mut(&(a, b)).and_then(VecDeque::pop_front) {
                self.nodes[b].handle_message(Time::ZERO, NodeId(a as u32), m);
                self.collect();
            }
        }
        /// Delivers everything, links in index order, until quiet.
        fn settle(&mut self) {
            loop {
                self.collect();
                let Some(&(a, b)) = self
                    .links
                    .iter()
                    .find(|(_, q)| !q.is_empty())
                    .map(|(k, _)| k)
                else {
                    return;
                };
                self.flush_link(a, b);
            }
        }
        fn outcome(&self, offer: OfferId) -> Option<&Outcome> {
            self.events
                .iter()
                .find(|c| c.offer == offer)
                .map(|c| &c.outcome)
        }
    }

    fn pid(n: u32) -> ProcessId {
        ProcessId {
            node: NodeId(n),
            num: 0,
        }
    }

    fn v(b: u8) -> Payload {
        Payload::from(vec![b])
    }

    /// Two buffered channels homed at nodes 1 and 2, each holding a message.
    fn two_ready_channels() -> (Net, ChannelId, ChannelId) {
        let mut net = Net::new(3);
        let a = net.nodes[1].create_channel(1);
        let b = net.nodes[2].create_channel(1);
        net.nodes[1].write(Time::ZERO, pid(1), a, v(1));
        net.nodes[2].write(Time::ZERO, pid(2), b, v(2));
        net.settle();
        (net, a, b)
    }

    #[test]
    fn priority_holds_across_homes_whatever_answers_first() {
        let (mut net, a, b) = two_ready_channels();
        let alt = net.nodes[0]
            .alt(Time::ZERO, pid(0), vec![Guard::Read(a), Guard::Read(b)])
            .expect("alt");
        // Node 2 (the lower-priority guard) answers first: its claim must wait.
        net.flush_link(0, 2);
        net.flush_link(2, 0);
        assert_eq!(
            net.outcome(alt),
            None,
            "guard 1 won before guard 0 answered"
        );
        net.settle();
        assert_eq!(
            net.outcome(alt),
            Some(&Outcome::Read {
                guard: 0,
                value: v(1)
            })
        );
        // The other channel kept its message.
        let r = net.nodes[0].read(Time::ZERO, pid(0), b);
        net.settle();
        assert_eq!(
            net.outcome(r),
            Some(&Outcome::Read {
                guard: 0,
                value: v(2)
            })
        );
    }

    #[test]
    fn skip_wins_only_when_earlier_guards_are_not_ready() {
        let mut net = Net::new(2);
        let a = net.nodes[1].create_channel(0);
        let alt = net.nodes[0]
            .alt(Time::ZERO, pid(0), vec![Guard::Read(a), Guard::Skip])
            .expect("alt");
        net.collect();
        assert_eq!(
            net.outcome(alt),
            None,
            "skip decided before guard 0 was checked"
        );
        net.settle();
        assert_eq!(net.outcome(alt), Some(&Outcome::Skipped { guard: 1 }));
        // The read guard was withdrawn: a later write does not go to it.
        assert_eq!(
            net.nodes[1]
                .homes()
                .next()
                .map(|(_, _, h)| h.waiting(Side::Read)),
            Some(0)
        );

        let (mut net, a, _) = two_ready_channels();
        let alt = net.nodes[0]
            .alt(Time::ZERO, pid(0), vec![Guard::Read(a), Guard::Skip])
            .expect("alt");
        net.settle();
        assert_eq!(
            net.outcome(alt),
            Some(&Outcome::Read {
                guard: 0,
                value: v(1)
            })
        );
    }

    #[test]
    fn timeout_guard_fires_at_its_time_and_not_before() {
        let mut net = Net::new(2);
        let a = net.nodes[1].create_channel(0);
        let alt = net.nodes[0]
            .alt(
                Time::ZERO,
                pid(0),
                vec![Guard::Read(a), Guard::Timeout(Duration::from_nanos(100))],
            )
            .expect("alt");
        net.settle();
        assert_eq!(net.nodes[0].poll_timeout(), Some(Time::from_nanos(100)));
        net.nodes[0].handle_timeout(Time::from_nanos(99));
        net.settle();
        assert_eq!(net.outcome(alt), None);
        net.nodes[0].handle_timeout(Time::from_nanos(100));
        net.settle();
        assert_eq!(net.outcome(alt), Some(&Outcome::TimedOut { guard: 1 }));
        assert_eq!(net.nodes[0].poll_timeout(), None);
    }

    #[test]
    fn become_home_moves_buffer_and_waiters_and_redirects_stragglers() {
        let mut net = Net::new(3);
        let c = net.nodes[0].create_channel(2);
        net.nodes[1].write(Time::ZERO, pid(1), c, v(1));
        net.nodes[1].write(Time::ZERO, pid(1), c, v(2));
        net.settle();
        let mv = net.nodes[2].become_home(Time::ZERO, pid(2), c);
        net.settle();
        assert_eq!(net.outcome(mv), Some(&Outcome::Done));
        assert_eq!(net.nodes[0].homes().count(), 0);
        assert_eq!(
            net.nodes[2]
                .homes()
                .map(|(_, e, h)| (e, h.buffered()))
                .next(),
            Some((Epoch(1), 2))
        );
        // Node 1 still believes node 0 is home: redirected, and reads in order.
        let r1 = net.nodes[1].read(Time::ZERO, pid(1), c);
        net.settle();
        let r2 = net.nodes[1].read(Time::ZERO, pid(1), c);
        net.settle();
        assert_eq!(
            net.outcome(r1),
            Some(&Outcome::Read {
                guard: 0,
                value: v(1)
            })
        );
        assert_eq!(
            net.outcome(r2),
            Some(&Outcome::Read {
                guard: 0,
                value: v(2)
            })
        );
        assert_eq!(net.nodes[1].locate(c), (NodeId(2), Epoch(1)));
    }

    #[test]
    fn a_lost_home_turns_waiting_operations_into_lost() {
        let mut net = Net::new(2);
        let c = net.nodes[1].create_channel(0);
        let r = net.nodes[0].read(Time::ZERO, pid(0), c);
        net.settle();
        net.nodes[0].link_lost(Time::ZERO, NodeId(1));
        net.collect();
        assert_eq!(net.outcome(r), Some(&Outcome::Lost { node: NodeId(1) }));
        // Later operations on that channel fail at once.
        let w = net.nodes[0].write(Time::ZERO, pid(0), c, v(1));
        net.collect();
        assert_eq!(net.outcome(w), Some(&Outcome::Lost { node: NodeId(1) }));
    }

    #[test]
    fn garbage_frames_are_reported_not_fatal() {
        let mut n = Node::new(NodeId(0));
        n.handle_frame(
            Time::ZERO,
            NodeId(1),
            FrameRef::new(Message::HAND_OVER, &[1, 2, 3]),
        );
        assert!(matches!(n.poll_event(), Some(Event::BadMessage { .. })));
        // A claim reply nobody asked for.
        let c = n.create_channel(0);
        n.handle_message(
            Time::ZERO,
            NodeId(1),
            Message::ClaimReply(ClaimReply {
                channel: c,
                guard: GuardRef {
                    offer: OfferId {
                        node: NodeId(1),
                        seq: 0,
                    },
                    guard: 0,
                },
                won: true,
            }),
        );
        assert!(matches!(n.poll_event(), Some(Event::BadMessage { .. })));
    }
}

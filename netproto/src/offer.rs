//! The owner's side of offers: one state machine per blocked operation of a
//! local process (a read, a write, an Alt, or a control operation).
//!
//! ```text
//!            claim granted             Complete from that home
//!   Open ─────────────────► Claimed ───────────────────────────► Done
//!    ▲  │                      │
//!    │  │ Release from home    │
//!    │  └──────────────────────┘
//!    │
//!    └── Fail / Lost / skip / timeout / plain Complete ─────────► Done
//! ```
//!
//! An offer decides one *request* at a time: a claim from a home, a failure
//! notice (the guard's channel was poisoned or retired), a lost node, a skip
//! guard, or an expired timeout guard. While `Claimed`, new requests queue.
//! While `Open`, the request of the highest-priority guard is decided, but
//! only once every guard before it has been *answered* (acknowledged by its
//! home): that is the priority rule (see `PROTOCOL.md`). A lost node beats
//! everything.

use std::collections::BTreeMap;

use crate::codec::Payload;
use crate::home::{Claim, Failure, Side};
use crate::ids::{ChannelId, Epoch, GuardRef, NodeId, OfferId, ProcessId, Time};
use crate::node::{Completed, Event, Outcome};
use crate::wire::{ClaimReply, Completion, HomeOp, Message, ToHome};

/// What a guard waits for.
#[derive(Clone, Debug)]
pub(crate) enum GuardKind {
    /// Input guard (or plain read) on a channel.
    Read(ChannelId),
    /// Output guard (or plain write) on a channel.
    Write(ChannelId),
    /// Always ready.
    Skip,
    /// Ready at this time.
    Timeout(Time),
    /// A control operation on a channel (join, retire, poison, become-home).
    Control(ChannelId),
}

/// One guard, as its owner tracks it.
#[derive(Clone, Debug)]
pub(crate) struct GuardState {
    pub(crate) kind: GuardKind,
    /// Where it was posted (the home it believes holds it).
    pub(crate) at: Option<(NodeId, Epoch)>,
    /// Its home has handled its post (priority rule).
    pub(crate) acked: bool,
}

/// Where an offer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Open,
    /// Tentatively committed to a match at `by`, for `guard`.
    Claimed {
        by: NodeId,
        guard: u16,
    },
}

/// Something that wants the offer decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Request {
    Claim {
        from: NodeId,
        channel: ChannelId,
        guard: u16,
    },
    Fail {
        guard: u16,
        failure: Failure,
        value: Option<Payload>,
    },
    Lost {
        node: NodeId,
    },
}

/// One live offer.
#[derive(Clone, Debug)]
pub(crate) struct OfferState {
    pub(crate) process: ProcessId,
    /// An Alt: its guards need claims, and plain completions are refused.
    pub(crate) alt: bool,
    pub(crate) guards: Vec<GuardState>,
    phase: Phase,
    requests: Vec<Request>,
}

impl OfferState {
    pub(crate) fn new(process: ProcessId, alt: bool, guards: Vec<GuardState>) -> Self {
        OfferState {
            process,
            alt,
            guards,
            phase: Phase::Open,
            requests: Vec::new(),
        }
    }
}

/// What an offer decided.
enum Decision {
    Grant(usize),
    Finish(Outcome),
}

/// Effects of the protocol: messages to send and events for processes.
#[derive(Debug, Default)]
pub(crate) struct Fx {
    pub(crate) out: Vec<(NodeId, Message)>,
    pub(crate) events: Vec<Event>,
}

impl Fx {
    pub(crate) fn send(&mut self, to: NodeId, msg: Message) {
        self.out.push((to, msg));
    }
}

/// The live offers of one node.
#[derive(Debug, Default)]
pub(crate) struct Offers {
    map: BTreeMap<OfferId, OfferState>,
}

impl Offers {
    pub(crate) fn insert(&mut self, id: OfferId, st: OfferState) {
        self.map.insert(id, st);
    }

    pub(crate) fn get(&self, id: &OfferId) -> Option<&OfferState> {
        self.map.get(id)
    }

    pub(crate) fn ids(&self) -> impl Iterator<Item = &OfferId> {
        self.map.keys()
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// True if `guard` belongs to a live offer and exists.
    pub(crate) fn is_live(&self, guard: &GuardRef) -> bool {
        self.map
            .get(&guard.offer)
            .is_some_and(|st| usize::from(guard.guard) < st.guards.len())
    }

    /// Records where `guard` now waits.
    pub(crate) fn set_at(&mut self, guard: &GuardRef, at: (NodeId, Epoch)) {
        if let Some(g) = self.guard_mut(guard) {
            g.at = Some(at);
        }
    }

    fn guard_mut(&mut self, guard: &GuardRef) -> Option<&mut GuardState> {
        self.map
            .get_mut(&guard.offer)
            .and_then(|st| st.guards.get_mut(usize::from(guard.guard)))
    }

    /// A home claims `guard` for a match on `channel`. `Won` and `Lost` are
    /// final answers the caller passes on; `Pending` means a
    /// [`ClaimReply`] will be sent to `from` later.
    pub(crate) fn claim(
        &mut self,
        from: NodeId,
        channel: ChannelId,
        guard: GuardRef,
        now: Time,
        fx: &mut Fx,
    ) -> Claim {
        let Some(st) = self.map.get_mut(&guard.offer) else {
            return Claim::Lost;
        };
        if usize::from(guard.guard) >= st.guards.len() {
            return Claim::Lost;
        }
        let req = Request::Claim {
            from,
            channel,
            guard: guard.guard,
        };
        st.requests.push(req.clone());
        if self.drive(guard.offer, now, fx, Some(&req)) {
            Claim::Won
        } else {
            Claim::Pending
        }
    }

    /// The home `from` released its claim of `guard`.
    pub(crate) fn release(&mut self, from: NodeId, guard: GuardRef, now: Time, fx: &mut Fx) {
        if let Some(st) = self.map.get_mut(&guard.offer) {
            if st.phase
                == (Phase::Claimed {
                    by: from,
                    guard: guard.guard,
                })
            {
                st.phase = Phase::Open;
                self.drive(guard.offer, now, fx, None);
            }
        }
    }

    /// The home `from` says `guard` ended. Returns false for a completion
    /// the offer cannot take (not claimed by `from`, or a success for an
    /// unclaimed Alt guard): bad input or a stale message.
    pub(crate) fn complete(
        &mut self,
        from: NodeId,
        guard: GuardRef,
        outcome: Completion,
        now: Time,
        fx: &mut Fx,
    ) -> bool {
        let Some(st) = self.map.get_mut(&guard.offer) else {
            return true; // already ended (or lost): nothing to do
        };
        let g = guard.guard;
        if usize::from(g) >= st.guards.len() {
            return false;
        }
        let claimed_here = st.phase == Phase::Claimed { by: from, guard: g };
        if claimed_here || (st.phase == Phase::Open && !st.alt) {
            let outcome = match outcome {
                Completion::Read(value) => Outcome::Read { guard: g, value },
                Completion::Written => Outcome::Written { guard: g },
                Completion::Failed { failure, value } => Outcome::Failed {
                    guard: g,
                    failure,
                    value,
                },
                Completion::Done => Outcome::Done,
            };
            self.finish(guard.offer, outcome, fx);
            return true;
        }
        match outcome {
            Completion::Failed { failure, value } => {
                st.requests.push(Request::Fail {
                    guard: g,
                    failure,
                    value,
                });
                self.drive(guard.offer, now, fx, None);
                true
            }
            _ => false,
        }
    }

    /// The home of `guard` handled its post.
    pub(crate) fn ack(&mut self, guard: GuardRef, now: Time, fx: &mut Fx) {
        if let Some(g) = self.guard_mut(&guard) {
            g.acked = true;
            self.drive(guard.offer, now, fx, None);
        }
    }

    /// `guard` could not be sent to `node`, which is lost.
    pub(crate) fn unreachable(&mut self, guard: GuardRef, node: NodeId, now: Time, fx: &mut Fx) {
        if let Some(st) = self.map.get_mut(&guard.offer) {
            st.requests.push(Request::Lost { node });
            self.drive(guard.offer, now, fx, None);
        }
    }

    /// `node` is lost: offers that depend on it end with `Lost` (once any
    /// claim another home holds is resolved).
    pub(crate) fn node_lost(&mut self, node: NodeId, now: Time, fx: &mut Fx) {
        let ids: Vec<OfferId> = self.map.keys().copied().collect();
        for id in ids {
            let Some(st) = self.map.get_mut(&id) else {
                continue;
            };
            if matches!(st.phase, Phase::Claimed { by, .. } if by == node) {
                st.phase = Phase::Open;
            }
            st.requests
                .retain(|r| !matches!(r, Request::Claim { from, .. } if *from == node));
            if st
                .guards
                .iter()
                .any(|g| g.at.is_some_and(|(n, _)| n == node))
            {
                st.requests.push(Request::Lost { node });
            }
            self.drive(id, now, fx, None);
        }
    }

    /// Decides whatever timeouts allow at `now`.
    pub(crate) fn tick(&mut self, now: Time, fx: &mut Fx) {
        let due: Vec<OfferId> = self
            .map
            .iter()
            .filter(|(_, st)| {
                st.guards
                    .iter()
                    .any(|g| matches!(g.kind, GuardKind::Timeout(t) if t <= now))
            })
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.drive(id, now, fx, None);
        }
    }

    /// The earliest timeout of an open offer.
    pub(crate) fn next_deadline(&self) -> Option<Time> {
        self.map
            .values()
            .filter(|st| st.phase == Phase::Open)
            .flat_map(|st| st.guards.iter())
            .filter_map(|g| match g.kind {
                GuardKind::Timeout(t) => Some(t),
                _ => None,
            })
            .min()
    }

    /// Decides the offer if it can be decided. Returns true if the decision
    /// granted exactly `silent` (a claim answered by the caller, not by a
    /// message).
    pub(crate) fn drive(
        &mut self,
        id: OfferId,
        now: Time,
        fx: &mut Fx,
        silent: Option<&Request>,
    ) -> bool {
        let Some(st) = self.map.get_mut(&id) else {
            return false;
        };
        if st.phase != Phase::Open {
            return false;
        }
        match decide(st, now) {
            None => false,
            Some(Decision::Grant(i)) => {
                let req = st.requests.remove(i);
                let Request::Claim {
                    from,
                    channel,
                    guard,
                } = req
                else {
                    return false;
                };
                st.phase = Phase::Claimed { by: from, guard };
                if silent == Some(&req) {
                    return true;
                }
                fx.send(
                    from,
                    Message::ClaimReply(ClaimReply {
                        channel,
                        guard: GuardRef { offer: id, guard },
                        won: true,
                    }),
                );
                false
            }
            Some(Decision::Finish(outcome)) => {
                self.finish(id, outcome, fx);
                false
            }
        }
    }

    /// The offer ends with `outcome`: tell its process, refuse queued
    /// claims, withdraw its other guards.
    fn finish(&mut self, id: OfferId, outcome: Outcome, fx: &mut Fx) {
        let Some(st) = self.map.remove(&id) else {
            return;
        };
        let chosen = match &outcome {
            Outcome::Read { guard, .. }
            | Outcome::Written { guard }
            | Outcome::Failed { guard, .. }
            | Outcome::Skipped { guard }
            | Outcome::TimedOut { guard } => Some(*guard),
            Outcome::Done | Outcome::Lost { .. } => None,
        };
        for r in &st.requests {
            if let Request::Claim {
                from,
                channel,
                guard,
            } = r
            {
                fx.send(
                    *from,
                    Message::ClaimReply(ClaimReply {
                        channel: *channel,
                        guard: GuardRef {
                            offer: id,
                            guard: *guard,
                        },
                        won: false,
                    }),
                );
            }
        }
        if st.alt || matches!(outcome, Outcome::Lost { .. }) {
            for (i, g) in st.guards.iter().enumerate() {
                let (channel, side) = match g.kind {
                    GuardKind::Read(c) => (c, Side::Read),
                    GuardKind::Write(c) => (c, Side::Write),
                    _ => continue,
                };
                let Ok(i) = u16::try_from(i) else { continue };
                if Some(i) == chosen {
                    continue;
                }
                if let Some((node, epoch)) = g.at {
                    fx.send(
                        node,
                        Message::ToHome(ToHome {
                            channel,
                            epoch,
                            op: HomeOp::Withdraw {
                                guard: GuardRef {
                                    offer: id,
                                    guard: i,
                                },
                                side,
                            },
                        }),
                    );
                }
            }
        }
        fx.events.push(Event::Completed(Completed {
            offer: id,
            process: st.process,
            outcome,
        }));
    }
}

/// The decision an open offer can take now, if any.
fn decide(st: &OfferState, now: Time) -> Option<Decision> {
    if let Some(node) = st.requests.iter().find_map(|r| match r {
        Request::Lost { node } => Some(*node),
        _ => None,
    }) {
        return Some(Decision::Finish(Outcome::Lost { node }));
    }
    for (g, gs) in st.guards.iter().enumerate() {
        let Ok(g16) = u16::try_from(g) else {
            return None;
        };
        let found = st.requests.iter().position(|r| match r {
            Request::Claim { guard, .. } | Request::Fail { guard, .. } => *guard == g16,
            Request::Lost { .. } => false,
        });
        if let Some(i) = found {
            return Some(match &st.requests[i] {
                Request::Claim { .. } => Decision::Grant(i),
                Request::Fail { failure, value, .. } => Decision::Finish(Outcome::Failed {
                    guard: g16,
                    failure: *failure,
                    value: value.clone(),
                }),
                Request::Lost { node } => Decision::Finish(Outcome::Lost { node: *node }),
            });
        }
        match gs.kind {
            GuardKind::Skip => return Some(Decision::Finish(Outcome::Skipped { guard: g16 })),
            GuardKind::Timeout(t) if t <= now => {
                return Some(Decision::Finish(Outcome::TimedOut { guard: g16 }));
            }
            GuardKind::Read(_) | GuardKind::Write(_) if st.alt && !gs.acked => return None,
            _ => {}
        }
    }
    None
}

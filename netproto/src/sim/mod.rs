//! An in-memory network of [`Node`]s for testing the protocol: seeded,
//! reproducible, with invariants checked after every step.
//!
//! Compiled for this crate's tests, and for other crates with the `sim`
//! feature. A run:
//!
//! 1. [`Scenario::generate`] makes, from a seed, N nodes, channels homed at
//!    different nodes (rendezvous and buffered), and processes on the nodes,
//!    each with a script: join its ends, then reads, writes, Alts (input and
//!    output guards across channels homed anywhere, skip and timeout guards),
//!    poisons, become-home requests, and maybe retires at the end.
//! 2. [`Sim::run`] steps the network: at each step the scheduler either
//!    starts the next operation of an idle process, or delivers the first
//!    message of a random link (links are FIFO, as a QUIC stream; nothing is
//!    ordered across links, so deliveries are delayed and reordered between
//!    links), or (rarely) crashes a node: a random tail of what it sent is
//!    lost, and each peer then sees `link_lost`. When nothing else can
//!    happen, time jumps to the next timeout.
//! 3. After every step the invariants below are checked; at quiescence
//!    (nothing to deliver, no process can start anything, no timeout due)
//!    the final ones too. A violation stops the run with the seed and a
//!    trace of the last steps.
//!
//! Invariants (every step):
//! - a value is read at most once, only from the channel it was written on,
//!   and never if its write failed or its output guard was not chosen;
//! - every operation completes at most once, with an outcome that fits it
//!   (a read guard reads, a write guard writes, a skip guard skips...);
//! - FIFO: the values one reader reads from one writer on one channel come
//!   in write order;
//! - at most one node is the resident home of a channel;
//! - each home's own invariants: no offer waits at a poisoned or retired
//!   channel, no more buffered messages than the capacity.
//!
//! At quiescence:
//! - exactly one home per channel (unless a crash took it), none handing
//!   over, none with a match in flight, nothing parked;
//! - progress: no home could match anything;
//! - every queued guard belongs to a live operation, and every live channel
//!   operation waits at the channel's home (nothing stuck in between);
//!   control operations have all completed;
//! - poison reached everyone: no live operation waits on a poisoned channel;
//! - without a crash, exactly once: every written value was read once or
//!   sits in its channel's buffer.

mod rng;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;
use std::time::Duration;

pub use rng::Rng;

use crate::codec::Payload;
use crate::home::Side;
use crate::ids::{ChannelId, GuardRef, NodeId, OfferId, ProcessId, Time};
use crate::node::{Completed, Event, Guard, Node, Outcome};
use crate::wire::Message;

/// A guard in a scenario (channels by index).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimGuard {
    /// Input guard on channel `.0`.
    Read(usize),
    /// Output guard on channel `.0`.
    Write(usize),
    /// Skip guard.
    Skip,
    /// Timeout guard after this many nanoseconds.
    Timeout(u64),
}

/// One step of a process's script (channels by index).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimOp {
    /// Join an end.
    Join(usize, Side),
    /// Read.
    Read(usize),
    /// Write a fresh value.
    Write(usize),
    /// A priority Alt.
    Alt(Vec<SimGuard>),
    /// Poison through an end on a side.
    Poison(usize, Side),
    /// Retire an end.
    Retire(usize, Side),
    /// Move the channel's home to the process's node.
    BecomeHome(usize),
}

/// A process: where it runs and what it does, in order.
#[derive(Clone, Debug)]
pub struct ProcScript {
    /// Index of its node.
    pub node: usize,
    /// Its operations.
    pub ops: Vec<SimOp>,
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct Config {
    /// Most nodes (at least 2 are used).
    pub max_nodes: usize,
    /// Most channels.
    pub max_channels: usize,
    /// Most processes.
    pub max_procs: usize,
    /// Most operations a process makes (after its joins).
    pub max_ops: usize,
    /// Include become-home requests.
    pub migrate: bool,
    /// Percent of scenarios in which one node crashes.
    pub crash_percent: u64,
    /// Include poison.
    pub poison: bool,
    /// A run that takes more steps than this is a livelock.
    pub max_steps: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_nodes: 4,
            max_channels: 4,
            max_procs: 6,
            max_ops: 6,
            migrate: true,
            crash_percent: 10,
            poison: true,
            max_steps: 200_000,
        }
    }
}

/// A generated scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The number of nodes.
    pub nodes: usize,
    /// Each channel's creating node and capacity.
    pub channels: Vec<(usize, usize)>,
    /// The processes.
    pub procs: Vec<ProcScript>,
    /// Crash this node after this many steps, if any.
    pub crash: Option<(usize, usize)>,
}

impl Scenario {
    /// A scenario drawn from `rng` within `cfg`.
    pub fn generate(rng: &mut Rng, cfg: &Config) -> Scenario {
        let nodes = 2 + rng.index(cfg.max_nodes.saturating_sub(1).max(1));
        let nch = 1 + rng.index(cfg.max_channels.max(1));
        let channels = (0..nch)
            .map(|_| (rng.index(nodes), [0, 0, 1, 2][rng.index(4)]))
            .collect();
        let nprocs = 2 + rng.index(cfg.max_procs.saturating_sub(1).max(1));
        let mut procs = Vec::new();
        for _ in 0..nprocs {
            let node = rng.index(nodes);
            let nops = 1 + rng.index(cfg.max_ops.max(1));
            let mut ops = Vec::new();
            for _ in 0..nops {
                let c = rng.index(nch);
                let roll = rng.below(100);
                let op = if roll < 28 {
                    SimOp::Read(c)
                } else if roll < 56 {
                    SimOp::Write(c)
                } else if roll < 88 {
                    let n = 1 + rng.index(3);
                    let mut gs: Vec<SimGuard> = (0..n)
                        .map(|_| {
                            let c = rng.index(nch);
                            if rng.chance(50) {
                                SimGuard::Read(c)
                            } else {
                                SimGuard::Write(c)
                            }
                        })
                        .collect();
                    match rng.below(10) {
                        0 => gs.push(SimGuard::Skip),
                        1 | 2 => gs.push(SimGuard::Timeout(500 + rng.below(20_000))),
                        _ => {}
                    }
                    SimOp::Alt(gs)
                } else if roll < 92 && cfg.poison {
                    SimOp::Poison(
                        c,
                        if rng.chance(50) {
                            Side::Read
                        } else {
                            Side::Write
                        },
                    )
                } else if cfg.migrate {
                    SimOp::BecomeHome(c)
                } else {
                    SimOp::Read(c)
                };
                ops.push(op);
            }
            // Join every end used, first; maybe retire them at the end.
            let mut sides = BTreeSet::new();
            for op in &ops {
                match op {
                    SimOp::Read(c) => {
                        sides.insert((*c, Side::Read as u8));
                    }
                    SimOp::Write(c) => {
                        sides.insert((*c, Side::Write as u8));
                    }
                    SimOp::Alt(gs) => {
                        for g in gs {
                            match g {
                                SimGuard::Read(c) => {
                                    sides.insert((*c, Side::Read as u8));
                                }
                                SimGuard::Write(c) => {
                                    sides.insert((*c, Side::Write as u8));
                                }
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
            }
            let side = |s: u8| if s == 0 { Side::Read } else { Side::Write };
            let mut script: Vec<SimOp> = sides
                .iter()
                .map(|&(c, s)| SimOp::Join(c, side(s)))
                .collect();
            script.extend(ops);
            for &(c, s) in &sides {
                if rng.chance(25) {
                    script.push(SimOp::Retire(c, side(s)));
                }
            }
            procs.push(ProcScript { node, ops: script });
        }
        let crash = rng
            .chance(cfg.crash_percent)
            .then(|| (rng.index(nodes), 1 + rng.index(300)));
        Scenario {
            nodes,
            channels,
            procs,
            crash,
        }
    }
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Steps taken.
    pub steps: usize,
    /// Messages delivered.
    pub delivered: usize,
    /// Operations completed.
    pub completed: usize,
    /// Values read.
    pub reads: usize,
    /// Homes moved.
    pub moves: usize,
    /// Nodes crashed.
    pub crashes: usize,
}

/// A broken invariant, with what is needed to replay and understand it.
#[derive(Clone, Debug)]
pub struct Violation {
    /// The seed of the run.
    pub seed: u64,
    /// The invariant and how it broke.
    pub message: String,
    /// The scenario, as generated.
    pub scenario: String,
    /// The last steps, oldest first.
    pub trace: Vec<String>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "seed {}: {}", self.seed, self.message)?;
        writeln!(
            f,
            "replay: CSP_SEED={} cargo test -p csp-netproto --test sim",
            self.seed
        )?;
        writeln!(f, "scenario: {}", self.scenario)?;
        writeln!(f, "trace (last {} steps):", self.trace.len())?;
        for line in &self.trace {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

/// What a link carries.
#[derive(Clone, Debug)]
enum Delivery {
    Msg(Message),
    /// The sender crashed: the receiver sees `link_lost` (always last).
    Lost,
}

/// A running operation of a process.
#[derive(Clone, Debug)]
struct Running {
    offer: OfferId,
    op: SimOp,
    /// Value ids of the write guards (by guard index).
    values: BTreeMap<u16, u64>,
}

#[derive(Clone, Debug)]
struct Proc {
    pid: ProcessId,
    node: usize,
    pc: usize,
    running: Option<Running>,
}

/// A written value, tracked by the checker.
#[derive(Clone, Debug)]
struct Value {
    channel: usize,
    writer: usize,
    /// The writer's write number (FIFO check).
    seq: u64,
    status: VStatus,
    reads: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum VStatus {
    Pending,
    Written,
    /// The write failed or its guard was not chosen: must never be read.
    NotSent,
    /// Lost with a node: anything goes except a second read.
    Unknown,
}

/// The simulation of one scenario. See the [module docs](self).
#[derive(Debug)]
pub struct Sim {
    seed: u64,
    rng: Rng,
    cfg: Config,
    scenario: Scenario,
    nodes: Vec<Option<Node>>,
    channels: Vec<ChannelId>,
    links: BTreeMap<(usize, usize), VecDeque<Delivery>>,
    now: Time,
    procs: Vec<Proc>,
    values: Vec<Value>,
    write_seq: Vec<u64>,
    /// (reader, writer, channel) → the last write number read.
    fifo: BTreeMap<(usize, usize, usize), u64>,
    completed: BTreeSet<OfferId>,
    crashed: bool,
    trace: VecDeque<String>,
    stats: Stats,
}

/// How many trace lines a violation shows.
const TRACE_LINES: usize = 400;

impl Sim {
    /// A simulation of the scenario generated from `seed`.
    pub fn new(seed: u64, cfg: &Config) -> Sim {
        let mut rng = Rng::new(seed);
        let scenario = Scenario::generate(&mut rng, cfg);
        let mut nodes: Vec<Option<Node>> = (0..scenario.nodes)
            .map(|i| Some(Node::new(node_id(i))))
            .collect();
        let channels = scenario
            .channels
            .iter()
            .map(|&(n, cap)| {
                nodes[n]
                    .as_mut()
                    .map(|node| node.create_channel(cap))
                    .unwrap_or(ChannelId {
                        origin: node_id(n),
                        num: 0,
                    })
            })
            .collect();
        let procs = scenario
            .procs
            .iter()
            .enumerate()
            .map(|(i, p)| Proc {
                pid: ProcessId {
                    node: node_id(p.node),
                    num: i as u64,
                },
                node: p.node,
                pc: 0,
                running: None,
            })
            .collect();
        let nprocs = scenario.procs.len();
        Sim {
            seed,
            rng,
            cfg: cfg.clone(),
            scenario,
            nodes,
            channels,
            links: BTreeMap::new(),
            now: Time::ZERO,
            procs,
            values: Vec::new(),
            write_seq: vec![0; nprocs],
            fifo: BTreeMap::new(),
            completed: BTreeSet::new(),
            crashed: false,
            trace: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    /// Runs seed `seed` with `cfg` to quiescence.
    ///
    /// # Errors
    ///
    /// The first invariant broken.
    pub fn run(seed: u64, cfg: &Config) -> Result<Stats, Box<Violation>> {
        let mut sim = Sim::new(seed, cfg);
        sim.drive().map_err(|message| sim.violation(message))?;
        Ok(sim.stats.clone())
    }

    fn violation(&self, message: String) -> Box<Violation> {
        Box::new(Violation {
            seed: self.seed,
            message,
            scenario: format!(
                "{} nodes, channels (origin, capacity) {:?}, crash {:?}, processes {:?}",
                self.scenario.nodes,
                self.scenario.channels,
                self.scenario.crash,
                self.scenario
                    .procs
                    .iter()
                    .map(|p| (p.node, &p.ops))
                    .collect::<Vec<_>>()
            ),
            trace: self.trace.iter().cloned().collect(),
        })
    }

    fn log(&mut self, line: String) {
        if self.trace.len() == TRACE_LINES {
            self.trace.pop_front();
        }
        self.trace
            .push_back(format!("[{} {}] {line}", self.stats.steps, self.now));
    }

    fn drive(&mut self) -> Result<(), String> {
        let mut idle_timeouts = 0;
        loop {
            self.stats.steps += 1;
            if self.stats.steps > self.cfg.max_steps {
                return Err(format!(
                    "livelock: no quiescence after {} steps",
                    self.cfg.max_steps
                ));
            }
            if let Some((n, at)) = self.scenario.crash {
                if at == self.stats.steps && !self.crashed {
                    self.crash(n);
                    self.check_step()?;
                    continue;
                }
            }
            self.now = self.now + Duration::from_nanos(self.rng.below(400));
            let startable: Vec<usize> = (0..self.procs.len())
                .filter(|&i| self.can_start(i))
                .collect();
            let links: Vec<(usize, usize)> = self
                .links
                .iter()
                .filter(|(_, q)| !q.is_empty())
                .map(|(k, _)| *k)
                .collect();
            let total = startable.len() + links.len();
            if total == 0 {
                // Quiet: time jumps to the next timeout, if any.
                let next = self
                    .nodes
                    .iter()
                    .flatten()
                    .filter_map(Node::poll_timeout)
                    .min();
                match next {
                    Some(t) => {
                        idle_timeouts += 1;
                        if idle_timeouts > 3 {
                            return Err(format!("timeout at {t} due but never decided"));
                        }
                        self.now = self.now.max(t);
                        self.log(format!("time -> {}", self.now));
                        for i in 0..self.nodes.len() {
                            let now = self.now;
                            if let Some(n) = self.nodes[i].as_mut() {
                                n.handle_timeout(now);
                            }
                            self.collect(i)?;
                        }
                        self.check_step()?;
                        continue;
                    }
                    None => return self.check_quiescent(),
                }
            }
            idle_timeouts = 0;
            let pick = self.rng.index(total);
            if pick < startable.len() {
                self.start(startable[pick])?;
            } else {
                let (from, to) = links[pick - startable.len()];
                self.deliver(from, to)?;
            }
            self.check_step()?;
        }
    }

    fn can_start(&self, i: usize) -> bool {
        let p = &self.procs[i];
        p.running.is_none()
            && p.pc < self.scenario.procs[i].ops.len()
            && self.nodes[p.node].is_some()
    }

    fn start(&mut self, i: usize) -> Result<(), String> {
        let op = self.scenario.procs[i].ops[self.procs[i].pc].clone();
        self.procs[i].pc += 1;
        let (node, pid, now) = (self.procs[i].node, self.procs[i].pid, self.now);
        let mut values = BTreeMap::new();
        let chans = self.channels.clone();
        let offer = match &op {
            SimOp::Join(c, s) => self.node(node)?.join(now, pid, chans[*c], *s),
            SimOp::Read(c) => self.node(node)?.read(now, pid, chans[*c]),
            SimOp::Write(c) => {
                let (id, payload) = self.new_value(i, *c);
                values.insert(0, id);
                self.node(node)?.write(now, pid, chans[*c], payload)
            }
            SimOp::Alt(gs) => {
                let mut guards = Vec::new();
                for (k, g) in gs.iter().enumerate() {
                    guards.push(match g {
                        SimGuard::Read(c) => Guard::Read(chans[*c]),
                        SimGuard::Write(c) => {
                            let (id, payload) = self.new_value(i, *c);
                            values.insert(k as u16, id);
                            Guard::Write(chans[*c], payload)
                        }
                        SimGuard::Skip => Guard::Skip,
                        SimGuard::Timeout(ns) => Guard::Timeout(Duration::from_nanos(*ns)),
                    });
                }
                self.node(node)?
                    .alt(now, pid, guards)
                    .map_err(|e| format!("alt refused: {e}"))?
            }
            SimOp::Poison(c, s) => self.node(node)?.poison(now, pid, chans[*c], *s),
            SimOp::Retire(c, s) => self.node(node)?.retire(now, pid, chans[*c], *s),
            SimOp::BecomeHome(c) => self.node(node)?.become_home(now, pid, chans[*c]),
        };
        self.log(format!(
            "{pid} at n{node} starts {offer}: {op:?} values {values:?}"
        ));
        self.procs[i].running = Some(Running { offer, op, values });
        self.collect(node)
    }

    /// A fresh value written by process `writer` on channel `c`.
    fn new_value(&mut self, writer: usize, c: usize) -> (u64, Payload) {
        let id = self.values.len() as u64;
        self.write_seq[writer] += 1;
        self.values.push(Value {
            channel: c,
            writer,
            seq: self.write_seq[writer],
            status: VStatus::Pending,
            reads: 0,
        });
        (id, Payload::from(id.to_le_bytes().to_vec()))
    }

    fn node(&mut self, i: usize) -> Result<&mut Node, String> {
        self.nodes[i]
            .as_mut()
            .ok_or_else(|| format!("node {i} is crashed"))
    }

    fn deliver(&mut self, from: usize, to: usize) -> Result<(), String> {
        let Some(d) = self
            .links
            .get_mut(&(from, to))
            .and_then(VecDeque::pop_front)
        else {
            return Ok(());
        };
        self.stats.delivered += 1;
        let now = self.now;
        match d {
            Delivery::Msg(m) => {
                self.log(format!("n{from} -> n{to}: {m}"));
                if let Some(n) = self.nodes[to].as_mut() {
                    n.handle_message(now, node_id(from), m);
                }
            }
            Delivery::Lost => {
                self.log(format!("n{to} sees link to n{from} lost"));
                if let Some(n) = self.nodes[to].as_mut() {
                    n.link_lost(now, node_id(from));
                }
            }
        }
        self.collect(to)
    }

    fn crash(&mut self, n: usize) {
        self.crashed = true;
        self.stats.crashes += 1;
        self.nodes[n] = None;
        let mut lines = Vec::new();
        for ((from, to), q) in self.links.iter_mut() {
            if *to == n {
                q.clear();
            }
            if *from == n {
                let keep = self.rng.index(q.len() + 1);
                q.truncate(keep);
            }
        }
        for other in 0..self.nodes.len() {
            if other != n && self.nodes[other].is_some() {
                self.links
                    .entry((n, other))
                    .or_default()
                    .push_back(Delivery::Lost);
                lines.push(other);
            }
        }
        for v in self.values.iter_mut() {
            if self.procs[v.writer].node == n && v.status == VStatus::Pending {
                v.status = VStatus::Unknown;
            }
        }
        self.log(format!("CRASH n{n}; peers {lines:?} will see it"));
    }

    /// Moves node `i`'s output to the links and its events to the checker.
    fn collect(&mut self, i: usize) -> Result<(), String> {
        let mut events = Vec::new();
        let alive: Vec<bool> = self.nodes.iter().map(Option::is_some).collect();
        if let Some(n) = self.nodes[i].as_mut() {
            while let Some(t) = n.poll_transmit() {
                let to = t.to.0 as usize;
                if to >= self.scenario.nodes {
                    return Err(format!("n{i} sent to unknown node {}", t.to));
                }
                if to == i {
                    return Err(format!("n{i} transmitted to itself: {}", t.message));
                }
                if alive[to] {
                    self.links
                        .entry((i, to))
                        .or_default()
                        .push_back(Delivery::Msg(t.message));
                }
            }
            while let Some(e) = n.poll_event() {
                events.push(e);
            }
        }
        for e in events {
            match e {
                Event::Completed(c) => self.completed(i, c)?,
                Event::BadMessage { from, reason } => {
                    return Err(format!("n{i} refused a message from {from}: {reason}"));
                }
            }
        }
        Ok(())
    }

    fn completed(&mut self, node: usize, c: Completed) -> Result<(), String> {
        self.log(format!(
            "n{node} event: {} {} {:?}",
            c.process, c.offer, c.outcome
        ));
        self.stats.completed += 1;
        if !self.completed.insert(c.offer) {
            return Err(format!("{} completed twice", c.offer));
        }
        let i = c.process.num as usize;
        let Some(run) = self.procs.get_mut(i).and_then(|p| p.running.take()) else {
            return Err(format!(
                "{} completed, but {} was not running it",
                c.offer, c.process
            ));
        };
        if run.offer != c.offer {
            return Err(format!(
                "{} completed, but {} runs {}",
                c.offer, c.process, run.offer
            ));
        }
        if matches!(run.op, SimOp::BecomeHome(_)) && c.outcome == Outcome::Done {
            self.stats.moves += 1;
        }
        // Which guard committed, and does the outcome fit it?
        let guards: Vec<SimGuard> = match &run.op {
            SimOp::Read(ch) => vec![SimGuard::Read(*ch)],
            SimOp::Write(ch) => vec![SimGuard::Write(*ch)],
            SimOp::Alt(gs) => gs.clone(),
            _ => {
                return match c.outcome {
                    Outcome::Done | Outcome::Lost { .. } => Ok(()),
                    o => Err(format!("control operation {} ended with {o:?}", c.offer)),
                };
            }
        };
        let guard_of = |g: u16| guards.get(usize::from(g)).cloned();
        let mut sent: Option<u16> = None;
        match &c.outcome {
            Outcome::Read { guard, value } => {
                let Some(SimGuard::Read(ch)) = guard_of(*guard) else {
                    return Err(format!(
                        "{} read on guard {guard}, not an input guard",
                        c.offer
                    ));
                };
                self.read(i, ch, value)?;
            }
            Outcome::Written { guard } => {
                if !matches!(guard_of(*guard), Some(SimGuard::Write(_))) {
                    return Err(format!(
                        "{} wrote on guard {guard}, not an output guard",
                        c.offer
                    ));
                }
                sent = Some(*guard);
            }
            Outcome::Skipped { guard } => {
                if guard_of(*guard) != Some(SimGuard::Skip) {
                    return Err(format!("{} skipped on guard {guard}", c.offer));
                }
            }
            Outcome::TimedOut { guard } => {
                if !matches!(guard_of(*guard), Some(SimGuard::Timeout(_))) {
                    return Err(format!("{} timed out on guard {guard}", c.offer));
                }
            }
            Outcome::Failed { guard, value, .. } => match guard_of(*guard) {
                Some(SimGuard::Read(_)) if value.is_none() => {}
                Some(SimGuard::Write(_)) => {
                    let want = run.values.get(guard).map(|id| id.to_le_bytes().to_vec());
                    if value.as_ref().map(|p| p.to_vec()) != want {
                        return Err(format!("{} failed without its message back", c.offer));
                    }
                }
                _ => return Err(format!("{} failed on guard {guard}", c.offer)),
            },
            Outcome::Done => return Err(format!("{} (a channel operation) ended Done", c.offer)),
            Outcome::Lost { .. } => {
                for id in run.values.values() {
                    if let Some(v) = self.values.get_mut(*id as usize) {
                        v.status = VStatus::Unknown;
                    }
                }
                return Ok(());
            }
        }
        for (g, id) in &run.values {
            let Some(v) = self.values.get_mut(*id as usize) else {
                continue;
            };
            if Some(*g) == sent {
                v.status = VStatus::Written;
            } else {
                v.status = VStatus::NotSent;
                if v.reads > 0 {
                    return Err(format!(
                        "value {id} was read, but its guard {g} of {} did not write it",
                        c.offer
                    ));
                }
            }
        }
        Ok(())
    }

    fn read(&mut self, reader: usize, ch: usize, value: &Payload) -> Result<(), String> {
        self.stats.reads += 1;
        let id = <[u8; 8]>::try_from(value.as_slice())
            .map(u64::from_le_bytes)
            .map_err(|_| format!("read a value that was never written: {value:?}"))?;
        let Some(v) = self.values.get_mut(id as usize) else {
            return Err(format!("read value {id}, never written"));
        };
        v.reads += 1;
        if v.reads > 1 {
            return Err(format!("value {id} read twice"));
        }
        if v.channel != ch {
            return Err(format!(
                "value {id} written on channel {} read on {ch}",
                v.channel
            ));
        }
        if v.status == VStatus::NotSent {
            return Err(format!(
                "value {id} read, but its write failed or was not chosen"
            ));
        }
        let key = (reader, v.writer, ch);
        let seq = v.seq;
        if let Some(&last) = self.fifo.get(&key) {
            if seq <= last {
                return Err(format!(
                    "FIFO: reader p{reader} read write #{seq} of p{} on channel {ch} after #{last}",
                    v.writer
                ));
            }
        }
        self.fifo.insert(key, seq);
        Ok(())
    }

    fn live_nodes(&self) -> impl Iterator<Item = (usize, &Node)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.as_ref().map(|n| (i, n)))
    }

    fn check_step(&self) -> Result<(), String> {
        let mut homes: BTreeMap<ChannelId, usize> = BTreeMap::new();
        for (i, n) in self.live_nodes() {
            for (c, e, h) in n.homes() {
                if let Some(other) = homes.insert(c, i) {
                    return Err(format!("{c} has two homes: n{other} and n{i} ({e})"));
                }
                if h.buffered() > h.capacity() {
                    return Err(format!(
                        "{c} at n{i} buffers {} > {}",
                        h.buffered(),
                        h.capacity()
                    ));
                }
                let queued = h.waiting(Side::Read) + h.waiting(Side::Write);
                if (h.is_poisoned() || (h.is_retired() && h.buffered() == 0)) && queued > 0 {
                    return Err(format!("{c} at n{i} is failed but {queued} offers wait"));
                }
            }
        }
        Ok(())
    }

    fn check_quiescent(&self) -> Result<(), String> {
        self.check_step()?;
        let mut homes: BTreeMap<ChannelId, usize> = BTreeMap::new();
        let mut queued: BTreeSet<GuardRef> = BTreeSet::new();
        for (i, n) in self.live_nodes() {
            if n.parked() > 0 && !self.crashed {
                return Err(format!(
                    "n{i} has {} operations parked at quiescence",
                    n.parked()
                ));
            }
            for (c, _, h) in n.homes() {
                homes.insert(c, i);
                if n.is_handing(c) {
                    return Err(format!("{c} at n{i} is still handing over at quiescence"));
                }
                if h.in_flight() {
                    return Err(format!(
                        "{c} at n{i} has a match in flight at quiescence: {:?}",
                        h.in_flight_parties()
                    ));
                }
                if h.can_match() {
                    return Err(format!(
                        "progress: {c} at n{i} could match but nothing moves: {h:?}"
                    ));
                }
                for g in h
                    .read_queue()
                    .map(|o| o.party)
                    .chain(h.write_queue().map(|(o, _)| o.party))
                {
                    let owner = g.offer.node.0 as usize;
                    if let Some(Some(on)) = self.nodes.get(owner) {
                        if !on.is_live(&g) {
                            return Err(format!("{c} at n{i} holds {g}, whose operation ended"));
                        }
                    }
                    queued.insert(g);
                }
            }
        }
        for (k, c) in self.channels.iter().enumerate() {
            if !homes.contains_key(c) && !self.crashed {
                return Err(format!("channel {k} ({c}) has no home at quiescence"));
            }
        }
        for (i, n) in self.live_nodes() {
            for offer in n.live_offers() {
                let p = self
                    .procs
                    .iter()
                    .find(|p| p.running.as_ref().is_some_and(|r| r.offer == offer));
                let Some(p) = p else {
                    return Err(format!("n{i} has live {offer} that no process runs"));
                };
                let Some(run) = &p.running else { continue };
                if self.crashed {
                    continue;
                }
                let guards: Vec<(u16, usize)> = match &run.op {
                    SimOp::Read(c) | SimOp::Write(c) => vec![(0, *c)],
                    SimOp::Alt(gs) => {
                        let mut v = Vec::new();
                        for (k, g) in gs.iter().enumerate() {
                            match g {
                                SimGuard::Read(c) | SimGuard::Write(c) => v.push((k as u16, *c)),
                                SimGuard::Skip => {
                                    return Err(format!(
                                        "{offer} has a skip guard and never ended"
                                    ));
                                }
                                SimGuard::Timeout(_) => {
                                    return Err(format!(
                                        "{offer} has a timeout guard and never ended"
                                    ));
                                }
                            }
                        }
                        v
                    }
                    op => return Err(format!("control operation {offer} ({op:?}) never ended")),
                };
                for (g, c) in guards {
                    let gr = GuardRef { offer, guard: g };
                    let ch = self.channels[c];
                    if let Some(&h) = homes.get(&ch) {
                        let home = self.nodes[h].as_ref().and_then(|n| {
                            n.homes().find(|(cc, _, _)| *cc == ch).map(|(_, _, h)| h)
                        });
                        if home.is_some_and(|h| h.is_poisoned()) {
                            return Err(format!("poison did not reach {gr} waiting on {ch}"));
                        }
                    }
                    if !queued.contains(&gr) {
                        return Err(format!("{gr} on {ch} is live but waits at no home"));
                    }
                }
            }
        }
        if !self.crashed {
            // Exactly once: every written value was read, or is buffered.
            let mut buffered: BTreeMap<u64, usize> = BTreeMap::new();
            let mut poisoned: BTreeSet<usize> = BTreeSet::new();
            for (_, n) in self.live_nodes() {
                for (c, _, h) in n.homes() {
                    if h.is_poisoned() {
                        if let Some(k) = self.channels.iter().position(|x| *x == c) {
                            poisoned.insert(k);
                        }
                    }
                    for v in h.buffer() {
                        if let Ok(b) = <[u8; 8]>::try_from(v.as_slice()) {
                            *buffered.entry(u64::from_le_bytes(b)).or_default() += 1;
                        }
                    }
                }
            }
            for (id, v) in self.values.iter().enumerate() {
                let b = buffered.get(&(id as u64)).copied().unwrap_or(0);
                let ok = match v.status {
                    // A reader's poison discards the buffer (PyCSP's rule).
                    VStatus::Written => {
                        v.reads + b as u32 == 1
                            || (v.reads + b as u32 == 0 && poisoned.contains(&v.channel))
                    }
                    VStatus::Pending | VStatus::NotSent => v.reads == 0 && b == 0,
                    VStatus::Unknown => v.reads + b as u32 <= 1,
                };
                if !ok {
                    return Err(format!(
                        "exactly once: value {id} ({:?}) read {} times, buffered {b} times",
                        v.status, v.reads
                    ));
                }
            }
        }
        Ok(())
    }

    /// One line per process: where its script stands (for reports).
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for (i, p) in self.procs.iter().enumerate() {
            let _ = writeln!(
                s,
                "p{i} at n{}: pc {} running {:?}",
                p.node, p.pc, p.running
            );
        }
        s
    }
}

fn node_id(i: usize) -> NodeId {
    NodeId(u32::try_from(i).unwrap_or(u32::MAX))
}

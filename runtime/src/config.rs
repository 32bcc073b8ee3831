//! How a run is set up: its schedule, its clock, its stacks.

use std::fmt;

/// The order in which runnable processes are picked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Schedule {
    /// First runnable, first run: the same program always runs the same way.
    #[default]
    Fifo,
    /// Picks among the runnable processes with a generator seeded by the value.
    /// The same seed replays the same interleaving; a failing seed is printed
    /// so it can be replayed.
    Seeded(u64),
}

impl Schedule {
    /// A seeded schedule.
    ///
    /// ```
    /// use csp_runtime::Schedule;
    /// assert_eq!(Schedule::seeded(7), Schedule::Seeded(7));
    /// ```
    pub fn seeded(seed: u64) -> Self {
        Schedule::Seeded(seed)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Fifo => f.write_str("fifo"),
            Schedule::Seeded(s) => write!(f, "seed {s}"),
        }
    }
}

/// Which clock timeouts and `sleep` follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Clock {
    /// The wall clock.
    #[default]
    Real,
    /// A simulated clock: when every process is blocked, it jumps to the next
    /// timer. A program that sleeps for an hour finishes at once.
    Simulated,
}

/// The settings of one run, given to [`Runtime::run`](crate::Runtime::run).
///
/// ```
/// use csp_runtime::{Clock, Config, Schedule};
/// let c = Config::new().schedule(Schedule::seeded(3)).clock(Clock::Simulated);
/// assert_eq!(c.schedule, Schedule::Seeded(3));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// How runnable processes are picked (greenlets; the parallel backend's
    /// threads are scheduled by the OS).
    pub schedule: Schedule,
    /// Real or simulated time (greenlets only).
    pub clock: Clock,
    /// Usable stack bytes of each green process (greenlets only).
    pub stack_size: usize,
}

impl Config {
    /// The default stack size of a green process: 64 KiB of address space, of
    /// which only the pages a process touches cost memory.
    pub const DEFAULT_STACK_SIZE: usize = 64 * 1024;

    /// FIFO schedule, real time, default stacks.
    pub fn new() -> Self {
        Config {
            schedule: Schedule::Fifo,
            clock: Clock::Real,
            stack_size: Self::DEFAULT_STACK_SIZE,
        }
    }

    /// Sets the schedule.
    pub fn schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// Sets the clock.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the usable stack size of each green process, in bytes.
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = bytes;
        self
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

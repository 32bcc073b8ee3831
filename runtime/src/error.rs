//! The one error type of the runtime, and the deadlock report.

use std::fmt;
use std::sync::Arc;

/// The result of every channel operation and every process.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in a channel operation, a process or a run.
///
/// `Poisoned` and `Retired` are the normal ways a CSP network shuts down: a
/// process body that ends with one of them poisons (or retires) every channel
/// end among its arguments, and `par` counts such a process as stopped rather
/// than failed. Every other variant is a failure.
///
/// Which backends produce which variant:
///
/// | variant | greenlets | parallel |
/// | --- | --- | --- |
/// | `Poisoned`, `Retired`, `Panicked`, `Config`, `Io`, `Other` | yes | yes |
/// | `Deadlock` | yes (detected exactly) | no |
/// | `Timeout`, `Lost`, `Remote` | no | yes |
#[derive(Clone)]
#[non_exhaustive]
pub enum Error {
    /// The channel was poisoned: every pending and later operation on it fails.
    Poisoned,
    /// The channel was retired: all ends on the other side (or this end itself) left.
    Retired,
    /// Nothing could run any more while processes were still blocked. The report
    /// names every blocked process and what it waited on.
    Deadlock(Arc<DeadlockReport>),
    /// A bounded wait ran out.
    Timeout,
    /// A node that this operation depended on is gone.
    Lost {
        /// The node that was lost, as the backend names it.
        node: String,
    },
    /// A process running in another OS process or node failed or panicked.
    Remote {
        /// The name of the process.
        process: String,
        /// What it said.
        message: String,
    },
    /// A process panicked. The network around it was poisoned through its arguments.
    Panicked {
        /// The name of the process.
        process: String,
        /// The panic message.
        message: String,
    },
    /// The runtime was set up or used in a way it cannot honour (a bad
    /// configuration, a channel used from a thread that does not own it, ...).
    Config(String),
    /// An operating-system call failed.
    Io(Arc<std::io::Error>),
    /// An error of the program itself, carried through a process result.
    Other(Arc<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// True for `Poisoned` and `Retired`: the ways a network is asked to stop.
    pub fn is_shutdown(&self) -> bool {
        matches!(self, Error::Poisoned | Error::Retired)
    }

    /// Wraps any error of the program so that a process can return it.
    ///
    /// ```
    /// let e = csp_runtime::Error::other(std::fmt::Error);
    /// assert!(!e.is_shutdown());
    /// ```
    pub fn other(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Other(Arc::new(e))
    }

    /// A configuration or usage error with a message saying what to do.
    pub fn config(message: impl Into<String>) -> Self {
        Error::Config(message.into())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Poisoned => f.write_str("Poisoned"),
            Error::Retired => f.write_str("Retired"),
            // `fn main() -> csp::Result<()>` prints errors with Debug: show
            // the whole report, it is what the user needs to see.
            Error::Deadlock(r) => write!(f, "Deadlock({r})"),
            Error::Timeout => f.write_str("Timeout"),
            Error::Lost { node } => write!(f, "Lost {{ node: {node:?} }}"),
            Error::Remote { process, message } => {
                write!(f, "Remote {{ process: {process:?}, message: {message:?} }}")
            }
            Error::Panicked { process, message } => {
                write!(
                    f,
                    "Panicked {{ process: {process:?}, message: {message:?} }}"
                )
            }
            Error::Config(m) => write!(f, "Config({m:?})"),
            Error::Io(e) => write!(f, "Io({e:?})"),
            Error::Other(e) => write!(f, "Other({e:?})"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Poisoned => f.write_str("the channel is poisoned"),
            Error::Retired => f.write_str("the channel is retired"),
            Error::Deadlock(r) => write!(f, "{r}"),
            Error::Timeout => f.write_str("the operation timed out"),
            Error::Lost { node } => write!(f, "node {node} was lost"),
            Error::Remote { process, message } => {
                write!(f, "remote process '{process}' failed: {message}")
            }
            Error::Panicked { process, message } => {
                write!(f, "process '{process}' panicked: {message}")
            }
            Error::Config(m) => f.write_str(m),
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Other(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(&**e),
            Error::Other(e) => Some(&**e),
            _ => None,
        }
    }
}

impl PartialEq for Error {
    /// Errors compare by kind and by their text; `Deadlock`s compare by report.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Error::Poisoned, Error::Poisoned)
            | (Error::Retired, Error::Retired)
            | (Error::Timeout, Error::Timeout) => true,
            (Error::Deadlock(a), Error::Deadlock(b)) => a == b,
            (Error::Lost { node: a }, Error::Lost { node: b }) => a == b,
            (
                Error::Remote {
                    process: a,
                    message: m,
                },
                Error::Remote {
                    process: b,
                    message: n,
                },
            )
            | (
                Error::Panicked {
                    process: a,
                    message: m,
                },
                Error::Panicked {
                    process: b,
                    message: n,
                },
            ) => a == b && m == n,
            (Error::Config(a), Error::Config(b)) => a == b,
            (Error::Io(a), Error::Io(b)) => a.kind() == b.kind() && a.to_string() == b.to_string(),
            (Error::Other(a), Error::Other(b)) => a.to_string() == b.to_string(),
            _ => false,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(Arc::new(e))
    }
}

/// Why the network stopped: every process that was blocked, and on what.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct DeadlockReport {
    /// The blocked processes, in the order they were created.
    pub blocked: Vec<BlockedProcess>,
}

/// One blocked process in a [`DeadlockReport`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockedProcess {
    /// The process's name (`main` for the program's own thread).
    pub process: String,
    /// What it waits on, e.g. `read on channel 'a'` or `alt over [read 'a', write 'b']`.
    pub waiting_on: String,
}

impl fmt::Display for DeadlockReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 20;
        write!(
            f,
            "deadlock: no process can run and no timer or io is pending; {} blocked process{}:",
            self.blocked.len(),
            if self.blocked.len() == 1 { "" } else { "es" }
        )?;
        for b in self.blocked.iter().take(SHOWN) {
            write!(f, "\n  - '{}' waits on {}", b.process, b.waiting_on)?;
        }
        if self.blocked.len() > SHOWN {
            write!(f, "\n  ... and {} more", self.blocked.len() - SHOWN)?;
        }
        Ok(())
    }
}

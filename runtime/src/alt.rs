//! Alternation (external choice): wait on several guards, commit exactly one. See [`Alt`].
use std::fmt;
use std::time::Duration;

use crate::backend::Runtime;
use crate::{Error, Message, Reader, Result, Writer};

/// One kind of guard inside an alternation, type-erased.
trait Arm<U, R: Runtime> {
    /// Adds this arm's guards to `out`.
    fn guards<'s>(&'s mut self, out: &mut Vec<R::Guard<'s>>) -> Result<()>;
    /// True for channel guards (which take part in fair ordering).
    fn is_channel(&self) -> bool;
    /// Runs the action of guard `sub` of this arm, which committed.
    fn fire(self: Box<Self>, sub: usize) -> U;
}

struct ReadArm<'a, T: Message, R: Runtime, F> {
    reader: &'a Reader<T, R>,
    slot: Option<T>,
    action: F,
}

impl<T: Message, R: Runtime, U, F: FnOnce(T) -> U> Arm<U, R> for ReadArm<'_, T, R, F> {
    fn guards<'s>(&'s mut self, out: &mut Vec<R::Guard<'s>>) -> Result<()> {
        self.reader.check()?;
        out.push(R::input_guard(self.reader.chan(), &mut self.slot));
        Ok(())
    }
    fn is_channel(&self) -> bool {
        true
    }
    fn fire(self: Box<Self>, _sub: usize) -> U {
        let this = *self;
        match this.slot {
            Some(v) => (this.action)(v),
            // A backend that reports an input guard as committed has filled
            // its slot; this is a bug in the backend, not bad input.
            None => unreachable!("backend committed an input guard without a message"),
        }
    }
}

struct ReadEachArm<'a, T: Message, R: Runtime, F> {
    readers: &'a [Reader<T, R>],
    slots: Vec<Option<T>>,
    action: F,
}

impl<T: Message, R: Runtime, U, F: FnOnce(usize, T) -> U> Arm<U, R> for ReadEachArm<'_, T, R, F> {
    fn guards<'s>(&'s mut self, out: &mut Vec<R::Guard<'s>>) -> Result<()> {
        for r in self.readers {
            r.check()?;
        }
        self.slots.clear();
        self.slots.resize_with(self.readers.len(), || None);
        for (r, slot) in self.readers.iter().zip(self.slots.iter_mut()) {
            out.push(R::input_guard(r.chan(), slot));
        }
        Ok(())
    }
    fn is_channel(&self) -> bool {
        true
    }
    fn fire(self: Box<Self>, sub: usize) -> U {
        let mut this = *self;
        match this.slots.get_mut(sub).and_then(Option::take) {
            Some(v) => (this.action)(sub, v),
            None => unreachable!("backend committed an input guard without a message"),
        }
    }
}

struct WriteArm<'a, T: Message, R: Runtime, F> {
    writer: &'a Writer<T, R>,
    value: Option<T>,
    action: F,
}

impl<T: Message, R: Runtime, U, F: FnOnce() -> U> Arm<U, R> for WriteArm<'_, T, R, F> {
    fn guards<'s>(&'s mut self, out: &mut Vec<R::Guard<'s>>) -> Result<()> {
        self.writer.check()?;
        if self.value.is_none() {
            return Err(Error::config(format!(
                "an output guard on channel '{}' was offered again after its value was sent",
                self.writer.channel_name()
            )));
        }
        out.push(R::output_guard(self.writer.chan(), &mut self.value));
        Ok(())
    }
    fn is_channel(&self) -> bool {
        true
    }
    fn fire(self: Box<Self>, _sub: usize) -> U {
        (self.action)()
    }
}

struct SkipArm<F>(F);

impl<R: Runtime, U, F: FnOnce() -> U> Arm<U, R> for SkipArm<F> {
    fn guards<'s>(&'s mut self, out: &mut Vec<R::Guard<'s>>) -> Result<()> {
        out.push(R::skip_guard());
        Ok(())
    }
    fn is_channel(&self) -> bool {
        false
    }
    fn fire(self: Box<Self>, _sub: usize) -> U {
        (self.0)()
    }
}

struct TimeoutArm<F> {
    after: Duration,
    action: F,
}

impl<R: Runtime, U, F: FnOnce() -> U> Arm<U, R> for TimeoutArm<F> {
    fn guards<'s>(&'s mut self, out: &mut Vec<R::Guard<'s>>) -> Result<()> {
        out.push(R::timeout_guard(self.after));
        Ok(())
    }
    fn is_channel(&self) -> bool {
        false
    }
    fn fire(self: Box<Self>, _sub: usize) -> U {
        (self.action)()
    }
}

/// Alternation (external choice): wait on several guards, commit exactly one.
///
/// An [`Alt`] is built from guards, each with an action that turns what the
/// guard did into the alternation's result:
///
/// - [`read`](Alt::read): ready when a writer offers a message; the action gets it;
/// - [`read_each`](Alt::read_each): one input guard per reader of a slice
///   (PyCSP's `AltSelect` over a list); the action gets the index and the message;
/// - [`write`](Alt::write): ready when a reader (or buffer room) takes the value;
/// - [`skip`](Alt::skip): always ready;
/// - [`timeout`](Alt::timeout): ready once the given time has passed.
///
/// [`select`](Alt::select) is a priority select: the first guard, in the order
/// they were added, that is ready when the select is made wins; if none is,
/// the first one to become ready wins. A `skip` guard therefore wins only when
/// every guard before it was not ready. [`select_fair`](Alt::select_fair)
/// orders the channel guards least-chosen first (skip and timeout last), so
/// over repeated selects with the same [`Fair`] no ready guard is starved.
///
/// Exactly one guard commits. A message offered by an output guard that did
/// not commit is dropped with the `Alt`; nothing is ever half-sent.
///
/// Errors: if a guard's channel is poisoned or retired (or its end retired)
/// before any guard commits, the select fails with `Poisoned` or `Retired`,
/// even if another guard could have committed later (PyCSP's rule).
///
/// The `alt!` macro builds an `Alt` whose arms run in the caller's scope.
///
/// # Example
///
/// ```
/// # #[allow(dead_code)]
/// # fn doc<R: csp_runtime::Runtime>() -> csp_runtime::Result<()> {
/// use csp_runtime::{Alt, Channel};
/// let a = Channel::<u32, R>::buffered(1);
/// let b = Channel::<String, R>::buffered(1);
/// b.writer().write("hi".into())?;
/// let (ra, rb) = (a.reader(), b.reader());
/// let got = Alt::new()
///     .read(&ra, |n| format!("a: {n}"))
///     .read(&rb, |s| format!("b: {s}"))
///     .select()?;
/// assert_eq!(got, "b: hi");
/// # Ok(()) }
/// ```
pub struct Alt<'a, U, R: Runtime> {
    arms: Vec<Box<dyn Arm<U, R> + 'a>>,
}

impl<'a, U, R: Runtime> Alt<'a, U, R> {
    /// An alternation with no guards yet.
    pub fn new() -> Self {
        Alt { arms: Vec::new() }
    }

    /// An input guard on `reader`; `action` gets the message read.
    pub fn read<T: Message>(
        mut self,
        reader: &'a Reader<T, R>,
        action: impl FnOnce(T) -> U + 'a,
    ) -> Self {
        self.arms.push(Box::new(ReadArm {
            reader,
            slot: None,
            action,
        }));
        self
    }

    /// One input guard per reader, in slice order; `action` gets the index of
    /// the reader that committed and the message.
    pub fn read_each<T: Message>(
        mut self,
        readers: &'a [Reader<T, R>],
        action: impl FnOnce(usize, T) -> U + 'a,
    ) -> Self {
        self.arms.push(Box::new(ReadEachArm {
            readers,
            slots: Vec::new(),
            action,
        }));
        self
    }

    /// An output guard offering `value` on `writer`; `action` runs if it is sent.
    pub fn write<T: Message>(
        mut self,
        writer: &'a Writer<T, R>,
        value: T,
        action: impl FnOnce() -> U + 'a,
    ) -> Self {
        self.arms.push(Box::new(WriteArm {
            writer,
            value: Some(value),
            action,
        }));
        self
    }

    /// A guard that is always ready.
    pub fn skip(mut self, action: impl FnOnce() -> U + 'a) -> Self {
        self.arms.push(Box::new(SkipArm(action)));
        self
    }

    /// A guard that becomes ready `after` the select began to wait.
    pub fn timeout(mut self, after: Duration, action: impl FnOnce() -> U + 'a) -> Self {
        self.arms.push(Box::new(TimeoutArm { after, action }));
        self
    }

    /// Waits for one guard, in priority order, and returns its action's result.
    ///
    /// # Errors
    /// `Poisoned`/`Retired` as the [`Alt`] docs say; `Config` when the
    /// alternation has no guards; `Deadlock` on greenlets.
    pub fn select(self) -> Result<U> {
        self.run(None)
    }

    /// Waits for one guard, channel guards least-chosen first (by `fair`'s
    /// record of earlier selects), skip and timeout guards last.
    ///
    /// # Errors
    /// As [`select`](Alt::select).
    pub fn select_fair(self, fair: &mut Fair) -> Result<U> {
        self.run(Some(fair))
    }

    fn run(mut self, fair: Option<&mut Fair>) -> Result<U> {
        let (chosen, owner) = {
            let mut guards: Vec<R::Guard<'_>> = Vec::with_capacity(self.arms.len());
            // For each guard: (arm index, guard index within the arm, is a channel guard).
            let mut owner: Vec<(usize, usize, bool)> = Vec::with_capacity(self.arms.len());
            for (ai, arm) in self.arms.iter_mut().enumerate() {
                let before = guards.len();
                let is_channel = arm.is_channel();
                arm.guards(&mut guards)?;
                for sub in 0..guards.len() - before {
                    owner.push((ai, sub, is_channel));
                }
            }
            if guards.is_empty() {
                return Err(Error::config("an alternation needs at least one guard"));
            }
            let chosen = match fair {
                None => R::select(&mut guards)?,
                Some(fair) => {
                    fair.counts.resize(guards.len(), 0);
                    let counts = &fair.counts;
                    let mut order: Vec<usize> = (0..guards.len()).collect();
                    // Channel guards first, least chosen first, ties by position;
                    // then skip and timeout guards in their given order.
                    order.sort_by_key(|&i| {
                        let (_, _, is_channel) = owner[i];
                        (!is_channel, if is_channel { counts[i] } else { 0 }, i)
                    });
                    let mut taken: Vec<Option<R::Guard<'_>>> =
                        guards.into_iter().map(Some).collect();
                    let mut ordered: Vec<R::Guard<'_>> = order
                        .iter()
                        .filter_map(|&i| taken.get_mut(i).and_then(Option::take))
                        .collect();
                    let pos = R::select(&mut ordered)?;
                    let original = order[pos];
                    fair.counts[original] += 1;
                    original
                }
            };
            (chosen, owner)
        };
        let (ai, sub, _) = owner[chosen];
        let arm = self.arms.swap_remove(ai);
        Ok(arm.fire(sub))
    }
}

impl<U, R: Runtime> Default for Alt<'_, U, R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<U, R: Runtime> fmt::Debug for Alt<'_, U, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Alt({} arms)", self.arms.len())
    }
}

/// The memory of a fair alternation: how often each guard was chosen.
/// Keep one per alternation site and pass it to every
/// [`select_fair`](Alt::select_fair) there.
#[derive(Clone, Debug, Default)]
pub struct Fair {
    counts: Vec<u64>,
}

impl Fair {
    /// No choices made yet.
    pub fn new() -> Self {
        Fair::default()
    }

    /// How often each guard (by position) has been chosen so far.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }
}

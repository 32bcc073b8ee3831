//! Helper threads for `io(|| ...)`: a blocking call runs on one of them while
//! the scheduler keeps running the other processes.
//!
//! The pool starts empty, grows by one thread whenever a job arrives and no
//! thread is idle (blocking calls must not wait for each other: ten `io`
//! sleeps of one second take one second), and a thread that has been idle for
//! a while exits.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    state: Mutex<PoolState>,
    ready: Condvar,
}

struct PoolState {
    jobs: VecDeque<Job>,
    idle: usize,
}

const IDLE_EXIT: Duration = Duration::from_secs(20);

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        state: Mutex::new(PoolState {
            jobs: VecDeque::new(),
            idle: 0,
        }),
        ready: Condvar::new(),
    })
}

/// Runs `job` on a helper thread.
///
/// # Errors
/// The OS refused to start a new helper thread.
pub(crate) fn submit(job: Job) -> std::io::Result<()> {
    let pool = pool();
    let mut st = pool.state.lock().unwrap_or_else(|e| e.into_inner());
    st.jobs.push_back(job);
    // Every queued job needs a thread of its own: an idle one, or a new one.
    if st.idle >= st.jobs.len() {
        pool.ready.notify_one();
        return Ok(());
    }
    drop(st);
    let spawned = std::thread::Builder::new()
        .name("csp-io".into())
        .spawn(worker);
    if let Err(e) = spawned {
        // Take the job back so it does not run later by surprise.
        let mut st = pool.state.lock().unwrap_or_else(|e| e.into_inner());
        st.jobs.pop_back();
        return Err(e);
    }
    Ok(())
}

fn worker() {
    let pool = pool();
    let mut st = pool.state.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if let Some(job) = st.jobs.pop_front() {
            drop(st);
            job();
            st = pool.state.lock().unwrap_or_else(|e| e.into_inner());
            continue;
        }
        st.idle += 1;
        let (guard, timeout) = pool
            .ready
            .wait_timeout(st, IDLE_EXIT)
            .unwrap_or_else(|e| e.into_inner());
        st = guard;
        st.idle -= 1;
        if timeout.timed_out() && st.jobs.is_empty() {
            return;
        }
    }
}

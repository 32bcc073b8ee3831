//! The dining philosophers: five philosophers, five forks, and a security
//! guard who lets at most four of them sit at once, so they never deadlock.
//! Forks and the guard choose with a fair alternation, so every philosopher
//! gets the same number of meals (PyCSP's `Dining-Phil.py`).
//!
//! `cargo run --release --example dining_philosophers -- [meals each]` (default 100)

use csp::runtime::{Alt, Channel, Reader, Writer};
use csp::{Fair, Runtime, process};

const N: usize = 5;

/// Thinks, sits down, picks up both forks, eats, puts them down, stands up.
#[process]
fn philosopher<R: Runtime>(
    id: usize,
    meals: u32,
    sit: Writer<usize, R>,
    stand: Writer<usize, R>,
    left: (Writer<usize, R>, Writer<usize, R>),
    right: (Writer<usize, R>, Writer<usize, R>),
) -> csp::Result<u32> {
    let mut eaten = 0;
    for _ in 0..meals {
        R::sleep(std::time::Duration::from_micros(10))?; // think
        sit.write(id)?;
        left.0.write(id)?; // pick up
        right.0.write(id)?;
        eaten += 1; // eat
        left.1.write(id)?; // put down
        right.1.write(id)?;
        stand.write(id)?;
    }
    sit.retire();
    stand.retire();
    Ok(eaten)
}

/// A fork: picked up by one of its two neighbours (fairly), then put down by
/// the same one. It runs until the table poisons it.
#[process]
fn fork<R: Runtime>(
    pick_up: [Reader<usize, R>; 2],
    put_down: [Reader<usize, R>; 2],
) -> csp::Result<()> {
    let mut fair = Fair::new();
    loop {
        let side = Alt::new()
            .read_each(&pick_up, |side, _id| side)
            .select_fair(&mut fair)?;
        put_down[side].read()?;
    }
}

/// Lets at most N-1 philosophers sit; always lets one stand up.
#[process]
fn security<R: Runtime>(sit: Reader<usize, R>, stand: Reader<usize, R>) -> csp::Result<u64> {
    let mut seated = 0;
    let mut steps = 0;
    loop {
        let r = if seated < N - 1 {
            Alt::new()
                .read(&stand, |_| -1i32)
                .read(&sit, |_| 1)
                .select()
        } else {
            stand.read().map(|_| -1)
        };
        match r {
            Ok(d) => {
                seated = (seated as i32 + d) as usize;
                steps += 1;
            }
            Err(csp::Error::Retired) => return Ok(steps),
            Err(e) => return Err(e),
        }
    }
}

/// Seats five philosophers for `meals` meals each; returns how many each ate
/// and how many sit/stand requests the security guard handled (backend `R`).
pub(crate) fn run<R: Runtime>(meals: u32) -> csp::Result<(Vec<u32>, u64)> {
    let sit = Channel::<usize, R>::named("sit");
    let stand = Channel::named("stand");
    // Fork i lies between philosopher i (its left fork) and philosopher i+1
    // (their right fork). Each fork has a pick-up and a put-down channel per side.
    let pick: Vec<[Channel<usize, R>; 2]> =
        (0..N).map(|_| [Channel::new(), Channel::new()]).collect();
    let put: Vec<[Channel<usize, R>; 2]> =
        (0..N).map(|_| [Channel::new(), Channel::new()]).collect();
    let mut phils = Vec::new();
    for id in 0..N {
        let l = id; // side 0 of fork id
        let r = (id + N - 1) % N; // side 1 of fork id-1
        phils.push(philosopher(
            id,
            meals,
            sit.writer(),
            stand.writer(),
            (pick[l][0].writer(), put[l][0].writer()),
            (pick[r][1].writer(), put[r][1].writer()),
        ));
    }
    let forks: Vec<_> = (0..N)
        .map(|f| {
            fork(
                [pick[f][0].reader(), pick[f][1].reader()],
                [put[f][0].reader(), put[f][1].reader()],
            )
        })
        .collect();
    let table = pick.clone();
    let (eaten, _, steps) = csp::runtime::par_tuple::<R, _>((
        csp::Process::new("philosophers", move || {
            let eaten = R::par(phils);
            // Everyone has eaten: clear the table (the forks end poisoned).
            for side in table.iter().flatten() {
                side.poison();
            }
            eaten
        }),
        csp::Process::new("forks", move || R::par(forks)),
        security(sit.reader(), stand.reader()),
    ))?;
    let eaten = eaten
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.unwrap_or(0))
        .collect();
    Ok((eaten, steps.unwrap_or(0)))
}

fn main() -> csp::Result<()> {
    let meals: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    let (eaten, steps) = run::<csp::Backend>(meals)?;
    for (id, e) in eaten.iter().enumerate() {
        println!("philosopher {id} has eaten {e} times");
    }
    println!("security handled {steps} sit/stand requests");
    assert!(
        eaten.iter().all(|e| *e == meals),
        "every philosopher eats {meals} times"
    );
    Ok(())
}

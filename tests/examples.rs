//! The examples, run with small sizes: each must produce what proves it worked.
//! The networks are generic over the backend; each runs on both.

use csp_greenlets::Greenlets as G;
use csp_parallel::Parallel as P;

#[allow(dead_code)]
#[path = "../examples/hello.rs"]
mod hello;

#[allow(dead_code)]
#[path = "../examples/ring.rs"]
mod ring;

#[allow(dead_code)]
#[path = "../examples/commstime.rs"]
mod commstime;

#[allow(dead_code)]
#[path = "../examples/sieve.rs"]
mod sieve;

#[allow(dead_code)]
#[path = "../examples/dining_philosophers.rs"]
mod dining_philosophers;

#[test]
fn hello_delivers_one_line() {
    assert_eq!(hello::run().unwrap(), 1);
}

macro_rules! on_both {
    ($name:ident, |$R:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[test]
            fn greenlets() {
                type $R = G;
                $body
            }
            #[test]
            fn parallel() {
                type $R = P;
                $body
            }
        }
    };
}

on_both!(
    ring_token_gains_one_per_element_and_poison_ends_the_ring,
    |R| {
        assert_eq!(ring::run::<R>(100).unwrap(), 100);
        assert_eq!(ring::run::<R>(1).unwrap(), 1);
    }
);

on_both!(commstime_counts_up_and_shuts_down, |R| {
    // The consumer checks every value; an error would surface here.
    commstime::run::<R>(10_000).unwrap();
});

on_both!(sieve_finds_exactly_the_primes, |R| {
    assert_eq!(sieve::run::<R>(2000).unwrap(), sieve::primes_below(2000));
    assert_eq!(sieve::run::<R>(3).unwrap(), vec![2]);
});

on_both!(dining_philosophers_all_eat_equally, |R| {
    let (eaten, steps) = dining_philosophers::run::<R>(20).unwrap();
    assert_eq!(eaten, vec![20; 5]);
    // Every meal is one sit and one stand.
    assert_eq!(steps, 5 * 20 * 2);
});

//! The examples, run with small sizes: each must produce what proves it worked.

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

#[test]
fn ring_token_gains_one_per_element_and_poison_ends_the_ring() {
    assert_eq!(ring::run(100).unwrap(), 100);
    assert_eq!(ring::run(1).unwrap(), 1);
}

#[test]
fn commstime_counts_up_and_shuts_down() {
    // The consumer checks every value; an error would surface here.
    commstime::run(10_000).unwrap();
}

#[test]
fn sieve_finds_exactly_the_primes() {
    assert_eq!(sieve::run(2000).unwrap(), sieve::primes_below(2000));
    assert_eq!(sieve::run(3).unwrap(), vec![2]);
}

#[test]
fn dining_philosophers_all_eat_equally() {
    let (eaten, steps) = dining_philosophers::run(20).unwrap();
    assert_eq!(eaten, vec![20; 5]);
    // Every meal is one sit and one stand.
    assert_eq!(steps, 5 * 20 * 2);
}

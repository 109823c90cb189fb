//! Seeded mutation fuzzing on stable Rust, sized for CI (about a second per
//! target on two cores). Each case mutates a valid seed input (truncation,
//! bit flips, length-field edits with extreme values, random overwrites,
//! inserted/deleted chunks, or random bytes after the seed's first bytes),
//! runs the reader under `catch_unwind`, and checks: no panic, an error
//! that names the input (the reader's check), and no single allocation
//! above the target's stated limit (a counting global allocator records
//! each thread's largest request). The slowest case is measured and
//! printed, not asserted. The targets are in `fuzz_targets.rs`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `System` plus a per-thread record of the largest single request.
struct Counting;

thread_local! {
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn note(n: usize) {
    let _ = PEAK.try_with(|p| {
        if n > p.get() {
            p.set(n)
        }
    });
}

// SAFETY: every call is forwarded unchanged to `System`; `note` only
// touches a const-initialised thread-local `Cell` (no allocation).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note(l.size());
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note(l.size());
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        note(new);
        unsafe { System.realloc(p, l, new) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// A valid input and the offsets of its length/size fields (may be empty).
pub struct Seed {
    pub bytes: Vec<u8>,
    pub fields: Vec<usize>,
    /// Leading bytes kept by the random-bytes mutation (a magic number).
    pub keep: usize,
}

const EXTREMES: [u64; 9] = [
    0,
    1,
    0x7f,
    0xff,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    0x7fff_ffff_ffff_ffff,
    u64::MAX,
];

fn one_mutation(rng: &mut ChaCha8Rng, s: &Seed, b: &mut Vec<u8>) {
    let len = b.len();
    match rng.random_range(0..7) {
        0 => b.truncate(rng.random_range(0..=len)),
        1 => {
            for _ in 0..rng.random_range(1..=8) {
                if !b.is_empty() {
                    let i = rng.random_range(0..b.len());
                    b[i] ^= 1 << rng.random_range(0..8);
                }
            }
        }
        2 | 3 => {
            // A length field set to an extreme or random value.
            let at = if !s.fields.is_empty() && rng.random_bool(0.7) {
                s.fields[rng.random_range(0..s.fields.len())]
            } else {
                rng.random_range(0..len.max(1))
            };
            let v = if rng.random_bool(0.6) {
                EXTREMES[rng.random_range(0..EXTREMES.len())]
            } else {
                rng.random::<u64>() >> rng.random_range(0..64)
            };
            let width = [1usize, 2, 4, 8][rng.random_range(0..4)];
            let bytes = if rng.random_bool(0.5) {
                v.to_le_bytes()
            } else {
                v.to_be_bytes()
            };
            let bytes = if bytes[0] == 0 && width < 8 {
                &bytes[8 - width..]
            } else {
                &bytes[..width]
            };
            for (j, &x) in bytes.iter().enumerate() {
                if let Some(slot) = b.get_mut(at + j) {
                    *slot = x;
                }
            }
        }
        4 => {
            if len > 0 {
                let i = rng.random_range(0..len);
                let n = rng.random_range(1..=16.min(len - i));
                rng.fill_bytes(&mut b[i..i + n]);
            }
        }
        5 => {
            let i = rng.random_range(0..=len);
            if rng.random_bool(0.5) {
                let n = rng.random_range(1..=64);
                let mut chunk = vec![0u8; n];
                rng.fill_bytes(&mut chunk);
                b.splice(i..i, chunk);
            } else {
                let n = rng.random_range(0..=64.min(len - i));
                b.drain(i..i + n);
            }
        }
        _ => {
            let keep = s.keep.min(len);
            let n = rng.random_range(0..=2 * len.max(8));
            b.truncate(keep);
            let mut tail = vec![0u8; n];
            rng.fill_bytes(&mut tail);
            b.extend_from_slice(&tail);
        }
    }
}

/// One to three mutations of a seed.
pub fn mutate(rng: &mut ChaCha8Rng, s: &Seed) -> Vec<u8> {
    let mut b = s.bytes.clone();
    for _ in 0..rng.random_range(1..=3) {
        one_mutation(rng, s, &mut b);
    }
    b
}

/// What a campaign saw.
#[derive(Debug)]
pub struct Stats {
    pub cases: usize,
    pub accepted: usize,
    pub refused: usize,
    pub slowest: Duration,
    pub largest_alloc: usize,
}

/// Runs `cases` mutated inputs (seeded by `name` and the case number, so
/// any failure replays) through `run`, which returns `Ok(true)` when the
/// input was accepted, `Ok(false)` when it was refused with an error that
/// names the input, and `Err(why)` for a wrong answer. `limit(len)` is the
/// largest single allocation allowed for an input of `len` bytes.
pub fn campaign(
    name: &str,
    seeds: &[Seed],
    cases: usize,
    limit: impl Fn(usize) -> usize,
    run: impl Fn(usize, &[u8]) -> Result<bool, String>,
) -> Stats {
    let tag = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let mut stats = Stats {
        cases,
        accepted: 0,
        refused: 0,
        slowest: Duration::ZERO,
        largest_alloc: 0,
    };
    let mut failures = Vec::new();
    for i in 0..cases {
        let mut rng = ChaCha8Rng::seed_from_u64(tag ^ i as u64);
        let seed = &seeds[i % seeds.len()];
        let input = mutate(&mut rng, seed);
        PEAK.with(|p| p.set(0));
        let t0 = Instant::now();
        let r = catch_unwind(AssertUnwindSafe(|| run(i, &input)));
        let took = t0.elapsed();
        let peak = PEAK.with(Cell::get);
        stats.slowest = stats.slowest.max(took);
        stats.largest_alloc = stats.largest_alloc.max(peak);
        let mut fail = |why: String| {
            failures.push(format!(
                "{name} case {i} (seed {}, {} bytes, first {:02x?}): {why}",
                i % seeds.len(),
                input.len(),
                &input[..input.len().min(16)]
            ))
        };
        match r {
            Ok(Ok(true)) => stats.accepted += 1,
            Ok(Ok(false)) => stats.refused += 1,
            Ok(Err(why)) => fail(why),
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                fail(format!("panicked: {msg}"))
            }
        }
        if peak > limit(input.len()) {
            fail(format!(
                "allocated {peak} bytes at once, over the limit of {}",
                limit(input.len())
            ));
        }
    }
    println!(
        "fuzz {name}: {} cases, {} accepted, {} refused, slowest {:.2} ms, largest allocation {} bytes",
        stats.cases,
        stats.accepted,
        stats.refused,
        stats.slowest.as_secs_f64() * 1e3,
        stats.largest_alloc
    );
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(stats.accepted + stats.refused, cases);
    stats
}

/// An error message names `what` (a path or origin), else `Err`.
pub fn names(msg: String, what: &str) -> Result<bool, String> {
    if msg.contains(what) {
        Ok(false)
    } else {
        Err(format!("error does not name `{what}`: {msg}"))
    }
}

/// The largest single allocation `f` made on this thread, and its result.
pub fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    PEAK.with(|p| p.set(0));
    let r = f();
    (r, PEAK.with(Cell::get))
}

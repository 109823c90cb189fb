//! Stage 2 (features), native Lite engine: the parallel plumbing. The thread
//! count (physical cores by default, `OVR_THREADS` to override), the
//! [`Workers`] that stay parked between batches (starting threads per call
//! cost about 80 us per image at batch 1 on a 2-core VM), a spinning
//! barrier for the batch-1 mode where all workers share one image's layers,
//! and [`Shared`], one activation buffer that several workers write in
//! disjoint ranges between two barriers.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Physical cores this process may use: distinct (package, core) pairs of
/// the first `available_parallelism` CPUs in sysfs, or that count itself
/// where sysfs says nothing.
pub fn physical_cores() -> usize {
    let logical = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut seen = std::collections::HashSet::new();
    for cpu in 0..logical {
        let dir = format!("/sys/devices/system/cpu/cpu{cpu}/topology");
        let read = |f: &str| std::fs::read_to_string(format!("{dir}/{f}")).ok();
        match (read("physical_package_id"), read("core_id")) {
            (Some(p), Some(c)) => {
                seen.insert((p.trim().to_string(), c.trim().to_string()));
            }
            _ => return logical,
        }
    }
    seen.len().clamp(1, logical)
}

/// Worker threads for the engine: `OVR_THREADS` when set to a positive
/// number, else the physical cores.
pub fn default_threads() -> usize {
    std::env::var("OVR_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(physical_cores)
}

/// The engine's helper threads: `n - 1` parked rayon threads, the caller
/// being worker 0. Where the pool cannot be built (no threads left), each
/// call starts scoped threads instead.
pub struct Workers {
    n: usize,
    pool: Option<rayon::ThreadPool>,
}

impl Workers {
    pub fn new(n: usize) -> Workers {
        Workers::build(n, true)
    }

    /// `pooled == false`: no pool, threads started per call (the fallback).
    fn build(n: usize, pooled: bool) -> Workers {
        let n = n.max(1);
        let pool = (n > 1 && pooled)
            .then(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n - 1)
                    .thread_name(|i| format!("ovr-lite-{}", i + 1))
                    .build()
                    .ok()
            })
            .flatten();
        Workers { n, pool }
    }

    pub fn count(&self) -> usize {
        self.n
    }

    /// `work(t)` for every worker `t` in `0..n` at once (worker 0 on the
    /// calling thread), returning when all are done.
    pub fn run(&self, work: &(dyn Fn(usize) + Sync)) {
        match &self.pool {
            _ if self.n == 1 => work(0),
            Some(pool) => pool.in_place_scope(|s| {
                s.spawn_broadcast(|_, ctx| work(ctx.index() + 1));
                work(0);
            }),
            None => std::thread::scope(|s| {
                for t in 1..self.n {
                    s.spawn(move || work(t));
                }
                work(0);
            }),
        }
    }
}

/// A reusable barrier that spins briefly, then yields (layers take tens of
/// microseconds; a futex sleep would cost as much).
pub struct SpinBarrier {
    n: usize,
    count: AtomicUsize,
    generation: AtomicUsize,
}

impl SpinBarrier {
    pub fn new(n: usize) -> SpinBarrier {
        SpinBarrier {
            n,
            count: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
        }
    }

    pub fn wait(&self) {
        let gen = self.generation.load(Ordering::Acquire);
        if self.count.fetch_add(1, Ordering::AcqRel) + 1 == self.n {
            self.count.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::AcqRel);
            return;
        }
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == gen {
            if spins < 2_000 {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

/// A buffer several workers use at once: all read it whole, or each writes
/// its own disjoint range, never both between the same two barriers.
pub struct Shared<'a> {
    ptr: *mut f32,
    len: usize,
    _buf: std::marker::PhantomData<&'a mut [f32]>,
}

// SAFETY: `Shared` is only a pointer to a buffer that outlives the scoped
// workers; the access discipline (documented on the methods) prevents data
// races, and the barrier orders the phases.
unsafe impl Send for Shared<'_> {}
unsafe impl Sync for Shared<'_> {}

impl<'a> Shared<'a> {
    pub fn new(buf: &'a mut [f32]) -> Shared<'a> {
        Shared {
            ptr: buf.as_mut_ptr(),
            len: buf.len(),
            _buf: std::marker::PhantomData,
        }
    }

    /// The whole buffer, read-only.
    ///
    /// # Safety
    /// No worker may write the buffer until the next barrier.
    pub unsafe fn all(&self) -> &[f32] {
        std::slice::from_raw_parts(self.ptr, self.len)
    }

    /// `range`, writable.
    ///
    /// # Safety
    /// Until the next barrier no other worker may touch `range` and nobody
    /// may read the buffer whole.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn part(&self, range: std::ops::Range<usize>) -> &mut [f32] {
        assert!(
            range.start <= range.end && range.end <= self.len,
            "shared range"
        );
        std::slice::from_raw_parts_mut(self.ptr.add(range.start), range.len())
    }
}

/// The `t`-th of `n` near-equal parts of `0..len`, each a multiple of `unit`
/// (but the last).
pub fn split(len: usize, n: usize, t: usize, unit: usize) -> std::ops::Range<usize> {
    let units = len.div_ceil(unit);
    let lo = (units * t / n * unit).min(len);
    let hi = (units * (t + 1) / n * unit).min(len);
    lo..hi
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_and_scoped_workers_run_every_index_once_concurrently() {
        for pooled in [true, false] {
            for n in [1, 2, 3] {
                let w = Workers::build(n, pooled);
                assert_eq!(w.pool.is_some(), pooled && n > 1);
                let seen: Vec<AtomicUsize> = (0..n).map(|_| AtomicUsize::new(0)).collect();
                // The barrier only releases when all n run at once.
                let barrier = SpinBarrier::new(n);
                for _ in 0..3 {
                    w.run(&|t| {
                        barrier.wait();
                        seen[t].fetch_add(1, Ordering::Relaxed);
                    });
                }
                let counts: Vec<usize> = seen.iter().map(|c| c.load(Ordering::Relaxed)).collect();
                assert_eq!(counts, vec![3; n], "pooled {pooled}, n {n}");
            }
        }
    }
}

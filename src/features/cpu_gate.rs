//! Stage 2 (features): one pool of core tokens shared by the decoder threads
//! and the network, so decoding and inference never oversubscribe the cores.
//!
//! Rule: there are as many tokens as cores. A decoder holds one token while
//! it reads, hashes, decodes and resizes one image; the network holds
//! `min(network threads, cores)` tokens for each batch (the size of the
//! rayon pool its CPU ops run on, or one on a GPU, where the CPU only
//! launches kernels). A waiting network has priority: decoders take no new
//! token until it has its share, so a batch waits at most for the images
//! already being decoded. Decode threads therefore default to (and are
//! capped at) the number of cores: when the network is idle every core
//! decodes, when it runs the decoders step aside, and the running threads
//! never exceed the cores. With at most `cores` images decoded at once,
//! decode memory is bounded by `cores` x the per-image pixel budget.

use std::sync::{Condvar, Mutex, MutexGuard};

#[derive(Debug)]
struct State {
    free: usize,
    network_waiting: bool,
}

/// Counting semaphore of core tokens with priority for the network.
#[derive(Debug)]
pub struct CpuGate {
    cores: usize,
    state: Mutex<State>,
    changed: Condvar,
}

/// Tokens held; returned when dropped.
pub struct Tokens<'a> {
    gate: &'a CpuGate,
    n: usize,
}

impl Drop for Tokens<'_> {
    fn drop(&mut self) {
        let mut s = self.gate.lock();
        s.free += self.n;
        drop(s);
        self.gate.changed.notify_all();
    }
}

impl CpuGate {
    pub fn new(cores: usize) -> Self {
        let cores = cores.max(1);
        CpuGate {
            cores,
            state: Mutex::new(State {
                free: cores,
                network_waiting: false,
            }),
            changed: Condvar::new(),
        }
    }

    /// Cores of this machine (`available_parallelism`, at least 1).
    pub fn machine_cores() -> usize {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    }

    pub fn cores(&self) -> usize {
        self.cores
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking holder cannot leave the counts inconsistent (they are
        // only changed under the lock, in one statement).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One token for a decoder; waits while the network is waiting.
    pub fn decoder(&self) -> Tokens<'_> {
        let mut s = self.lock();
        while s.free == 0 || s.network_waiting {
            s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.free -= 1;
        Tokens { gate: self, n: 1 }
    }

    /// `threads` tokens (at most all of them) for one network batch.
    pub fn network(&self, threads: usize) -> Tokens<'_> {
        let n = threads.clamp(1, self.cores);
        let mut s = self.lock();
        s.network_waiting = true;
        while s.free < n {
            s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.free -= n;
        s.network_waiting = false;
        drop(s);
        self.changed.notify_all();
        Tokens { gate: self, n }
    }

    /// Tokens free now (tests).
    pub fn free(&self) -> usize {
        self.lock().free
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn running_threads_never_exceed_the_cores() {
        let gate = CpuGate::new(3);
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let work = |n: usize| {
            let now = running.fetch_add(n, Ordering::SeqCst) + n;
            peak.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(2));
            running.fetch_sub(n, Ordering::SeqCst);
        };
        std::thread::scope(|s| {
            for _ in 0..6 {
                s.spawn(|| {
                    for _ in 0..20 {
                        let _t = gate.decoder();
                        work(1);
                    }
                });
            }
            s.spawn(|| {
                for _ in 0..10 {
                    let _t = gate.network(8);
                    work(3);
                }
            });
        });
        assert!(peak.load(Ordering::SeqCst) <= 3);
        assert_eq!(gate.free(), 3, "every token came back");
    }

    #[test]
    fn network_share_is_clamped_to_the_cores() {
        let gate = CpuGate::new(2);
        {
            let _n = gate.network(16);
            assert_eq!(gate.free(), 0);
        }
        let _n = gate.network(0);
        assert_eq!(gate.free(), 1, "at least one token");
    }
}

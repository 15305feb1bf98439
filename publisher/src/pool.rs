//! A small work queue shared by the CPU-heavy parts of a publish: compressing file
//! copies while modules are packaged, then building patches, on the same few threads.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};

/// A job: runs once on one of the workers.
type Job<'env> = Box<dyn FnOnce() + Send + 'env>;

/// A FIFO of jobs drained by the threads that call [`WorkQueue::work`].
///
/// Each job has a weight (the bytes it holds in memory); [`WorkQueue::submit`] waits
/// while the jobs queued or running weigh more than the budget, so a fast producer
/// (packaging reads files faster than zstd -19 compresses them) cannot hold a whole
/// release in memory. A job heavier than the budget still runs, alone.
pub(crate) struct WorkQueue<'env> {
    state: Mutex<State<'env>>,
    changed: Condvar,
    budget: u64,
}

struct State<'env> {
    jobs: VecDeque<(u64, Job<'env>)>,
    /// Weight of the jobs queued or running.
    weight: u64,
    closed: bool,
}

impl<'env> WorkQueue<'env> {
    /// An empty, open queue whose jobs may hold `budget` bytes at once.
    pub(crate) fn new(budget: u64) -> Self {
        Self {
            state: Mutex::new(State {
                jobs: VecDeque::new(),
                weight: 0,
                closed: false,
            }),
            changed: Condvar::new(),
            budget,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<'env>> {
        // A job that panics does so outside the lock; a poisoned lock still holds a
        // consistent queue.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `job`, first waiting while the queue is over its budget.
    pub(crate) fn submit(&self, weight: u64, job: impl FnOnce() + Send + 'env) {
        let mut state = self.lock();
        while state.weight > 0 && state.weight.saturating_add(weight) > self.budget {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        state.weight += weight;
        state.jobs.push_back((weight, Box::new(job)));
        drop(state);
        self.changed.notify_all();
    }

    /// No more jobs will be submitted: workers return once the queue is empty.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// Drops the jobs not started yet and closes the queue: nothing will use their
    /// results (packaging failed).
    pub(crate) fn abandon(&self) {
        let mut state = self.lock();
        let dropped: u64 = state.jobs.drain(..).map(|(weight, _)| weight).sum();
        state.weight -= dropped;
        state.closed = true;
        drop(state);
        self.changed.notify_all();
    }

    /// Runs jobs until the queue is closed and empty. Call it from each worker thread.
    ///
    /// A job that panics does not stop the worker, so the queue still drains (a
    /// producer waiting for room never waits forever); the panic is raised again once
    /// the queue is empty.
    pub(crate) fn work(&self) {
        let mut panicked = None;
        loop {
            let mut state = self.lock();
            let (weight, job) = loop {
                if let Some(next) = state.jobs.pop_front() {
                    break next;
                }
                if state.closed {
                    drop(state);
                    if let Some(panic) = panicked {
                        std::panic::resume_unwind(panic);
                    }
                    return;
                }
                state = self
                    .changed
                    .wait(state)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            };
            drop(state);
            if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)) {
                panicked.get_or_insert(panic);
            }
            self.lock().weight -= weight;
            self.changed.notify_all();
        }
    }
}

/// How many workers to run: one per core the process may use.
pub(crate) fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn every_job_runs_once_within_the_budget() {
        let done = AtomicU64::new(0);
        let peak = AtomicU64::new(0);
        let running = AtomicU64::new(0);
        let queue = WorkQueue::new(10);
        std::thread::scope(|scope| {
            for _ in 0..3 {
                scope.spawn(|| queue.work());
            }
            for i in 0..50u64 {
                let (done, peak, running) = (&done, &peak, &running);
                queue.submit(4, move || {
                    let now = running.fetch_add(4, Ordering::SeqCst) + 4;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::yield_now();
                    running.fetch_sub(4, Ordering::SeqCst);
                    done.fetch_add(i, Ordering::SeqCst);
                });
            }
            // Heavier than the budget: runs anyway.
            queue.submit(100, || {
                done.fetch_add(1000, Ordering::SeqCst);
            });
            queue.close();
        });
        assert_eq!(done.load(Ordering::SeqCst), (0..50).sum::<u64>() + 1000);
        assert!(
            peak.load(Ordering::SeqCst) <= 8,
            "two 4-byte jobs fit in 10 bytes"
        );
    }
}

//! The lease an execution holds on its pipeline id while it runs: taken before anything is read or
//! changed, renewed in the background, checked (renewed at once) before every mutating step, given
//! up at the end.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::store::{Holder, Lease, Store};

use super::{Inner, Pending};

pub(crate) struct LeaseGuard {
    store: Arc<dyn Store>,
    pending: Pending,
    lease: Arc<Mutex<Lease>>,
    ttl: Duration,
    lost: Arc<AtomicBool>,
    renewer: tokio::task::JoinHandle<()>,
    released: bool,
}

impl LeaseGuard {
    /// Takes the lease on the pipeline for `task`, waiting for it as configured.
    pub(crate) async fn acquire(inner: &Inner, task: &str) -> Result<Self> {
        // What a dropped execution of this pipeline left to do (save its record, give its lease up)
        // is done first.
        let left: Vec<_> =
            std::mem::take(&mut *inner.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        for task in left {
            let _ = task.await;
        }
        let cfg = &inner.cfg;
        let holder = Holder::this_process(task);
        let started = jiff::Timestamp::now();
        let mut store_errors = 0;
        let lease = loop {
            match cfg.store.acquire(&cfg.name, &holder, cfg.lease_ttl).await {
                Ok(lease) => break lease,
                Err(Error::LeaseHeld { holder, expires_at }) => {
                    // Waiting for another process is measured on the wall clock, like its lease.
                    let waited = jiff::Timestamp::now().duration_since(started).unsigned_abs();
                    match cfg.lease_wait {
                        Some(wait) if waited < wait => {
                            // On the wall clock too: the other holder's lease ends in real time,
                            // and a paused (simulated) clock must not make this a busy loop.
                            let pause = Duration::from_millis(200).min(wait - waited);
                            let slept = tokio::task::spawn_blocking(move || std::thread::sleep(pause)).await;
                            if slept.is_err() {
                                tokio::time::sleep(pause).await;
                            }
                        }
                        _ => return Err(Error::LeaseHeld { holder, expires_at }),
                    }
                }
                // A busy or unreachable store is tried again a few times, then reported.
                Err(e) if e.is_retryable() && store_errors < 10 => {
                    store_errors += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e),
            }
        };
        let lease = Arc::new(Mutex::new(lease));
        let lost = Arc::new(AtomicBool::new(false));
        let renewer = tokio::spawn(renew_in_background(
            Arc::clone(&cfg.store),
            Arc::clone(&lease),
            cfg.lease_ttl,
            Arc::clone(&lost),
        ));
        Ok(LeaseGuard {
            store: Arc::clone(&cfg.store),
            pending: Arc::clone(&inner.pending),
            lease,
            ttl: cfg.lease_ttl,
            lost,
            renewer,
            released: false,
        })
    }

    fn current(&self) -> Lease {
        self.lease.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Proves the lease is still this process's, right before a mutating call: renews it now.
    ///
    /// # Errors
    /// [`Error::LeaseLost`] when it expired or was taken: make no further mutating call.
    pub(crate) async fn check(&self) -> Result<()> {
        let lease = self.current();
        if self.lost.load(Ordering::SeqCst) {
            return Err(crate::store::lost(&lease));
        }
        let mut last = Err(crate::store::lost(&lease));
        for _ in 0..3 {
            match self.store.renew(&lease, self.ttl).await {
                Ok(renewed) => {
                    *self.lease.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = renewed;
                    return Ok(());
                }
                Err(e @ Error::LeaseLost { .. }) => {
                    self.lost.store(true, Ordering::SeqCst);
                    return Err(e);
                }
                Err(e) => last = Err(e),
            }
        }
        last
    }

    /// Gives the lease up.
    pub(crate) async fn release(mut self) {
        self.renewer.abort();
        self.released = true;
        let lease = self.current();
        if let Err(e) = self.store.release(&lease).await {
            tracing::warn!(error = %e, "could not release the pipeline's lease; it expires by itself");
        }
    }
}

impl Drop for LeaseGuard {
    /// A guard dropped with its future (a cancelled run) gives the lease up on a task, when there is
    /// a runtime to run it; otherwise the lease expires by itself.
    fn drop(&mut self) {
        self.renewer.abort();
        if self.released {
            return;
        }
        let (store, lease) = (Arc::clone(&self.store), self.current());
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let task = handle.spawn(async move {
                let _ = store.release(&lease).await;
            });
            self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(task);
        }
    }
}

async fn renew_in_background(store: Arc<dyn Store>, lease: Arc<Mutex<Lease>>, ttl: Duration, lost: Arc<AtomicBool>) {
    loop {
        tokio::time::sleep(ttl / 3).await;
        let current = lease.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        match store.renew(&current, ttl).await {
            Ok(renewed) => *lease.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = renewed,
            Err(Error::LeaseLost { .. }) => {
                lost.store(true, Ordering::SeqCst);
                return;
            }
            Err(e) => tracing::warn!(error = %e, "could not renew the pipeline's lease; trying again"),
        }
    }
}

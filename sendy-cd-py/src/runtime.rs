//! Where the Rust work runs, and how Python waits for it.
//!
//! AWS work runs on one shared multi-threaded tokio runtime. A simulated account has a runtime of its
//! own, on one thread, whose clock is paused: simulated time jumps ahead whenever everything waits,
//! as in the Rust examples, and never while a backend written in Python is running.
//!
//! A blocking call hands its future to the runtime and waits with the GIL released, checking for
//! signals every 100 ms: Ctrl-C cancels the work (a pipeline execution is then undone as on any
//! cancellation) and raises `KeyboardInterrupt` once it has stopped; a second Ctrl-C raises at once.
//! The `_async` twin returns an asyncio awaitable; cancelling it cancels the work the same way.

use std::future::Future;
use std::sync::{Arc, OnceLock, mpsc};
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyAny;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

use crate::errors::SendyError;

/// A runtime handle, and whether its clock is simulated.
#[derive(Clone, Debug)]
pub(crate) struct Rt {
    pub(crate) handle: Handle,
    simulated: Option<Arc<SimThread>>,
}

/// Stops a simulated runtime's thread when the last handle goes.
#[derive(Debug)]
struct SimThread {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for SimThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl PartialEq for Rt {
    fn eq(&self, other: &Rt) -> bool {
        match (&self.simulated, &other.simulated) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl Rt {
    /// The shared runtime on the real clock.
    pub(crate) fn real() -> Rt {
        static REAL: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
        let rt = REAL.get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("sendy-cd")
                .enable_all()
                .build()
                .expect("a tokio runtime")
        });
        Rt { handle: rt.handle().clone(), simulated: None }
    }

    /// A new runtime on its own thread with a paused (simulated) clock.
    pub(crate) fn simulated() -> PyResult<Rt> {
        let (tx, rx) = mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("sendy-cd-sim".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .start_paused(true)
                    .build()
                    .expect("a tokio runtime");
                let _ = tx.send(rt.handle().clone());
                let _ = rt.block_on(stopped);
            })
            .map_err(|e| SendyError::new_err(format!("cannot start the simulation thread: {e}")))?;
        let handle = rx.recv().map_err(|_| SendyError::new_err("the simulation thread did not start"))?;
        Ok(Rt { handle, simulated: Some(Arc::new(SimThread { stop: Some(stop) })) })
    }

    pub(crate) fn is_simulated(&self) -> bool {
        self.simulated.is_some()
    }

    /// Runs `fut` on this runtime and waits for it with the GIL released. On Ctrl-C, cancels `cancel`
    /// (if given) and raises once the work stopped; without a token, raises at once.
    pub(crate) fn block_on<T: Send + 'static>(
        &self,
        py: Python<'_>,
        cancel: Option<CancellationToken>,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> PyResult<T> {
        let (tx, rx) = mpsc::channel();
        self.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        let rx = std::sync::Mutex::new(rx); // detach needs a Sync receiver
        let mut interrupted: Option<PyErr> = None;
        loop {
            let received = py.detach(|| match rx.lock() {
                Ok(rx) => rx.recv_timeout(Duration::from_millis(100)),
                Err(_) => Err(mpsc::RecvTimeoutError::Disconnected),
            });
            match received {
                Ok(value) => return interrupted.map_or(Ok(value), Err),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Err(e) = py.check_signals() {
                        match (&cancel, interrupted.is_some()) {
                            (Some(token), false) => {
                                token.cancel();
                                interrupted = Some(e);
                            }
                            _ => return Err(e),
                        }
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(interrupted.unwrap_or_else(|| SendyError::new_err("the runtime stopped")));
                }
            }
        }
    }

    /// Runs `fut` on this runtime and returns an asyncio awaitable of its result (it needs a running
    /// event loop). Cancelling the awaitable cancels `cancel`; the event loop that awaits is the one
    /// Python backends' coroutines run on.
    pub(crate) fn awaitable<'py, T>(
        &self,
        py: Python<'py>,
        cancel: Option<CancellationToken>,
        fut: impl Future<Output = PyResult<T>> + Send + 'static,
    ) -> PyResult<Bound<'py, PyAny>>
    where
        T: for<'a> IntoPyObject<'a> + Send + 'static,
    {
        let event_loop = pyo3_async_runtimes::get_running_loop(py)?.unbind();
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.handle.spawn(EVENT_LOOP.scope(Some(Arc::new(event_loop)), async move {
            let _ = tx.send(fut.await);
        }));
        let guard = cancel.map(CancellationToken::drop_guard);
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let out = rx.await.map_err(|_| SendyError::new_err("the runtime stopped"));
            if let Some(guard) = guard {
                guard.disarm();
            }
            out?
        })
    }
}

tokio::task_local! {
    /// The asyncio event loop of the `_async` call being served, on which Python backends' coroutines run.
    pub(crate) static EVENT_LOOP: Option<Arc<Py<PyAny>>>;
}

/// The event loop of the `_async` call this task serves, if any.
pub(crate) fn current_loop() -> Option<Arc<Py<PyAny>>> {
    EVENT_LOOP.try_with(Clone::clone).ok().flatten()
}

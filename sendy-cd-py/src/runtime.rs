//! Where the Rust work runs, and how Python waits for it.
//!
//! AWS work runs on one shared multi-threaded tokio runtime. Simulated accounts share one
//! current-thread runtime with a paused clock, driven by whichever thread waits on it (one at a time):
//! simulated time jumps ahead whenever everything waits (as in the Rust examples), and never while a
//! backend written in Python runs. Accounts measure their own time from their creation.
//!
//! A blocking call drives its future on the calling thread with the GIL released (no hand-off to
//! another thread), and checks for signals every 100 ms of real time: Ctrl-C cancels the work (a
//! pipeline execution is then undone as on any cancellation) and raises `KeyboardInterrupt` once it
//! has stopped; a second Ctrl-C raises at once. An `_async` twin returns an asyncio awaitable whose
//! work runs in the background (on the shared runtime, or on a helper thread driving the simulated
//! one); cancelling the awaitable cancels the work the same way. No engine thread enters the
//! interpreter to hand an awaitable its result (see [`Rt::awaitable`]).

use std::future::Future;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use atomic_waker::AtomicWaker;

use pyo3::IntoPyObjectExt;
use pyo3::exceptions::PyKeyboardInterrupt;
use pyo3::prelude::*;
use pyo3::types::PyAny;
use tokio::runtime::{Handle, Runtime};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use crate::errors::SendyError;

/// A runtime, and whether its clock is simulated.
#[derive(Clone, Debug)]
pub(crate) struct Rt {
    pub(crate) handle: Handle,
    /// The simulated accounts' runtime (current-thread, paused clock): driven by whoever waits on it.
    simulated: Option<&'static Runtime>,
}

/// A blocking call's wake-up every 100 ms of real time, to check for signals. It is polled on every
/// step of the work it guards, so polling costs a pointer comparison and an atomic load.
#[derive(Debug, Default)]
struct Interrupt {
    due: AtomicBool,
    waker: AtomicWaker,
}

impl Interrupt {
    /// A new wake-up, registered with the one thread that ticks them all.
    fn register() -> Arc<Interrupt> {
        static TICKED: OnceLock<Mutex<Vec<Weak<Interrupt>>>> = OnceLock::new();
        let ticked = TICKED.get_or_init(|| {
            let _ = std::thread::Builder::new().name("sendy-cd-signals".into()).spawn(|| {
                loop {
                    std::thread::sleep(Duration::from_millis(100));
                    let Some(ticked) = TICKED.get() else { continue };
                    let mut all = ticked.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    all.retain(|w| match w.upgrade() {
                        Some(i) => {
                            i.due.store(true, Ordering::Release);
                            i.waker.wake();
                            true
                        }
                        None => false,
                    });
                }
            });
            Mutex::new(Vec::new())
        });
        let interrupt = Arc::new(Interrupt::default());
        ticked.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(Arc::downgrade(&interrupt));
        interrupt
    }

    /// Whether the tick came. The waker is registered on every poll: a wake takes the registered
    /// waker, so skipping the registration when the waker had not changed left later ticks with
    /// nobody to wake (hidden while the blocking call's own future was the work, polled at every
    /// step; fatal to Ctrl-C once the work became a task of its own).
    fn poll_due(&self, cx: &mut Context<'_>) -> bool {
        self.waker.register(cx.waker());
        self.due.load(Ordering::Acquire) && self.due.swap(false, Ordering::AcqRel)
    }
}

impl Rt {
    /// The shared runtime on the real clock.
    pub(crate) fn real() -> Rt {
        static REAL: OnceLock<Runtime> = OnceLock::new();
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

    /// The runtime of simulated accounts, on a paused (simulated) clock.
    pub(crate) fn simulated() -> PyResult<Rt> {
        static SIMULATED: OnceLock<Runtime> = OnceLock::new();
        if SIMULATED.get().is_none() {
            // Time only: simulated backends do no I/O, and the I/O driver's poll on every simulated
            // timer step would double the cost of a run.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .map_err(|e| SendyError::new_err(format!("cannot start the simulated runtime: {e}")))?;
            let _ = SIMULATED.set(rt);
        }
        let rt = SIMULATED.get().expect("set above");
        Ok(Rt { handle: rt.handle().clone(), simulated: Some(rt) })
    }

    pub(crate) fn is_simulated(&self) -> bool {
        self.simulated.is_some()
    }

    /// Drives `fut` to completion on this thread (any number of threads may; one at a time drives a
    /// simulated runtime's timers and tasks, the others wait for their own future).
    fn drive<T>(&self, fut: impl Future<Output = T>) -> T {
        match self.simulated {
            Some(rt) => rt.block_on(fut),
            None => self.handle.block_on(fut),
        }
    }

    /// Runs `fut` on this thread with the GIL released. On Ctrl-C, cancels `cancel` (if given) and
    /// raises once the work stopped; without a token, raises at once (dropping the work).
    pub(crate) fn block_on<T: Send + 'static>(
        &self,
        py: Python<'_>,
        cancel: Option<CancellationToken>,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> PyResult<T> {
        enum Step<T> {
            Done(T),
            Drained,
            Tick,
        }
        py.detach(|| {
            self.drive(async move {
                let interrupt = Interrupt::register();
                let calls = Arc::new(PyCalls::default());
                let work = PY_CALLS.scope(calls.clone(), fut);
                let mut fut = std::pin::pin!(self.as_task(work));
                let mut out: Option<T> = None;
                let mut interrupted: Option<PyErr> = None;
                loop {
                    let step = std::future::poll_fn(|cx| {
                        if out.is_none() {
                            if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                                return Poll::Ready(Step::Done(v));
                            }
                        } else if calls.poll_drained(cx) {
                            return Poll::Ready(Step::Drained);
                        }
                        if interrupt.poll_due(cx) { Poll::Ready(Step::Tick) } else { Poll::Pending }
                    })
                    .await;
                    match step {
                        // Before Python goes on (and perhaps exits), the calls into Python backends this
                        // work made on other threads must have returned: a cancelled execution does
                        // not wait for them, and an interpreter exiting under them aborts.
                        Step::Done(v) => out = Some(v),
                        Step::Drained => {
                            let out = out.take().expect("done before drained");
                            return interrupted.map_or(Ok(out), Err);
                        }
                        Step::Tick => {
                            let signal = Python::attach(|py| {
                                py.check_signals()?;
                                if calls.interrupted.swap(false, Ordering::AcqRel)
                                    || INTERRUPTED.swap(false, Ordering::AcqRel)
                                {
                                    return Err(PyKeyboardInterrupt::new_err(()));
                                }
                                Ok(())
                            });
                            if let Err(e) = signal {
                                match (&cancel, interrupted.is_some()) {
                                    (Some(token), false) => {
                                        token.cancel();
                                        interrupted = Some(e);
                                    }
                                    _ => return Err(e),
                                }
                            }
                        }
                    }
                }
            })
        })
    }

    /// `work` as the simulated runtime sees it: a task of its own (aborted if the returned future is
    /// dropped), so that whichever thread drives the runtime runs it, and the paused clock never
    /// advances while it is ready to run. Driven as the plain future of one thread's `block_on`, it
    /// was invisible to a runtime driven by another thread at the same time (an event iterator, a
    /// second pipeline): that thread, finding no task ready, advanced the clock to the next timer, a
    /// deadline, and the execution failed ("verification did not finish within 600s"). On the real
    /// clock `work` runs as it is, on the calling thread.
    fn as_task<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> std::pin::Pin<Box<dyn Future<Output = T> + Send>> {
        if self.simulated.is_none() {
            return Box::pin(work);
        }
        let task = AbortOnDropHandle::new(self.handle.spawn(work));
        Box::pin(async move {
            match task.await {
                Ok(value) => value,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // Aborted: only when this future is dropped, and then nobody polls it.
                Err(_) => std::future::pending().await,
            }
        })
    }

    /// Starts `fut` in the background and returns at once: on the shared runtime, or as a task of the
    /// simulated runtime with a thread that drives that runtime until the task is done.
    pub(crate) fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) {
        if self.simulated.is_some() {
            let rt = self.clone();
            let task = self.handle.spawn(fut);
            let _ = std::thread::Builder::new().name("sendy-cd-sim".into()).spawn(move || {
                rt.drive(async move {
                    let _ = task.await;
                })
            });
        } else {
            self.handle.spawn(fut);
        }
    }

    /// Runs `fut` for an asyncio caller: returns a coroutine that starts the work when first awaited
    /// (on the awaiting loop, where Python backends' coroutines then run) and returns its result.
    /// Cancelling the coroutine cancels `cancel`.
    ///
    /// No thread of the engine enters the interpreter to deliver the result: the work stores it and
    /// writes one byte to a socket the loop watches (`sendy_cd._aio.wait`), and the loop's own thread
    /// converts it. A thread delivering a result through `call_soon_threadsafe` could still be inside
    /// the interpreter when `asyncio.run` returned and the interpreter exited, which aborted it.
    pub(crate) fn awaitable<'py, T>(
        &self,
        py: Python<'py>,
        cancel: Option<CancellationToken>,
        fut: impl Future<Output = PyResult<T>> + Send + 'static,
    ) -> PyResult<Bound<'py, PyAny>>
    where
        T: for<'a> IntoPyObject<'a> + Send + 'static,
    {
        let (reader, writer) = UnixStream::pair()
            .map_err(|e| SendyError::new_err(format!("cannot make the socket pair an awaitable needs: {e}")))?;
        let slot: Arc<Mutex<Option<Deliver>>> = Arc::default();
        let result = Arc::clone(&slot);
        let rt = self.clone();
        let start: Start = Box::new(move |event_loop| {
            rt.spawn(EVENT_LOOP.scope(Some(Arc::new(event_loop)), async move {
                let out = fut.await;
                let deliver: Deliver = Box::new(move |py| {
                    let value = out?;
                    value.into_py_any(py)
                });
                *result.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(deliver);
                // The loop may be gone (the awaitable was dropped): nobody is waiting then.
                let _ = (&writer).write_all(&[1]);
            }));
        });
        let pending = Pending { start: Mutex::new(Some(start)), slot, reader, cancel };
        py.import("sendy_cd._aio")?.getattr("wait")?.call1((pending,))
    }
}

/// Starts the work of an awaitable, with the event loop that awaits it.
type Start = Box<dyn FnOnce(Py<PyAny>) + Send>;

/// Turns the work's result into Python, on the loop's thread.
type Deliver = Box<dyn for<'py> FnOnce(Python<'py>) -> PyResult<Py<PyAny>> + Send>;

/// The native half of an awaitable (see [`Rt::awaitable`]); `sendy_cd._aio.wait` drives it.
#[pyclass(module = "sendy_cd._sendy_cd", frozen)]
pub(crate) struct Pending {
    start: Mutex<Option<Start>>,
    slot: Arc<Mutex<Option<Deliver>>>,
    reader: UnixStream,
    cancel: Option<CancellationToken>,
}

#[pymethods]
impl Pending {
    /// The socket that becomes readable when the result is there.
    fn fileno(&self) -> i32 {
        self.reader.as_raw_fd()
    }

    /// Starts the work (once), with Python backends' coroutines on `event_loop`.
    fn start(&self, event_loop: Py<PyAny>) {
        let start = self.start.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(start) = start {
            start(event_loop);
        }
    }

    /// Cancels the work (an execution then undoes what it changed).
    fn cancel(&self) {
        if let Some(cancel) = &self.cancel {
            cancel.cancel();
        }
    }

    /// The result, once the socket was readable.
    fn result(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let deliver = self.slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        match deliver {
            Some(deliver) => deliver(py),
            None => Err(SendyError::new_err("the result was taken already, or the work has not finished")),
        }
    }
}

/// The calls into Python backends that one blocking call's work has under way on blocking threads.
#[derive(Debug, Default)]
pub(crate) struct PyCalls {
    count: AtomicUsize,
    drained: AtomicWaker,
    /// A Ctrl-C that Python code run by this work (an event sink) received instead of the blocking
    /// call: the call treats it as its own at its next check.
    interrupted: AtomicBool,
}

/// A Ctrl-C received by Python code that runs outside any blocking call's work: the next blocking
/// call to check takes it.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Hands a `KeyboardInterrupt` that Python code called by the engine (an event sink) received to the
/// blocking call whose work called it, which cancels and undoes that work and raises it. Delivering
/// the signal again instead would be caught by the next Python code the work runs on the main thread.
pub(crate) fn interrupted() {
    if PY_CALLS.try_with(|calls| calls.interrupted.store(true, Ordering::Release)).is_err() {
        INTERRUPTED.store(true, Ordering::Release);
    }
}

/// One call under way; dropped when it has returned (after the GIL is released).
pub(crate) struct PyCallGuard(Arc<PyCalls>);

impl PyCalls {
    fn poll_drained(&self, cx: &mut Context<'_>) -> bool {
        self.drained.register(cx.waker());
        self.count.load(Ordering::Acquire) == 0
    }
}

impl Drop for PyCallGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.drained.wake();
        }
    }
}

/// Counts a call into a Python backend against the blocking call whose work makes it, if any.
pub(crate) fn python_call() -> Option<PyCallGuard> {
    PY_CALLS
        .try_with(|calls| {
            calls.count.fetch_add(1, Ordering::AcqRel);
            PyCallGuard(calls.clone())
        })
        .ok()
}

tokio::task_local! {
    /// The Python-backend calls of the blocking call being served.
    static PY_CALLS: Arc<PyCalls>;

    /// The asyncio event loop of the `_async` call being served, on which Python backends' coroutines run.
    pub(crate) static EVENT_LOOP: Option<Arc<Py<PyAny>>>;
}

/// The event loop of the `_async` call this task serves, if any.
pub(crate) fn current_loop() -> Option<Arc<Py<PyAny>>> {
    EVENT_LOOP.try_with(Clone::clone).ok().flatten()
}

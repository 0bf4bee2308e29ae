"""Waiting in asyncio for work the Rust engine does on its own threads.

The engine never enters the interpreter from its threads to hand a result to an event loop (a thread
still inside the interpreter while it exits aborts it): the work stores its result and writes one
byte to a socket pair, the loop watches the socket with ``add_reader``, and this coroutine, on the
loop's own thread, takes the result. The work starts when the coroutine is first awaited, on that
loop, so ``asyncio.run(pipeline.run_async(revision))`` works.
"""

import asyncio
from typing import Any


async def wait(pending: Any) -> Any:
    loop = asyncio.get_running_loop()
    ready: "asyncio.Future[None]" = loop.create_future()
    fd = pending.fileno()

    def on_readable() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(fd, on_readable)
    try:
        pending.start(loop)
        try:
            await ready
        except asyncio.CancelledError:
            # Cancels the Rust work: an execution undoes what it changed, in the background.
            pending.cancel()
            raise
    finally:
        loop.remove_reader(fd)
    return pending.result()

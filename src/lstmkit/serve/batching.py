"""Dynamic batching: steps of different sessions that arrive within a short window are stacked
into one batched model call, then scattered back.

Symbols: B jobs in a batch. The batcher lives in the event loop; the model runs in one
dedicated thread (``run_batch`` is called there), so the loop keeps reading requests while a
batch computes, and the next batch gathers whatever arrived meanwhile.

With ``executor=None`` the batch runs on the event loop itself: no thread hand-offs (each
costs a scheduler wake-up, which is milliseconds on a loaded machine), and requests that arrive
during a batch wait in their sockets and make up the next one.

A job is whatever the caller queues; ``run_batch(jobs) -> results`` (one per job) or raises, in
which case every job of the batch gets the exception. Same-session ordering is the caller's
part (the server holds a per-session lock around each submit, so one session has at most one
job queued or running).

>>> import asyncio
>>> from concurrent.futures import ThreadPoolExecutor
>>> sizes = []
>>> def run(jobs):
...     sizes.append(len(jobs)); return [j * 10 for j in jobs]
>>> async def main():
...     b = DynamicBatcher(run, ThreadPoolExecutor(1), window_s=0.05, max_batch=8)
...     b.start()
...     out = await asyncio.gather(*(b.submit(i) for i in range(5)))
...     await b.stop()
...     return out
>>> asyncio.run(main()), sizes
([0, 10, 20, 30, 40], [5])
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any


class DynamicBatcher:
    """Collects jobs for up to ``window_s`` seconds (or ``max_batch`` jobs) per batch; the
    window is skipped while batches hold one job (a lone client pays no wait).

    ``max_batch=1`` turns batching off: every job runs alone, in arrival order."""

    def __init__(self, run_batch: Callable[[list[Any]], list[Any]], executor: Executor | None, *,
                 window_s: float = 0.002, max_batch: int = 64) -> None:
        if not isinstance(max_batch, int) or max_batch < 1:
            raise ValueError(f"max_batch: expected an int >= 1, got {max_batch!r}")
        if not window_s >= 0:
            raise ValueError(f"window_s: expected seconds >= 0, got {window_s!r}")
        self.run_batch, self.executor = run_batch, executor
        self.window_s, self.max_batch = float(window_s), max_batch
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._concurrent = True

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._worker())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def enqueue(self, job: Any) -> asyncio.Future:
        """Queue ``job``; the future gets its result once its batch has run. The batch runs even
        if the caller stops waiting (the model's state changes must not depend on a client)."""
        if self._queue is None:
            raise RuntimeError("batcher: not started")
        fut = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((job, fut))
        return fut

    async def submit(self, job: Any) -> Any:
        """Queue ``job`` and wait for its result."""
        return await self.enqueue(job)

    def _drain(self, batch: list) -> None:
        while len(batch) < self.max_batch and not self._queue.empty():
            batch.append(self._queue.get_nowait())

    async def _collect(self) -> list[tuple[Any, asyncio.Future]]:
        """Everything queued now; then, if the last batch showed concurrent clients, whatever
        else arrives within the window. (A lone client never waits for the window.)"""
        batch = [await self._queue.get()]
        self._drain(batch)
        if self.window_s > 0 and len(batch) < self.max_batch and self._concurrent:
            await asyncio.sleep(self.window_s)
            self._drain(batch)
        self._concurrent = len(batch) > 1
        return batch

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            jobs = [j for j, _ in batch]
            try:
                if self.executor is None:
                    results = self.run_batch(jobs)
                else:
                    results = await loop.run_in_executor(self.executor, self.run_batch, jobs)
            except asyncio.CancelledError:
                for _, f in batch:
                    if not f.done():
                        f.cancel()
                raise
            except Exception as e:  # noqa: BLE001 - handed to every waiting request
                for _, f in batch:
                    if not f.done():
                        f.set_exception(e)
                continue
            for (_, f), r in zip(batch, results):
                if not f.done():
                    f.set_result(r)

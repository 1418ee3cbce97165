"""The service's background work: the batcher that gathers concurrent requests into one forward pass, and the board
of deals rescanned through it."""

import asyncio
import itertools
import time


class MicroBatcher:
    """Gathers the texts of concurrent requests into batches of up to max_size, waiting at most max_wait seconds.
    A request of more than max_size texts (a file, a deal scan) is bulk: every batch takes the texts of smaller
    requests first, so one product is never queued behind a file of ten thousand."""

    def __init__(self, predict_batch, max_size: int = 64, max_wait: float = 0.005):
        self.predict_batch, self.max_size, self.max_wait = predict_batch, max_size, max_wait
        self.queue: asyncio.PriorityQueue = asyncio.PriorityQueue()  # (0 small or 1 bulk, arrival, text, future)
        self.arrivals = itertools.count()
        self.task: asyncio.Task | None = None

    def start(self):
        self.task = asyncio.create_task(self._run())

    async def stop(self):
        if self.task:
            self.task.cancel()

    async def submit(self, texts: list[str]) -> list[dict]:
        futures, bulk = [], int(len(texts) > self.max_size)
        for text in texts:
            future = asyncio.get_running_loop().create_future()
            self.queue.put_nowait((bulk, next(self.arrivals), text, future))
            futures.append(future)
        return list(await asyncio.gather(*futures))

    async def _run(self):
        loop = asyncio.get_running_loop()
        while True:
            pending = [await self.queue.get()]
            deadline = loop.time() + self.max_wait
            while len(pending) < self.max_size:
                try:
                    pending.append(await asyncio.wait_for(self.queue.get(), max(deadline - loop.time(), 0)))
                except asyncio.TimeoutError:
                    break
            pending = [(t, f) for _, _, t, f in pending if not f.done()]  # (not those of a client that went away)
            if not pending:
                continue
            try:
                results = await loop.run_in_executor(None, self.predict_batch, [t for t, _ in pending])
            except Exception:  # the model failed on something in the batch: try each item alone, fail only the culprits
                for text, f in pending:
                    try:
                        (result,) = await loop.run_in_executor(None, self.predict_batch, [text])
                    except Exception as e:
                        result = e
                    if not f.done():
                        f.set_exception(result) if isinstance(result, Exception) else f.set_result(result)
                continue
            for (_, f), result in zip(pending, results):
                if not f.done():
                    f.set_result(result)


class DealBoard:
    """The deals of `--deals SOURCE...`, rescanned in the background; each scan's pricing goes through the service's
    batcher, so page requests and scans share the model."""

    def __init__(self, sources: list[str], every: float, calibration=None):
        self.sources, self.every, self.calibration = sources, every, calibration
        self.state: dict = {"status": "scanning", "deals": [], "summary": "", "updated": None}
        self.task: asyncio.Task | None = None

    def start(self, batcher: "MicroBatcher"):
        self.task = asyncio.create_task(self._run(batcher))

    async def stop(self):
        if self.task:
            self.task.cancel()

    async def _run(self, batcher):
        from pricer.deals.scan import scan

        loop = asyncio.get_running_loop()

        class ThroughBatcher:  # a predictor for the scanning thread that asks the batcher on the event loop
            kind = "served"
            calibration = self.calibration

            def estimate(self, texts):
                return asyncio.run_coroutine_threadsafe(batcher.submit(texts), loop).result()

        while True:
            try:
                result = await loop.run_in_executor(None, scan, self.sources, ThroughBatcher())
                self.state = {"status": "ok", "deals": [d.to_dict() for d in result.deals], "summary": result.summary(),
                              "updated": time.strftime("%Y-%m-%d %H:%M:%S")}
            except Exception as e:  # a feed that is down must not take the page down: show why, try again later
                self.state = {**self.state, "status": f"error: {e}"}
            await asyncio.sleep(self.every)

"""A process per GPU for `--gpus N`: each process loads its own replica of the model on its own GPU and predicts a
share of every call's texts. Threads sharing one interpreter (the way replicas already in memory are driven) leave
the GPUs waiting on each other's Python: measured 1.75x for two GPUs (docs/performance.md).

The processes start once, with the first call, and serve every later call; inside each, the predictor is an ordinary
one-device predictor whose device is that process's GPU.
"""

import multiprocessing
import weakref
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from pricer.errors import PricerError

_replica = None  # in a worker process: its predictor


def _start(predictor, devices) -> None:
    global _replica
    device = devices.get()
    if device.startswith("cuda"):
        import torch

        torch.cuda.set_device(device)  # what is put on "cuda" without an index lands here too
    predictor.devices = [device]
    _replica = predictor


def _predict_details(texts: list[str]) -> list[dict]:
    return _replica.predict_details(texts)


class ReplicaProcesses:
    """`predictor` (not yet loaded) copied into one process per device ("cuda:0", "cuda:1", ...; "cpu" runs anywhere)."""

    def __init__(self, predictor, devices: list[str]):
        context = multiprocessing.get_context("spawn")  # CUDA cannot be used in a forked child
        queue = context.Queue()
        for device in devices:
            queue.put(device)
        self.size = len(devices)
        self._pool = ProcessPoolExecutor(self.size, mp_context=context, initializer=_start, initargs=(predictor, queue))
        weakref.finalize(self, self._pool.shutdown, cancel_futures=True)

    def predict_details(self, texts: list[str]) -> list[dict]:
        """Texts dealt out in order of length, so that every process gets as many long prompts as short ones."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        shares = [order[p :: self.size] for p in range(self.size)]
        futures = [self._pool.submit(_predict_details, [texts[i] for i in share]) for share in shares if share]
        details: list[dict | None] = [None] * len(texts)
        try:
            for share, future in zip(shares, futures):
                for i, detail in zip(share, future.result()):  # an error in a process is raised here, as it was
                    details[i] = detail
        except BrokenProcessPool:
            raise PricerError("a replica process died (out of memory, or killed); its own output says why") from None
        return details

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)

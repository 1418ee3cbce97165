"""A Mercari-style MLP on sparse TF-IDF features (the 2018 Mercari price challenge's winning recipe, at this size).

TF-IDF of word 1-2 grams -> 256 -> 64 -> 64 -> 1 with ReLUs, L1 loss on the standardised log price, four epochs with
the batch doubling every epoch (32, 64, 128, 256), Adam at 1e-3; four such networks (seeds) averaged in log space.
Chosen on a validation slice of the pool (fitted on train + train-extra, scored on dev[:1250]; docs/results.md): the
Mercari recipe's own settings (three epochs at 3e-3, half the networks on binarised features) were $4 worse, and a
network on binarised features alone $6 worse than one on TF-IDF.

The first layer is an EmbeddingBag over each text's non-zero features weighted by their values: the same product as a
dense layer on the sparse vector, but its gradient touches only the rows of the words in the batch, so a network
trains in seconds on a CPU.

With an `embedder` (`sparse-mlp-embed`), the text's unit sentence vector (all-MiniLM-L6-v2, cached as embed-knn's)
enters the same first hidden layer through a linear map: on the validation slice the network alone went from $111.34
to $107.27, and the CPU stack from $106.23 to $103.73 with it and embed-knn as its members (docs/results.md).

With `single_characters`, words of one character count too (scikit-learn's default pattern drops them, and with them
the 2 of "2-Light" and the 4 of "Pack of 4"): in the mpnet stack $0.66 better on the first validation slice and $0.52
on the second, on all four halves, in the MiniLM stack $0.26 and $0.77 (docs/results.md); `sparse-mlp-mpnet` and
`sparse-mlp-embed` have it.

With `categories`, the network learns only from items of those categories and from items without one. Leaving out
the pool's items from categories the benchmark does not have (a tenth of it) was measured in the stack on
all-mpnet-base-v2 and not adopted: $1.17 better on the first validation slice, $0.27 worse on the second
(docs/results.md).
"""

import json
import math
from pathlib import Path

import numpy as np

from pricer.errors import PricerError
from pricer.predictors.base import Predictor
from pricer.predictors.model_files import load_estimator, load_tensors, save_estimator, save_tensors


def make_network(n_features: int, hidden: int, vector_dims: int = 0):
    import torch
    from torch import nn

    class SparseMLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.first = nn.EmbeddingBag(n_features, hidden, mode="sum", sparse=True)
            self.first_bias = nn.Parameter(torch.zeros(hidden))
            self.vectors = nn.Linear(vector_dims, hidden, bias=False) if vector_dims else None
            self.rest = nn.Sequential(nn.ReLU(), nn.Linear(hidden, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                                      nn.Linear(64, 1))
            nn.init.normal_(self.first.weight, std=1.0 / math.sqrt(hidden))

        def forward(self, indices, offsets, weights, vectors=None):
            first = self.first(indices, offsets, per_sample_weights=weights) + self.first_bias
            if self.vectors is not None:
                first = first + self.vectors(vectors)
            return self.rest(first).squeeze(1)

    return SparseMLP()


def bags(rows) -> tuple:
    """A CSR matrix's rows as EmbeddingBag input: flat feature indices, each row's offset, and the values."""
    import torch

    return (torch.from_numpy(rows.indices.astype(np.int64)), torch.from_numpy(rows.indptr[:-1].astype(np.int64)),
            torch.from_numpy(rows.data.astype(np.float32)))


def half_if_exact_enough(name: str, tensor):
    """The first layer (a row of 256 per word: 680 MB of float32 for the CPU stack's four networks) stored as float16,
    the rest as it is; loading copies it back into float32. On dev[1250:] the MLP's estimates moved by 3e-5 at most
    (a cent). A layer float16 cannot hold (values beyond its range) stays float32."""
    import torch

    if name != "first.weight":
        return tensor
    half = tensor.half()
    return half if torch.isfinite(half).all() else tensor


class SparseMLPPredictor(Predictor):
    kind = "sparse-mlp"

    def __init__(self, networks: int = 4, hidden: int = 256, epochs: int = 4, batch_size: int = 32,
                 learning_rate: float = 1e-3, max_features: int = 200_000, seed: int = 42, embedder: str | None = None,
                 categories: list[str] | None = None, single_characters: bool = False):
        self.networks, self.hidden, self.epochs, self.batch_size = networks, hidden, epochs, batch_size
        self.learning_rate, self.max_features, self.seed, self.embedder = learning_rate, max_features, seed, embedder
        self.categories = categories  # fit on items of these categories and on those without one; None: on all
        self.single_characters = single_characters  # words of one character too: the 2 of "2-Light", "Pack of 4"
        self.vectorizer, self.nets, self.mean, self.std, self.vector_dims = None, [], 0.0, 1.0, 0

    def features(self, texts):
        return self.vectorizer.transform(texts).astype(np.float32).tocsr()

    def sentence_vectors(self, texts):
        """The texts' sentence vectors (a tensor), or None without an embedder."""
        if not self.embedder:
            return None
        import torch
        from pricer.retrieval.embeddings import embed

        return torch.from_numpy(np.ascontiguousarray(embed(list(texts), self.embedder), dtype=np.float32))

    def make_vectorizer(self):
        """The sparse input's vectorizer: TF-IDF of word 1-2 grams (an experiment can swap in another)."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        words = r"(?u)\b\w+\b" if self.single_characters else r"(?u)\b\w\w+\b"  # the latter scikit-learn's
        return TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=self.max_features, sublinear_tf=True,
                               token_pattern=words, dtype=np.float32)

    def fit(self, items, progress=None):
        import torch

        if self.categories:
            items = [it for it in items if it.category is None or it.category in self.categories]
            if not items:
                raise PricerError(f"sparse-mlp: no training item is in its categories ({', '.join(self.categories)}) "
                                  "or without a category")
        texts = [it.text for it in items]
        self.vectorizer = self.make_vectorizer()
        x = self.vectorizer.fit_transform(texts).tocsr()  # the texts tokenised once, for the vocabulary and the features
        vectors = self.sentence_vectors(texts)
        self.vector_dims = 0 if vectors is None else vectors.shape[1]
        y = np.log1p(np.array([it.price for it in items], dtype=np.float32))
        self.mean, self.std = float(y.mean()), float(y.std() or 1.0)
        target = torch.from_numpy((y - self.mean) / self.std)
        self.nets = []
        for n in range(self.networks):
            self.nets.append(self.train_network(x, vectors, target, self.seed + n))
            if progress:
                progress(f"network {n + 1}/{self.networks} trained")
        return self

    def train_network(self, x, vectors, target, seed: int):
        import torch

        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        net = make_network(x.shape[1], self.hidden, self.vector_dims)
        sparse = torch.optim.SparseAdam([net.first.weight], lr=self.learning_rate)
        dense = torch.optim.Adam([p for name, p in net.named_parameters() if name != "first.weight"],
                                 lr=self.learning_rate)
        net.train()
        for epoch in range(self.epochs):
            batch_size = self.batch_size * 2**epoch
            for batch in np.array_split(rng.permutation(x.shape[0]), max(1, x.shape[0] // batch_size)):
                batch_vectors = None if vectors is None else vectors[batch]
                loss = torch.nn.functional.l1_loss(net(*bags(x[batch]), batch_vectors), target[batch])
                sparse.zero_grad()
                dense.zero_grad()
                loss.backward()
                sparse.step()
                dense.step()
        return net.eval()

    def predict(self, texts):
        import torch

        texts = list(texts)
        x = self.features(texts)
        vectors = self.sentence_vectors(texts)
        logs = np.zeros(x.shape[0])
        with torch.no_grad():
            for net in self.nets:
                for start in range(0, x.shape[0], 4096):
                    part = None if vectors is None else vectors[start:start + 4096]
                    logs[start:start + 4096] += net(*bags(x[start:start + 4096]), part).numpy()
        log_price = logs / len(self.nets) * self.std + self.mean
        return np.expm1(log_price).clip(min=0.0)

    def save_state(self, path: Path):
        from pricer.storage import atomic_write_json

        save_estimator(self.vectorizer, path / "vectorizer.skops")
        save_tensors({f"{i}.{name}": half_if_exact_enough(name, t) for i, net in enumerate(self.nets)
                      for name, t in net.state_dict().items()}, path / "networks.safetensors")
        atomic_write_json(path / "target.json", {"mean": self.mean, "std": self.std})

    def load_state(self, path: Path):
        self.vectorizer = load_estimator(path / "vectorizer.skops")
        target = json.loads((path / "target.json").read_text())
        self.mean, self.std = target["mean"], target["std"]
        n_features = len(self.vectorizer.vocabulary_)
        self.nets = []
        tensors = load_tensors(path / "networks.safetensors", legacy="networks.pt")
        states = tensors if isinstance(tensors, list) else [  # a list: an older folder's pickle
            {name.removeprefix(f"{i}."): t for name, t in tensors.items() if name.startswith(f"{i}.")}
            for i in range(self.networks)]
        for state in states:
            self.vector_dims = state["vectors.weight"].shape[1] if "vectors.weight" in state else 0
            net = make_network(n_features, self.hidden, self.vector_dims)
            net.load_state_dict(state)
            self.nets.append(net.eval())

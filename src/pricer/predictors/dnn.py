"""The course v2's deep neural network (week 6): a residual MLP on hashed binary word features.

HashingVectorizer(n_features=5000, stop_words="english", binary=True) on the text; an input layer, then residual blocks
(Linear-LayerNorm-ReLU-Dropout-Linear-LayerNorm, plus the skip, then ReLU), one output; the target log(1 + price)
standardised; L1 loss; AdamW with a cosine schedule; gradients clipped at 1.0. The reference's size (hidden 4096, 8
blocks, 270M weights) is `dnn`; `dnn-small` (hidden 1024, 4 blocks) is the size a laptop CPU trains in minutes.
"""

import json
import math
from pathlib import Path

import numpy as np

from pricer.predictors.base import Predictor
from pricer.predictors.model_files import load_tensors, save_tensors


def make_network(n_features: int, hidden: int, blocks: int, dropout: float):
    from torch import nn

    class ResidualBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(hidden, hidden), nn.LayerNorm(hidden), nn.ReLU(), nn.Dropout(dropout),
                                      nn.Linear(hidden, hidden), nn.LayerNorm(hidden))

        def forward(self, x):
            return nn.functional.relu(x + self.body(x))

    return nn.Sequential(nn.Linear(n_features, hidden), nn.LayerNorm(hidden), nn.ReLU(), nn.Dropout(dropout),
                         *[ResidualBlock() for _ in range(blocks)], nn.Linear(hidden, 1))


class DeepNetPredictor(Predictor):
    kind = "dnn"
    calibration_folds = 0  # a GPU's fit: calibrated on a held-out file (`pricer fit --calibrate FILE`)

    def __init__(self, n_features: int = 5000, hidden: int = 4096, blocks: int = 8, dropout: float = 0.2,
                 epochs: int = 5, batch_size: int = 64, learning_rate: float = 1e-3, weight_decay: float = 0.01,
                 seed: int = 42):
        self.n_features, self.hidden, self.blocks, self.dropout = n_features, hidden, blocks, dropout
        self.epochs, self.batch_size, self.learning_rate, self.weight_decay = epochs, batch_size, learning_rate, weight_decay
        self.seed = seed
        self.network, self.mean, self.std = None, 0.0, 1.0

    def features(self, texts):
        """Hashed binary word features (stateless: nothing to fit or save), as a sparse matrix."""
        from sklearn.feature_extraction.text import HashingVectorizer

        vectorizer = HashingVectorizer(n_features=self.n_features, stop_words="english", binary=True)
        return vectorizer.transform(texts).astype(np.float32).tocsr()

    def fit(self, items, progress=None):
        import torch

        from pricer.llm.models import best_device

        torch.manual_seed(self.seed)
        x = self.features([it.text for it in items])
        y = np.log1p(np.array([it.price for it in items], dtype=np.float32))
        self.mean, self.std = float(y.mean()), float(y.std() or 1.0)
        target = torch.from_numpy((y - self.mean) / self.std)
        device = best_device()
        self.network = make_network(self.n_features, self.hidden, self.blocks, self.dropout).to(device)
        optimizer = torch.optim.AdamW(self.network.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        steps = self.epochs * math.ceil(len(items) / self.batch_size)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        order = np.random.default_rng(self.seed)
        self.network.train()
        for epoch in range(self.epochs):
            total = 0.0
            for batch in np.array_split(order.permutation(len(items)), math.ceil(len(items) / self.batch_size)):
                inputs = torch.from_numpy(x[batch].toarray()).to(device)
                loss = torch.nn.functional.l1_loss(self.network(inputs).squeeze(1), target[batch].to(device))
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.network.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                total += loss.item() * len(batch)
            if progress:
                progress(f"epoch {epoch + 1}/{self.epochs}: L1 loss {total / len(items):.4f} (standardised log price)")
        return self

    def predict(self, texts):
        import torch

        self.network.eval()
        x, device, out = self.features(list(texts)), next(self.network.parameters()).device, []
        with torch.no_grad():
            for start in range(0, x.shape[0], 1024):
                inputs = torch.from_numpy(x[start:start + 1024].toarray()).to(device)
                out.append(self.network(inputs).squeeze(1).float().cpu().numpy())
        log_price = np.concatenate(out) * self.std + self.mean if out else np.zeros(0)
        return np.expm1(log_price).clip(min=0.0)

    def save_state(self, path: Path):
        from pricer.storage import atomic_write_json

        save_tensors(self.network.state_dict(), path / "network.safetensors")
        atomic_write_json(path / "target.json", {"mean": self.mean, "std": self.std})

    def load_state(self, path: Path):
        from pricer.llm.models import best_device

        target = json.loads((path / "target.json").read_text())
        self.mean, self.std = target["mean"], target["std"]
        self.network = make_network(self.n_features, self.hidden, self.blocks, self.dropout)
        self.network.load_state_dict(load_tensors(path / "network.safetensors", legacy="network.pt"))
        self.network.to(best_device())

"""A sentence model fine-tuned on the price: its transformer, the mean of its token states and one linear layer, every
weight trained on the standardised log price.

embed-knn and the sparse MLP read a sentence model's vectors as they come; here the model itself learns what in a text
says "expensive". MSE on the standardised log(1 + price), AdamW with the head's learning rate x20, 6% warm-up then a
linear decay, three epochs of 32 texts; bf16 autocast on a GPU, fp32 on a CPU. As a third member of the mpnet CPU stack
all-MiniLM-L6-v2 tuned this way gained $1.38 on the first validation slice (CI $0.13 to $2.63, both halves;
docs/results.md). A fit is minutes on a GPU and about 0.12 s a text and epoch on 2 CPU cores (all-MiniLM-L6-v2, texts
of 160 tokens); predicting costs what embedding costs (26 ms a text there).
"""

import json
import math
from pathlib import Path

import numpy as np

from pricer.errors import PricerError, first_line
from pricer.predictors.base import Predictor
from pricer.predictors.model_files import load_tensors, save_tensors
from pricer.retrieval.embeddings import resolve_embedder, without_progress_bars


def mean_of_tokens(encoder, batch):
    """Each text's final token states averaged over its tokens (not its padding)."""
    from pricer.llm.head import mean_pooled

    return mean_pooled(encoder(**batch).last_hidden_state, batch["attention_mask"])


class EncoderRegressor(Predictor):
    kind = "encoder"
    calibration_folds = 0  # five more fine-tunings would cost an hour each on a CPU: calibrated on a held-out file

    def __init__(self, base: str = "all-MiniLM-L6-v2", epochs: int = 3, batch_size: int = 32,
                 learning_rate: float = 5e-5, head_lr_scale: float = 20.0, weight_decay: float = 0.01,
                 warmup_ratio: float = 0.06, max_length: int = 256, seed: int = 42):
        self.base, self.epochs, self.batch_size, self.learning_rate = base, epochs, batch_size, learning_rate
        self.head_lr_scale, self.weight_decay, self.warmup_ratio = head_lr_scale, weight_decay, warmup_ratio
        self.max_length, self.seed = max_length, seed
        self.tokenizer, self.encoder, self.head, self.mean, self.std = None, None, None, 0.0, 1.0

    def _load(self, folder: str):
        """The tokenizer and the transformer from a folder, weights from safetensors only (a pickle can run code)."""
        from transformers import AutoModel, AutoTokenizer

        from pricer.llm.models import best_device

        try:
            with without_progress_bars():
                self.tokenizer = AutoTokenizer.from_pretrained(folder)
                self.encoder = AutoModel.from_pretrained(folder, use_safetensors=True).to(best_device())
        except Exception as e:
            raise PricerError(f"cannot load sentence model from {folder}: {first_line(e)}") from None

    def _tokens(self, texts: list[str]):
        return self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                              return_tensors="pt").to(self.encoder.device)

    def _autocast(self):
        import torch

        device = self.encoder.device.type  # where the transformer was loaded: bf16 products on a GPU, fp32 on a CPU
        return torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda")

    def fit(self, items, progress=None):
        import torch
        from transformers import get_linear_schedule_with_warmup

        torch.manual_seed(self.seed)
        self._load(resolve_embedder(self.base))
        self.head = torch.nn.Linear(self.encoder.config.hidden_size, 1).to(self.encoder.device)
        texts = [it.text for it in items]
        y = np.log1p(np.array([it.price for it in items], dtype=np.float32))
        self.mean, self.std = float(y.mean()), float(y.std() or 1.0)
        target = torch.from_numpy((y - self.mean) / self.std)
        optimizer = torch.optim.AdamW(
            [{"params": self.encoder.parameters(), "lr": self.learning_rate},
             {"params": self.head.parameters(), "lr": self.learning_rate * self.head_lr_scale}],
            weight_decay=self.weight_decay)
        steps = self.epochs * math.ceil(len(texts) / self.batch_size)
        schedule = get_linear_schedule_with_warmup(optimizer, int(self.warmup_ratio * steps), steps)
        self.encoder.train()
        for epoch in range(self.epochs):
            total = 0.0
            order = torch.randperm(len(texts)).tolist()
            for start in range(0, len(order), self.batch_size):
                batch = order[start:start + self.batch_size]
                with self._autocast():
                    guess = self.head(mean_of_tokens(self.encoder, self._tokens([texts[i] for i in batch])))
                loss = torch.nn.functional.mse_loss(guess.float().squeeze(-1), target[batch].to(self.encoder.device))
                loss.backward()
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
                total += loss.item() * len(batch)
            if progress:
                progress(f"epoch {epoch + 1}/{self.epochs}: MSE {total / len(texts):.4f} (standardised log price)")
        return self

    def predict(self, texts):
        import torch

        texts, out = list(texts), []
        self.encoder.eval()
        with torch.no_grad(), self._autocast():
            for start in range(0, len(texts), 64):
                pooled = mean_of_tokens(self.encoder, self._tokens(texts[start:start + 64]))
                out.append(self.head(pooled).float().squeeze(-1).cpu().numpy())
        log_price = np.concatenate(out) * self.std + self.mean if out else np.zeros(0)
        return np.expm1(log_price).clip(min=0.0)

    def discard(self) -> None:
        """Free the fitted model (a fold's copy inside an ensemble, which keeps only its predictions)."""
        self.tokenizer = self.encoder = self.head = None

    def save_state(self, path: Path):
        from pricer.storage import atomic_write_json

        with without_progress_bars():
            self.encoder.save_pretrained(path / "encoder")
            self.tokenizer.save_pretrained(path / "encoder")
        save_tensors(self.head.state_dict(), path / "head.safetensors")
        atomic_write_json(path / "target.json", {"mean": self.mean, "std": self.std})

    def load_state(self, path: Path):
        import torch

        self._load(str(path / "encoder"))
        target = json.loads((path / "target.json").read_text())
        self.mean, self.std = float(target["mean"]), float(target["std"])
        self.head = torch.nn.Linear(self.encoder.config.hidden_size, 1)
        self.head.load_state_dict(load_tensors(path / "head.safetensors", legacy="head.pt"))
        self.head.to(self.encoder.device)

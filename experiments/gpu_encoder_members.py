"""Is a sentence model fine-tuned on the price a stronger CPU stack member than a kNN or an MLP over its frozen
vectors? On the V1M validation split of experiments/v1m.py (the pool with its five folds, scored on dev[:1250]; V2M
with SECOND=1): the model's transformer, a mean over its token states and a linear head, every weight trained on the
standardised log price (MSE, AdamW, linear decay, bf16 autocast on a GPU), fitted on each fold's other items and on
the whole pool. Writes SWEEP/{v1m,v2m}-ft-NAME.npz, which the CPU experiments stack with the cached members.
Fitting this on the 2 CPU cores would take hours: run it on a lent GPU (LIMIT=N fits on N pool items, for a check).
Usage: [SECOND=1] [LIMIT=N] python experiments/gpu_encoder_members.py DATA_DIR SWEEP_DIR NAME [EPOCHS] [LR]
"""

import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer, get_linear_schedule_with_warmup

from pricer.retrieval.embeddings import resolve_embedder
from v1m import split

DATA, SWEEP, NAME = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
EPOCHS = int(sys.argv[4]) if len(sys.argv) > 4 else 3
LR = float(sys.argv[5]) if len(sys.argv) > 5 else 5e-5
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
BATCH, MAX_LEN, HEAD_LR_SCALE = 32, 256, 20


def pooled(encoder, batch):
    states = encoder(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
    return (states * mask).sum(1) / mask.sum(1)


def fit_predict(texts, y, predict_texts) -> np.ndarray:
    torch.manual_seed(42)
    folder = resolve_embedder(NAME)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    encoder = AutoModel.from_pretrained(folder).to(DEVICE)
    head = torch.nn.Linear(encoder.config.hidden_size, 1).to(DEVICE)
    mean, scale = float(y.mean()), float(y.std())
    target = torch.tensor((y - mean) / scale, dtype=torch.float32)
    optimizer = torch.optim.AdamW([{"params": encoder.parameters(), "lr": LR},
                                   {"params": head.parameters(), "lr": LR * HEAD_LR_SCALE}], weight_decay=0.01)
    steps = EPOCHS * math.ceil(len(texts) / BATCH)
    schedule = get_linear_schedule_with_warmup(optimizer, int(0.06 * steps), steps)
    tokens = lambda chunk: tokenizer(chunk, padding=True, truncation=True, max_length=MAX_LEN,
                                     return_tensors="pt").to(DEVICE)
    autocast = torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=DEVICE == "cuda")
    encoder.train()
    for epoch in range(EPOCHS):
        order = torch.randperm(len(texts)).tolist()
        for start in range(0, len(order), BATCH):
            rows = order[start:start + BATCH]
            with autocast:
                guess = head(pooled(encoder, tokens([texts[i] for i in rows])).float()).squeeze(-1)
            loss = torch.nn.functional.mse_loss(guess.float(), target[rows].to(DEVICE))
            loss.backward()
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
    encoder.eval()
    out = []
    with torch.no_grad(), autocast:
        for start in range(0, len(predict_texts), 128):
            out.append(head(pooled(encoder, tokens(predict_texts[start:start + 128])).float()).squeeze(-1).float().cpu())
    return np.expm1(mean + scale * torch.cat(out).numpy())


def main():
    s = split(DATA, second=os.environ.get("SECOND") == "1")
    limit = int(os.environ.get("LIMIT", 0)) or len(s.pool)
    pool, folds, y = s.pool[:limit], s.folds[:limit], s.y[:limit]
    held = [it.text for it in s.held[:limit]]
    oof = np.zeros(len(pool))
    for k in range(5):
        started = time.time()
        train = folds != k
        oof[~train] = fit_predict([it.text for it, t in zip(pool, train) if t], y[train],
                                  [it.text for it, t in zip(pool, train) if not t])
        error = np.mean(np.abs(oof[~train] - np.expm1(y[~train])))
        print(f"ft-{NAME}: fold {k + 1}/5 in {time.time() - started:.0f} s, out-of-fold error ${error:.2f}", flush=True)
    guesses = fit_predict([it.text for it in pool], y, held)
    print(f"ft-{NAME} alone on {s.tag}'s held items: ${np.mean(np.abs(guesses - s.truth[:len(held)])):.2f}")
    if limit == len(s.pool):
        np.savez(SWEEP / f"{s.tag}-ft-{NAME}.npz", oof=oof, held=guesses)


if __name__ == "__main__":
    main()

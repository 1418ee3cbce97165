"""Where a regression head's catalog time goes on one GPU: the neighbours (MiniLM embedding and search), the prompts
(building and tokenising) and the forward passes, timed apart on the same texts, the forward passes at several batch
sizes. A saved head (e.g. the one experiments/gpu_catalog.sh trains) and a JSONL of items:
  python experiments/gpu_head_profile.py /tmp/catalog/head /tmp/x/data/train-extra.jsonl 8000
"""

import sys
import time

import numpy as np
import torch

from pricer.data.items import read_items
from pricer.predictors.registry import load_predictor


def timed(what, work):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = work()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    took = time.perf_counter() - start
    print(f"{what:44s} {took:7.2f} s", flush=True)
    return result, took


def main():
    model, data, rows = sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 8000
    texts = [it.text for it in read_items(data)][:rows]
    predictor = load_predictor(model, gpus=1)
    predictor._ensure_loaded()
    predictor.predict_details_here(texts[:256])  # warm: kernels, the index, the embedder
    contexts, t_context = timed("neighbours (embed + search)", lambda: predictor.contexts(texts))
    from pricer.llm.prompts import prompt_token_ids

    prompts, t_prompt = timed("prompts (build + tokenise)", lambda: prompt_token_ids(
        texts, predictor._tokenizer, predictor.max_prompt_tokens, contexts, predictor.question))
    print(f"{len(texts):,} texts, {np.mean([len(p) for p in prompts]):.0f} prompt tokens on average")
    predictor.prompt_ids = lambda _texts: prompts  # the forward passes alone from here
    for batch in (64, 128, 256, 512):
        predictor.batch_size = batch
        _, t_forward = timed(f"forward passes, batch {batch}", lambda: predictor.predict_details_here(texts))
        tokens = sum(len(p) for p in prompts)
        print(f"  {len(texts) / t_forward:,.0f} rows/s, {tokens / t_forward:,.0f} tokens/s; with neighbours and prompts "
              f"{len(texts) / (t_forward + t_context + t_prompt):,.0f} rows/s; peak "
              f"{torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0:.1f} GiB")


if __name__ == "__main__":
    main()

"""`--gpus N` inference, a process per GPU, against one GPU in the same lease: Llama 3.1 8B's shape with random
weights, saved once to disk so that every process loads the same model as `pricer eval --gpus N` would.
Usage: python experiments/gpu_replicas.py DEV_JSONL OUT_JSON [ITEMS] [BATCH] [SHAPE] [GPUS] [liger]   (SHAPE: a preset
of bench.py; GPUS: a comma-separated list of counts to time, one and all by default; liger: with liger's kernels in
every replica; the Llama 3 tokenizer from llama-models)
"""

import json
import sys
import time
from pathlib import Path

import torch

from pricer.data.curation import load_tokenizer
from pricer.data.items import read_items
from pricer.llm.bench import random_weights
from pricer.llm.predictor import LLMPredictor


def main():
    data, out = sys.argv[1], Path(sys.argv[2])
    items, batch = int(sys.argv[3]) if len(sys.argv) > 3 else 2000, int(sys.argv[4]) if len(sys.argv) > 4 else 128
    shape = sys.argv[5] if len(sys.argv) > 5 else "llama-3.1-8b"
    liger = len(sys.argv) > 7 and sys.argv[7] == "liger"
    texts = [it.text for it in read_items(data)]
    texts = (texts * -(-items // len(texts)))[:items]
    folder = Path(f"/tmp/random-{shape}")
    if not (folder / "config.json").exists():
        tokenizer = load_tokenizer("llama3")
        tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
        random_weights(shape, "cuda:0").save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        torch.cuda.empty_cache()

    results = []
    for gpus in [int(g) for g in sys.argv[6].split(",")] if len(sys.argv) > 6 else (1, torch.cuda.device_count()):
        predictor = LLMPredictor(base=str(folder), decode="topk", batch_size=batch, gpus=gpus, liger=liger)
        predictor.predict_details(texts[: batch * gpus])  # loading, kernels: every process gets a share
        start = time.perf_counter()
        predictor.predict_details(texts)
        seconds = time.perf_counter() - start
        results.append({"gpus": gpus, "items": items, "batch_size": batch, "seconds": seconds,
                        "items_per_s": items / seconds, "device": torch.cuda.get_device_name(), "shape": shape,
                        "liger": liger})
        print(results[-1], flush=True)
        if predictor._processes is not None:
            predictor._processes.close()
        del predictor
        torch.cuda.empty_cache()
    out.write_text(json.dumps(results, indent=1))
    print(f"{results[-1]['gpus']} GPUs: {results[-1]['items_per_s'] / results[0]['items_per_s']:.2f}x the first row")


if __name__ == "__main__":  # the replica processes import this module again: nothing may run then
    main()

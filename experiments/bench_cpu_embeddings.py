"""Is MiniLM faster on a CPU through ONNX Runtime than through PyTorch, and at what cost in quality?

Not part of pricer (onnxruntime is not in its lock). Run with the three packages on the side:
    pip install --target /tmp/ort onnxruntime==1.32.0 onnx==1.23.2 onnxscript==0.7.2 onnx_ir ml_dtypes flatbuffers protobuf
    PYTHONPATH=/tmp/ort .venv/bin/python experiments/bench_cpu_embeddings.py ../shared/data/amazon/dev.jsonl 400 /tmp/ort-models
It exports the bundled all-MiniLM-L6-v2 with torch.onnx (dynamo), makes ONNX Runtime's transformer-fused graph and
int8 (dynamic, per channel, reduced range) copies, then embeds the first N texts with each and with sentence-transformers
(PyTorch), two threads, batch 64, longest texts first, and prints ms a text and the lowest cosine to PyTorch's vector.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np


def export(model_dir: str, out: Path) -> dict[str, Path]:
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer
    from transformers import AutoModel, AutoTokenizer

    out.mkdir(parents=True, exist_ok=True)
    paths = {"onnx": out / "model.onnx", "onnx-fused": out / "model-fused.onnx", "onnx-int8": out / "model-int8.onnx"}
    if not paths["onnx"].exists():
        tokenizer, model = AutoTokenizer.from_pretrained(model_dir), AutoModel.from_pretrained(model_dir).eval()
        example = dict(tokenizer(["a text", "a longer text"], padding=True, return_tensors="pt"))
        batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq", max=512)
        program = torch.onnx.export(model, (), kwargs=example, dynamo=True, output_names=["last_hidden_state"],
                                    dynamic_shapes={name: {0: batch, 1: seq} for name in example})
        program.save(str(paths["onnx"]))
    if not paths["onnx-fused"].exists():
        optimizer.optimize_model(str(paths["onnx"]), model_type="bert", num_heads=12, hidden_size=384).save_model_to_file(
            str(paths["onnx-fused"]))
    if not paths["onnx-int8"].exists():
        quantize_dynamic(str(paths["onnx-fused"]), str(paths["onnx-int8"]), weight_type=QuantType.QInt8,
                         per_channel=True, reduce_range=True)
    return paths


def onnx_embed(path: Path, tokenizer_file: str, texts: list[str], batch_size: int = 64) -> np.ndarray:
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(tokenizer_file)
    tokenizer.enable_truncation(256)  # sentence-transformers' max_seq_length for this model
    tokenizer.enable_padding()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    order, out = np.argsort([-len(t) for t in texts]), np.zeros((len(texts), 384), np.float32)
    for start in range(0, len(texts), batch_size):
        rows = order[start:start + batch_size]
        encoded = tokenizer.encode_batch([texts[i] for i in rows])
        ids = np.array([e.ids for e in encoded], np.int64)
        mask = np.array([e.attention_mask for e in encoded], np.int64)
        hidden = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
        mean = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
        out[rows] = mean / np.linalg.norm(mean, axis=1, keepdims=True)
    return out


def main(data: str, n: int, out: str):
    import torch
    from sentence_transformers import SentenceTransformer

    from pricer.retrieval.embeddings import DEFAULT_EMBEDDER, resolve_embedder

    torch.set_num_threads(2)
    texts = [json.loads(line)["text"] for line in open(data)][:n]
    model_dir = resolve_embedder(DEFAULT_EMBEDDER)
    paths = export(model_dir, Path(out))
    started = time.perf_counter()
    reference = SentenceTransformer(model_dir, device="cpu").encode(texts, batch_size=64, normalize_embeddings=True)
    print(f"pytorch (sentence-transformers): {(time.perf_counter() - started) / n * 1000:.1f} ms a text")
    for name, path in paths.items():
        started = time.perf_counter()
        vectors = onnx_embed(path, f"{model_dir}/tokenizer.json", texts)
        print(f"{name}: {(time.perf_counter() - started) / n * 1000:.1f} ms a text, "
              f"lowest cosine to pytorch {float((vectors * reference).sum(1).min()):.4f}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])

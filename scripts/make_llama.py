"""Save a Llama-shaped model with random weights and the Llama 3 tokenizer: a base for checking code paths on a GPU,
or, from a preset (llama-3.1-8b), a full-size base that `--quant 4bit` can load for speed figures.
Usage: python3 scripts/make_llama.py OUT_DIR HIDDEN LAYERS  |  python3 scripts/make_llama.py OUT_DIR llama-3.1-8b"""
import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from pricer.data.curation import llama3_tokenizer
from pricer.llm.bench import random_weights

out = sys.argv[1]
tok = llama3_tokenizer()
tok.pad_token = tok.eos_token
if len(sys.argv) == 3:
    model = random_weights(sys.argv[2], "cuda" if torch.cuda.is_available() else "cpu")
else:
    hidden, layers = int(sys.argv[2]), int(sys.argv[3])
    config = LlamaConfig(hidden_size=hidden, intermediate_size=int(hidden * 2.75) // 64 * 64, num_hidden_layers=layers,
                         num_attention_heads=hidden // 64, num_key_value_heads=max(hidden // 256, 1), vocab_size=128256)
    model = LlamaForCausalLM(config)
model.save_pretrained(out)
tok.save_pretrained(out)

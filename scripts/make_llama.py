"""Save a Llama-shaped model with random weights and the Llama 3 tokenizer: a base for checking code paths on a GPU.
Usage: python3 scripts/make_llama.py OUT_DIR HIDDEN LAYERS"""
import sys

from transformers import LlamaConfig, LlamaForCausalLM

from pricer.curation import llama3_tokenizer

out, hidden, layers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
tok = llama3_tokenizer()
tok.pad_token = tok.eos_token
config = LlamaConfig(hidden_size=hidden, intermediate_size=int(hidden * 2.75) // 64 * 64, num_hidden_layers=layers,
                     num_attention_heads=hidden // 64, num_key_value_heads=max(hidden // 256, 1), vocab_size=128256)
LlamaForCausalLM(config).save_pretrained(out)
tok.save_pretrained(out)

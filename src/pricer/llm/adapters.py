"""Plain PEFT adapters as models: a local adapter folder, or one on the Hugging Face hub at a revision.

The reference's workflow pushes every checkpoint of a run to the hub as a commit and loads the chosen one with
`PeftModel.from_pretrained(base, "USER/RUN", revision=COMMIT)`; here that is `--model USER/RUN@COMMIT` (a branch or tag
works too, `USER/RUN` alone is `main`). The base comes from the adapter's adapter_config.json unless one is given.
Offline (HF_HUB_OFFLINE=1) the hub's local cache answers, as it does for transformers.
"""

import json
import re
from pathlib import Path

from pricer.errors import PricerError, first_line

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def looks_like_hub_id(spec: str) -> bool:
    repo = spec.rpartition("@")[0] or spec
    return bool(HUB_ID.match(repo)) and not Path(repo).exists()


def hub_snapshot(repo_id: str, revision: str | None = None) -> Path:
    """The local folder of a hub repository at a revision, downloaded into (or, offline, found in) the hub's cache."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, revision=revision))
    except Exception as e:  # offline and not cached, no such repository or revision, no network, no access
        raise PricerError(f"{repo_id}@{revision or 'main'}: neither a local directory nor reachable on the Hugging Face "
                          f"hub ({first_line(e)})") from None


def adapter_predictor(folder: Path, base: str | None = None, **params):
    """An LLM predictor of a base and the adapter in `folder` (adapter_config.json and the adapter's weights)."""
    from pricer.llm.predictor import LLMPredictor

    config = json.loads((folder / "adapter_config.json").read_text())
    base = base or config.get("base_model_name_or_path")
    if not base:
        raise PricerError(f"{folder}: adapter_config.json names no base model; give one with --base")
    return LLMPredictor(base=base, adapter=str(folder.resolve()), **params)


def hub_model(spec: str, base: str | None = None, **params):
    """`USER/RUN[@REVISION]`: an adapter on its base, or a whole causal LM, from the hub."""
    from pricer.llm.predictor import LLMPredictor

    from pricer.llm.checkpoints import split_revision

    repo, revision = split_revision(spec)  # `@best`: the commit `pricer select USER/RUN` chose
    folder = hub_snapshot(repo, revision)
    if (folder / "adapter_config.json").exists():
        return adapter_predictor(folder, base, **params)
    if (folder / "config.json").exists():
        return LLMPredictor(base=str(folder), **params)
    raise PricerError(f"{spec}: holds neither an adapter (adapter_config.json) nor a model (config.json)")

"""Every kind of predictor by name, and the one function that loads any saved or built-in model.

Kinds are imported when first used, so `pricer fit tfidf` never imports torch.
"""

import importlib
from pathlib import Path

from pricer.errors import PricerError
from pricer.llm.bundled import ALIASES
from pricer.predictors.model_files import trusting_models
from pricer.predictors.base import MANIFEST, Predictor, constructor_defaults, parse_settings, read_manifest
from pricer.storage import read_toml

KINDS = {
    "random": "pricer.predictors.classical:RandomPredictor",
    "constant": "pricer.predictors.classical:ConstantPredictor",
    "features": "pricer.predictors.classical:FeaturesPredictor",
    "bow": "pricer.predictors.classical:BagOfWordsPredictor",
    "tfidf": "pricer.predictors.classical:TfidfPredictor",
    "embed-rf": "pricer.predictors.embedding:EmbeddingForestPredictor",
    "embed-knn": "pricer.predictors.embedding:EmbeddingKnnPredictor",
    "dnn": "pricer.predictors.dnn:DeepNetPredictor",
    "sparse-mlp": "pricer.predictors.sparse_mlp:SparseMLPPredictor",
    "encoder": "pricer.predictors.encoder:EncoderRegressor",
    "llm": "pricer.llm.predictor:LLMPredictor",
    "llm-regressor": "pricer.llm.head:LLMRegressor",
    "llm-recipe": "pricer.llm.training:RecipePredictor",
    "frontier": "pricer.predictors.frontier:FrontierPredictor",
    "ensemble": "pricer.predictors.ensemble:EnsemblePredictor",
}


# What `pricer fit KIND` offers: a kind with fixed parameters under a name of its own.
RECIPES = {
    "random": ("random", {}),
    "constant-mean": ("constant", {"statistic": "mean"}),
    "constant-median": ("constant", {"statistic": "median"}),
    "features": ("features", {}),
    "bow": ("bow", {}),
    "tfidf": ("tfidf", {}),
    "embed-rf": ("embed-rf", {}),
    "embed-knn": ("embed-knn", {}),
    "dnn": ("dnn", {}),  # the course v2's size: hidden 4096, 8 residual blocks (a GPU's work)
    "dnn-small": ("dnn", {"hidden": 1024, "blocks": 4}),  # a CPU's size
    "sparse-mlp": ("sparse-mlp", {}),  # Mercari-style: TF-IDF -> 256 -> 64 -> 64 -> 1, four networks averaged
    "sparse-mlp-embed": ("sparse-mlp", {"embedder": "all-MiniLM-L6-v2", "single_characters": True}),  # + the MiniLM vector
    "embed-knn-mpnet": ("embed-knn", {"embedder": "all-mpnet-base-v2"}),  # all-mpnet-base-v2 in MiniLM's place (make mpnet)
    "sparse-mlp-mpnet": ("sparse-mlp", {"embedder": "all-mpnet-base-v2", "single_characters": True}),
    "encoder-minilm": ("encoder", {}),  # all-MiniLM-L6-v2 fine-tuned on the price (a GPU's minutes, a CPU's hour)
    "encoder-mpnet": ("encoder", {"base": "all-mpnet-base-v2"}),  # the same on all-mpnet-base-v2 (make mpnet)
    "ensemble": ("ensemble", {}),  # with --members
}


# Usable as --model without training: the random guess, and the bundled language models zero-shot.
BUILTINS = {"random": ("random", {})} | {alias: ("llm", {"base": alias}) for alias in ALIASES}


def predictor_class(kind: str) -> type[Predictor]:
    if kind not in KINDS:
        raise PricerError(f"unknown predictor kind {kind!r}; known: {', '.join(KINDS)}")
    module, name = KINDS[kind].split(":")
    return getattr(importlib.import_module(module), name)


ENSEMBLE_KEYS = {"members", "folds", "seed", "stacker"}


def ensemble_recipe(path: str | Path) -> dict | None:
    """The [ensemble] table of a recipe file (members as `--members` takes them, folds, seed, stacker), or None when the file
    is a language model's training recipe."""
    table = read_toml(path).get("ensemble")
    if table is None:
        return None
    if unknown := sorted(set(table) - ENSEMBLE_KEYS):
        raise PricerError(f"{path}: unknown [ensemble] key(s) {', '.join(unknown)}; known: {', '.join(sorted(ENSEMBLE_KEYS))}")
    if not isinstance(table.get("members"), list):
        raise PricerError(f"{path}: [ensemble] needs members = [...]")
    return table


def make_predictor(recipe: str, **overrides) -> Predictor:
    """An unfitted predictor: a name of RECIPES, with settings of its kind after it if wanted (`encoder-minilm
    epochs=1 max_length=128`), a training recipe file (.toml) for a language model, or a recipe file with an
    [ensemble] table."""
    if str(recipe).endswith(".toml"):
        if (table := ensemble_recipe(recipe)) is not None:
            return predictor_class("ensemble")(**{**table, **overrides})
        return predictor_class("llm-recipe")(recipe=str(recipe), **overrides)
    name, *pairs = str(recipe).split()
    if name not in RECIPES:
        raise PricerError(f"unknown predictor {name!r}; choose one of: {', '.join(RECIPES)}")
    kind, params = RECIPES[name]
    cls = predictor_class(kind)
    if pairs:
        params = params | parse_settings(pairs, constructor_defaults(cls) | params, f"setting of {kind}")
    return cls(**{**params, **overrides})


def load_predictor(spec: str | Path, *, decode: str | None = None, base: str | None = None, quant: str | None = None,
                   gpus: int | None = None, batch_size: int | None = None, liger: bool = False,
                   trust_model: bool = False, calibrate: str | Path | None = None) -> Predictor:
    """A saved model directory (`RUN_DIR@checkpoint-N` for a training checkpoint, `@best` for the one `pricer select`
    chose), a PEFT adapter folder, a hub adapter or model `USER/RUN[@REVISION]`, a built-in name, or
    `frontier[:MODEL]`. The settings change how a language model runs, not what it learned: its decoder, the base an
    adapter goes on, the quantisation, and, for every language model inside too (an ensemble's members), the GPUs it
    shares the work over, its batch size and liger's kernels. None keeps what was saved. trust_model: also load the
    pickles of folders saved by older versions (they can run code; model_files.py). calibrate: a file of items the
    model did not learn from, to calibrate its 80% interval on now (a frontier model, a hub adapter)."""
    with trusting_models(trust_model):
        predictor = _load(spec)
    for name, value in (("base", base), ("quant", quant), ("decode", decode)):
        if value is not None:
            if not hasattr(predictor, name):
                raise PricerError(f"--{name} applies to language models, not to a {predictor.kind!r} predictor")
            if name == "quant":
                from pricer.llm.models import check_quant

                check_quant(value)
            if name == "decode":
                from pricer.llm.decoding import check_decode

                check_decode(value)
            setattr(predictor, name, value)
    for model in language_models(predictor):
        model.gpus = model.gpus if gpus is None else gpus
        model.batch_size = batch_size or model.batch_size  # forward passes as large as the batches handed over
        model.liger = liger or model.liger
    if calibrate is not None:
        from pricer.data.items import read_items
        from pricer.predictors.intervals import held_out

        predictor.calibration = held_out(predictor, read_items(str(calibrate)), Path(str(calibrate)).name)
    return predictor


def language_models(predictor: Predictor):
    """The language models a predictor holds: itself, or those inside an ensemble or a recipe's run."""
    if hasattr(predictor, "gpus"):
        yield predictor
    for part in predictor.parts():
        yield from language_models(part)


def _load(spec: str | Path) -> Predictor:
    path = Path(spec)
    if not path.exists() and (str(spec) == "frontier" or str(spec).startswith("frontier:")):
        from pricer.predictors.frontier import frontier_from_spec

        return frontier_from_spec(str(spec))
    if str(spec) not in BUILTINS and not path.exists():
        from pricer.llm.adapters import hub_model, looks_like_hub_id

        if looks_like_hub_id(str(spec)):
            return hub_model(str(spec))
    if path.is_dir() and not (path / MANIFEST).exists() and (path / "adapter_config.json").exists():
        from pricer.llm.adapters import adapter_predictor

        return adapter_predictor(path)
    if not path.is_dir() and "@" in str(spec):
        from pricer.llm.checkpoints import split_revision

        run_dir, checkpoint = split_revision(str(spec))
        predictor = _load(run_dir)
        if not hasattr(predictor, "with_checkpoint"):
            raise PricerError(f"{run_dir}: a {predictor.kind!r} predictor has no checkpoints")
        return predictor.with_checkpoint(checkpoint)
    if path.is_dir() and not (path / MANIFEST).exists() and (path / "config.json").exists():
        return predictor_class("llm")(base=str(path))  # a plain transformers model directory: the LLM zero-shot
    if path.is_dir():
        return predictor_class(read_manifest(path)["kind"]).load(path)
    if str(spec) in BUILTINS:
        kind, params = BUILTINS[str(spec)]
        return predictor_class(kind)(**params)
    if str(spec) in RECIPES:
        raise PricerError(f"{spec} is a kind of predictor, not a fitted model: fit one first with "
                          f"`pricer fit {spec} --train FILE --out DIR`, then pass --model DIR")
    raise PricerError(f"{spec}: neither a model directory nor a built-in model ({', '.join(BUILTINS)}, frontier[:MODEL])")

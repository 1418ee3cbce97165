"""Does the sparse MLP gain from the MiniLM vector beside its TF-IDF input (`sparse-mlp-embed`)? On the V1M
validation split of experiments/stacker_sweep.py (fitted on train + train-extra + train-more, scored on dev[:1250])
with its five folds and cached member predictions: the network alone against sparse-mlp, and the boosted stacker with
it in sparse-mlp's place, beside the three members, and with fewer members; then with 8 networks or 512 hidden units.
Usage: python experiments/cpu_mlp_vectors.py [DATA_DIR] [SWEEP_DIR]   (run stacker_sweep.py ... v1m first; about
20 minutes on 2 cores once the MiniLM vectors are cached)
"""

import sys
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

from pricer.data.items import read_items
from pricer.evaluation.tester import bootstrap_interval
from pricer.predictors.ensemble import member_template, out_of_fold_predictions
from pricer.predictors.registry import predictor_class

DATA = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/amazon")
SWEEP = Path(sys.argv[2] if len(sys.argv) > 2 else "runs/stacker-sweep")
MEMBERS = ["tfidf", "embed-knn", "sparse-mlp"]
NEW = "sparse-mlp-embed"
# settings over sparse-mlp-embed's (the name's suffix: its cache file and its row), each in the stack
VARIANTS = {"": {}, "-networks8": {"networks": 8}, "-hidden512": {"hidden": 512}}


def main():
    pool = [it for f in ("train.jsonl", "train-extra.jsonl", "train-more.jsonl") for it in read_items(str(DATA / f))]
    held = read_items(str(DATA / "dev.jsonl[:1250]"))
    y, truth = np.log1p([it.price for it in pool]), np.array([it.price for it in held])
    _, kind, params = member_template(NEW)
    for name, settings in VARIANTS.items():
        path = SWEEP / f"v1m-{NEW}{name}.npz"  # the layout of stacker_sweep.py's cache
        if not path.exists():
            oof = out_of_fold_predictions(kind, params | settings, pool,
                                          np.random.default_rng(42).permutation(len(pool)) % 5)
            held_guesses = predictor_class(kind)(**(params | settings)).fit(pool).predict([it.text for it in held])
            np.savez(path, oof=oof, held=held_guesses)
    members = {n: np.load(SWEEP / f"v1m-{n}.npz") for n in MEMBERS + [f"{NEW}{v}" for v in VARIANTS]}
    for name in ["sparse-mlp"] + [f"{NEW}{v}" for v in VARIANTS]:
        print(f"{name} alone: out-of-fold ${np.mean(np.abs(members[name]['oof'] - np.expm1(y))):.2f}, "
              f"validation ${np.mean(np.abs(members[name]['held'] - truth)):.2f}")

    def boosted(names):
        oof = np.log1p(np.clip(np.column_stack([members[n]["oof"] for n in names]), 0, None))
        test = np.log1p(np.clip(np.column_stack([members[n]["held"] for n in names]), 0, None))
        return np.expm1(HistGradientBoostingRegressor(learning_rate=0.05, random_state=42).fit(oof, y).predict(test))

    runs = {"the three members (recipes/cpu-stack.toml before)": MEMBERS,
            f"{NEW} in sparse-mlp's place": ["tfidf", "embed-knn", NEW],
            f"{NEW} beside the three": MEMBERS + [NEW],
            f"embed-knn and {NEW}": ["embed-knn", NEW], f"tfidf and {NEW}": ["tfidf", NEW]}
    runs |= {f"embed-knn and {NEW}{v}": ["embed-knn", f"{NEW}{v}"] for v in VARIANTS if v}
    base = None
    for name, names in runs.items():
        errors = np.abs(boosted(names) - truth)
        base = errors if base is None else base
        low, high = bootstrap_interval(base - errors)
        print(f"  {name:50s} ${errors.mean():7.2f}  halves ${errors[:625].mean():.2f} / ${errors[625:].mean():.2f}  "
              f"gain ${(base - errors).mean():5.2f} (CI ${low:.2f} to ${high:.2f})")


if __name__ == "__main__":
    main()

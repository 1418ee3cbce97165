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

from pricer.predictors.ensemble import member_template
from pricer.predictors.registry import predictor_class
from v1m import boosted, cached_member, report, split

DATA = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/amazon")
SWEEP = Path(sys.argv[2] if len(sys.argv) > 2 else "runs/stacker-sweep")
MEMBERS = ["tfidf", "embed-knn", "sparse-mlp"]
NEW = "sparse-mlp-embed"
# settings over sparse-mlp-embed's (the name's suffix: its cache file and its row), each in the stack
VARIANTS = {"": {}, "-networks8": {"networks": 8}, "-hidden512": {"hidden": 512}}


def main():
    s = split(DATA)
    _, kind, params = member_template(NEW)
    members = {n: cached_member(SWEEP, n, None, s) for n in MEMBERS}
    for variant, settings in VARIANTS.items():
        members[f"{NEW}{variant}"] = cached_member(SWEEP, f"{NEW}{variant}",
                                                   lambda: predictor_class(kind)(**(params | settings)), s)
    for name in ["sparse-mlp"] + [f"{NEW}{v}" for v in VARIANTS]:
        print(f"{name} alone: out-of-fold ${np.mean(np.abs(members[name]['oof'] - np.expm1(s.y))):.2f}, "
              f"validation ${s.error(members[name]['held']):.2f}")

    runs = {"the three members (recipes/cpu-stack.toml before)": MEMBERS,
            f"{NEW} in sparse-mlp's place": ["tfidf", "embed-knn", NEW],
            f"{NEW} beside the three": MEMBERS + [NEW],
            f"embed-knn and {NEW}": ["embed-knn", NEW], f"tfidf and {NEW}": ["tfidf", NEW]}
    runs |= {f"embed-knn and {NEW}{v}": ["embed-knn", f"{NEW}{v}"] for v in VARIANTS if v}
    base = np.abs(boosted(members, MEMBERS, s) - s.truth)
    for label, names in runs.items():
        report(label, boosted(members, names, s), base, s)


if __name__ == "__main__":
    main()

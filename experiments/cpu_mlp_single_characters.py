"""Does the MiniLM CPU stack (`recipes/cpu-stack.toml`: embed-knn + sparse-mlp-embed) gain from one-character words in
the MLP's TF-IDF, as the mpnet stack did (experiments/cpu_mlp_mpnet_settings.py, variant chars1)? On both validation
slices (V1M: fitted on train + train-extra + train-more, scored on dev[:1250]; V2M: the pool and dev[:625], scored on
dev[625:1250]) with their five folds, the MLP alone and in the boosted stacker beside embed-knn, paired against the
recipe as it is.
Usage: python experiments/cpu_mlp_single_characters.py [DATA_DIR] [SWEEP_DIR]   (about 12 minutes on 2 cores, the
MiniLM vectors cached)
"""

import sys
from pathlib import Path

from pricer.predictors.registry import make_predictor
from pricer.predictors.sparse_mlp import SparseMLPPredictor
from v1m import boosted, cached_member, report, split

DATA = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/amazon")
SWEEP = Path(sys.argv[2] if len(sys.argv) > 2 else "runs/stacker-sweep")
MEMBERS = {"embed-knn": lambda: make_predictor("embed-knn"),
           "sparse-mlp-embed": lambda: SparseMLPPredictor(embedder="all-MiniLM-L6-v2"),
           "sparse-mlp-embed-chars1": lambda: SparseMLPPredictor(embedder="all-MiniLM-L6-v2", single_characters=True)}


def main():
    for second in (False, True):
        s = split(DATA, second=second)
        members = {name: cached_member(SWEEP, name, make, s) for name, make in MEMBERS.items()}
        print("second slice, dev[625:1250]" if second else "first slice, dev[:1250]")
        for name in members:
            print(f"  {name:26s} alone ${s.error(members[name]['held']):7.2f}")
        base = abs(boosted(members, ["embed-knn", "sparse-mlp-embed"], s) - s.truth)
        for mlp in ["sparse-mlp-embed", "sparse-mlp-embed-chars1"]:
            report(f"embed-knn + {mlp}", boosted(members, ["embed-knn", mlp], s), base, s, width=44)


if __name__ == "__main__":
    main()

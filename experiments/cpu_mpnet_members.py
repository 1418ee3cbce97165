"""Does all-mpnet-base-v2 (768 dimensions, 12 layers) make the CPU stack's members better than all-MiniLM-L6-v2? On
the V1M validation split of experiments/stacker_sweep.py (fitted on train + train-extra + train-more, scored on
dev[:1250]) with its five folds: embed-knn and sparse-mlp-embed with mpnet's vectors in MiniLM's place, alone and in
the boosted stacker, against `recipes/cpu-stack.toml` (embed-knn + sparse-mlp-embed on MiniLM).
mpnet takes 9x MiniLM's time on this CPU (about 95 minutes for the pool): embed on a lent GPU first with
experiments/embed_on_gpu.py, whose vectors this reads from pricer's cache under the model folder's path.
With SECOND=1, on the second validation slice (V2M: the pool and dev[:625], scored on dev[625:1250]).
Usage: [SECOND=1] python experiments/cpu_mpnet_members.py MPNET [DATA_DIR] [SWEEP_DIR]   (about 40 minutes on 2 cores)
"""

import os
import sys
from pathlib import Path

from pricer.predictors.embedding import EmbeddingKnnPredictor
from pricer.predictors.registry import make_predictor
from pricer.predictors.sparse_mlp import SparseMLPPredictor
from v1m import boosted, cached_member, report, split

MPNET = sys.argv[1]
DATA = Path(sys.argv[2] if len(sys.argv) > 2 else "../shared/data/amazon")
SWEEP = Path(sys.argv[3] if len(sys.argv) > 3 else "runs/stacker-sweep")
NEW = {"mpnet-knn": lambda: EmbeddingKnnPredictor(embedder=MPNET),
       "sparse-mlp-mpnet": lambda: SparseMLPPredictor(embedder=MPNET)}
STACKS = [["embed-knn", "sparse-mlp-embed"], ["mpnet-knn", "sparse-mlp-embed"], ["mpnet-knn", "sparse-mlp-mpnet"],
          ["embed-knn", "mpnet-knn", "sparse-mlp-embed"], ["embed-knn", "mpnet-knn", "sparse-mlp-mpnet"],
          ["embed-knn", "mpnet-knn", "sparse-mlp-embed", "sparse-mlp-mpnet"]]


def main():
    s = split(DATA, second=os.environ.get("SECOND") == "1")
    members = {name: cached_member(SWEEP, name, make, s) for name, make in NEW.items()}
    for name in ["embed-knn", "sparse-mlp-embed"]:  # cached by cpu_mlp_vectors.py on the first slice
        members[name] = cached_member(SWEEP, name, lambda: make_predictor(name), s)
    for name in sorted(members):
        print(f"{name:18s} alone ${s.error(members[name]['held']):7.2f}")
    base = abs(boosted(members, STACKS[0], s) - s.truth)
    for names in STACKS:
        report(" + ".join(names), boosted(members, names, s), base, s, width=62)


if __name__ == "__main__":
    main()

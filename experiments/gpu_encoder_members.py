"""Is a sentence model fine-tuned on the price (`pricer.predictors.encoder`, the `encoder` kind) a stronger CPU stack
member than a kNN or an MLP over its frozen vectors? On the validation split of experiments/v1m.py (the pool with its
five folds, scored on dev[:1250]; with SECOND=1 the second slice): the member fitted on each fold's other items and on
the whole pool, cached as SWEEP/{v1m,v2m}-ft-NAME.npz, which the CPU experiments stack with the cached members.
Fitting it on 2 CPU cores would take about 7.5 hours (all-MiniLM-L6-v2): run it on a lent GPU (about 7 minutes there).
Usage: [SECOND=1] python experiments/gpu_encoder_members.py DATA_DIR SWEEP_DIR NAME [EPOCHS] [LR]
"""

import os
import sys
from pathlib import Path

from pricer.predictors.encoder import EncoderRegressor
from v1m import cached_member, split

DATA, SWEEP, NAME = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
EPOCHS = int(sys.argv[4]) if len(sys.argv) > 4 else 3
LR = float(sys.argv[5]) if len(sys.argv) > 5 else 5e-5


def main():
    s = split(DATA, second=os.environ.get("SECOND") == "1")
    member = cached_member(SWEEP, f"ft-{NAME}", lambda: EncoderRegressor(base=NAME, epochs=EPOCHS, learning_rate=LR), s)
    print(f"ft-{NAME} alone on {s.tag}'s held items: ${s.error(member['held']):.2f}")


if __name__ == "__main__":
    main()

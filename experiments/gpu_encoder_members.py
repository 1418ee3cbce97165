"""Is a sentence model fine-tuned on the price (`pricer.predictors.encoder`, the `encoder` kind) a stronger CPU stack
member than a kNN or an MLP over its frozen vectors? On the validation split of experiments/v1m.py (the pool with its
five folds, scored on dev[:1250]; with SECOND=1 the second slice): the member fitted on each fold's other items and on
the whole pool, cached as SWEEP/{v1m,v2m}-ft-NAME.npz, which the CPU experiments stack with the cached members.
Fitting it on 2 CPU cores would take about 7.5 hours (all-MiniLM-L6-v2): run it on a lent GPU (about 7 minutes there).
A setting other than the kind's own (EPOCHS 3, LR 5e-5, MAX_LENGTH 256 tokens) is named in the cache file's name.
Usage: [SECOND=1] python experiments/gpu_encoder_members.py DATA_DIR SWEEP_DIR NAME [EPOCHS] [LR] [MAX_LENGTH]
"""

import os
import sys
from pathlib import Path

from pricer.predictors.encoder import EncoderRegressor
from v1m import cached_member, split

DATA, SWEEP, NAME = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
EPOCHS = int(sys.argv[4]) if len(sys.argv) > 4 else 3
LR = float(sys.argv[5]) if len(sys.argv) > 5 else 5e-5
MAX_LENGTH = int(sys.argv[6]) if len(sys.argv) > 6 else 256
SETTINGS = "".join(f"-{key}{value}" for key, value, default in
                   [("epochs", EPOCHS, 3), ("lr", LR, 5e-5), ("len", MAX_LENGTH, 256)] if value != default)


def main():
    s = split(DATA, second=os.environ.get("SECOND") == "1")
    name = f"ft-{NAME}{SETTINGS}"
    member = cached_member(SWEEP, name, lambda: EncoderRegressor(base=NAME, epochs=EPOCHS, learning_rate=LR,
                                                                 max_length=MAX_LENGTH), s)
    print(f"{name} alone on {s.tag}'s held items: ${s.error(member['held']):.2f}")


if __name__ == "__main__":
    main()

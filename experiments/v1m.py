"""The V1M validation split of experiments/stacker_sweep.py, as the CPU experiments share it: the pool (train +
train-extra + train-more, no dev item) with five folds, dev[:1250] to score on, each member's out-of-fold and
validation predictions cached as SWEEP/v1m-NAME.npz, and the boosted stacker (what `stacker = "boosted"` fits) on
their log prices, with paired gains against a baseline stack. The second slice, V2M (`split(data, second=True)`):
the pool and dev[:625], scored on dev[625:1250], cached as SWEEP/v2m-NAME.npz.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor

from pricer.data.items import Item, read_items
from pricer.evaluation.tester import bootstrap_interval


@dataclass
class Split:
    pool: list[Item]
    held: list[Item]
    y: np.ndarray  # the pool's log(1 + price)
    truth: np.ndarray  # the held items' prices
    folds: np.ndarray  # each pool item's fold, as stacker_sweep.py drew them
    tag: str = "v1m"  # the cache files' prefix

    def error(self, guesses) -> float:
        return float(np.mean(np.abs(np.asarray(guesses) - self.truth)))


def split(data: Path, second: bool = False) -> Split:
    pool = [it for f in ("train.jsonl", "train-extra.jsonl", "train-more.jsonl") for it in read_items(str(data / f))]
    pool += read_items(str(data / "dev.jsonl[:625]")) if second else []
    held = read_items(str(data / ("dev.jsonl[625:1250]" if second else "dev.jsonl[:1250]")))
    return Split(pool, held, np.log1p([it.price for it in pool]), np.array([it.price for it in held]),
                 np.random.default_rng(42).permutation(len(pool)) % 5, "v2m" if second else "v1m")


def cached_member(sweep: Path, name: str, make, s: Split, keep=None) -> dict:
    """{"oof", "held"} of the member that make() builds unfitted, from SWEEP/v1m-NAME.npz or fitted now on each
    fold's other items (only those where keep is true, when given) and on the whole pool."""
    path = sweep / f"{s.tag}-{name}.npz"
    if not path.exists():
        keep = np.ones(len(s.pool), bool) if keep is None else keep
        oof = np.zeros(len(s.pool))
        for k in range(5):
            train = [it for it, f, ok in zip(s.pool, s.folds, keep) if f != k and ok]
            oof[s.folds == k] = make().fit(train).predict([it.text for it, f in zip(s.pool, s.folds) if f == k])
            print(f"{name}: fold {k + 1}/5", flush=True)
        held = make().fit([it for it, ok in zip(s.pool, keep) if ok]).predict([it.text for it in s.held])
        np.savez(path, oof=oof, held=held)
    return dict(np.load(path))


def boosted(members: dict, names: list[str], s: Split) -> np.ndarray:
    """The boosted stacker fitted on the members' out-of-fold log prices, its guesses for the held items."""
    oof = np.log1p(np.clip(np.column_stack([members[n]["oof"] for n in names]), 0, None))
    test = np.log1p(np.clip(np.column_stack([members[n]["held"] for n in names]), 0, None))
    return np.expm1(HistGradientBoostingRegressor(learning_rate=0.05, random_state=42).fit(oof, s.y).predict(test))


def report(label: str, guesses, base_errors, s: Split, width: int = 50) -> None:
    """One row: the validation error, its halves, and the paired gain over the baseline's errors with its 95% CI."""
    errors = np.abs(np.asarray(guesses) - s.truth)
    low, high = bootstrap_interval(base_errors - errors)
    half = len(errors) // 2
    print(f"  {label:{width}s} ${errors.mean():7.2f}  halves ${errors[:half].mean():.2f} / ${errors[half:].mean():.2f}  "
          f"gain ${(base_errors - errors).mean():5.2f} (CI ${low:.2f} to ${high:.2f})")

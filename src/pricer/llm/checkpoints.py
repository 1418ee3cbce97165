"""A run's checkpoints as revisions: listed, and the one `pricer select` chose (evaluation/selection.py scores them)
read back for `RUN@best`.

A run is a local training directory (its `checkpoint-N` folders) or a hub repository `USER/RUN` (its commits; offline,
the revisions in the hub's local cache).
"""

import json
import re
from datetime import datetime, timezone
from pathlib import Path

from pricer.errors import PricerError, first_line
from pricer.storage import atomic_write_json, cache_dir

BEST_FILE = "best.json"


def iso_time(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat(timespec="seconds")


def is_local_run(run: str) -> bool:
    return Path(run).is_dir()


def list_checkpoints(run: str) -> list[dict]:
    """Oldest first: {"revision", "step", "loss", "time"} (step and loss where known)."""
    rows = local_checkpoints(Path(run)) if is_local_run(run) else hub_checkpoints(run)
    if not rows:
        raise PricerError(f"{run}: no checkpoints (a run keeps checkpoint-N folders; a hub run has commits)")
    return rows


def checkpoint_step(folder: Path) -> int:
    return int(folder.name.rsplit("-", 1)[1])


def checkpoint_folders(run: Path) -> list[Path]:
    """A run's checkpoint-N folders, oldest step first."""
    return sorted((f for f in run.glob("checkpoint-*") if f.name.rsplit("-", 1)[1].isdigit()), key=checkpoint_step)


def local_checkpoints(run: Path) -> list[dict]:
    rows = []
    for folder in checkpoint_folders(run):
        losses = []
        if (folder / "trainer_state.json").exists():
            history = json.loads((folder / "trainer_state.json").read_text()).get("log_history", [])
            losses = [e["loss"] for e in history if "loss" in e and e.get("step", 0) <= checkpoint_step(folder)]
        rows.append({"revision": folder.name, "step": checkpoint_step(folder), "loss": losses[-1] if losses else None,
                     "time": iso_time(folder.stat().st_mtime)})
    return rows


def hub_checkpoints(repo_id: str) -> list[dict]:
    """The repository's commits (the Trainer names each "Training in progress, step N"); offline, the revisions
    its local cache holds."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return cached_revisions(repo_id)
    from huggingface_hub import HfApi

    try:
        commits = HfApi().list_repo_commits(repo_id)
    except Exception as e:
        raise PricerError(f"{repo_id}: cannot list its commits on the Hugging Face hub ({first_line(e)})") from None
    rows = []
    for commit in reversed(commits):
        step = re.search(r"step (\d+)", commit.title or "")
        rows.append({"revision": commit.commit_id, "step": int(step[1]) if step else None, "loss": None,
                     "time": commit.created_at.isoformat(timespec="seconds"), "title": commit.title})
    return rows


def cached_revisions(repo_id: str) -> list[dict]:
    """The snapshots of the hub's cache layout (models--USER--RUN/snapshots/COMMIT, refs/NAME), oldest first."""
    from huggingface_hub import constants

    repo = Path(constants.HF_HUB_CACHE) / ("models--" + repo_id.replace("/", "--"))
    snapshots = sorted((repo / "snapshots").glob("*"), key=lambda p: (p.stat().st_mtime, p.name)) if repo.is_dir() else []
    if not snapshots:
        raise PricerError(f"{repo_id}: not in the local Hugging Face cache (offline: HF_HUB_OFFLINE is set)")
    refs = {}
    for ref in (repo / "refs").glob("**/*"):
        if ref.is_file():
            refs.setdefault(ref.read_text().strip(), []).append(str(ref.relative_to(repo / "refs")))
    return [{"revision": snap.name, "step": None, "loss": None, "refs": refs.get(snap.name, []),
             "time": iso_time(snap.stat().st_mtime)}
            for snap in snapshots]


def best_file(run: str) -> Path:
    """Where the choice of `pricer select` is kept: in a local run, or under the cache for a hub run."""
    if is_local_run(run):
        return Path(run) / BEST_FILE
    return cache_dir() / "selected" / (run.replace("/", "--") + ".json")


def record_best(run: str, choice: dict) -> Path:
    path = best_file(run)
    atomic_write_json(path, choice)
    return path


def best_revision(run: str) -> str:
    """The revision `pricer select` chose for `RUN@best`."""
    path = best_file(run)
    if not path.exists():
        raise PricerError(f"{run}@best: no checkpoint chosen yet; run `pricer select {run} --data VALIDATION` first")
    return json.loads(path.read_text())["revision"]


def split_revision(spec: str) -> tuple[str, str | None]:
    """`RUN@REVISION` as (RUN, REVISION), with `best` read as the revision `pricer select` chose; (RUN, None) without
    an `@`. A revision is a checkpoint of a local run (`checkpoint-500`, `500`) or a commit, branch or tag on the hub."""
    run, sep, revision = str(spec).rpartition("@")
    if not sep:
        return str(spec), None
    return run, best_revision(run) if revision == "best" else revision

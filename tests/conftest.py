import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PRICER_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Embedding vectors go to a cache of the test session's own, so no test depends on an earlier run."""
    os.environ["PRICER_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def amazon() -> Path:
    path = SHARED_DATA / "amazon"
    if not (path / "dev.jsonl").exists():
        pytest.skip(f"shared data not found at {path} (set PRICER_DATA)")
    return path


def run_cli(*args, cwd=None, env=None) -> subprocess.CompletedProcess:
    """The real `pricer` command in a new process."""
    return subprocess.run(
        [sys.executable, "-m", "pricer.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        timeout=600,
    )

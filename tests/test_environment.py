"""The test environment: the lock file's packages at their versions, and the shared data where the suite reads it."""

import re
from importlib.metadata import PackageNotFoundError, version

from conftest import REPO

LOCK_LINE = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;\\]+)")


def locked(path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = LOCK_LINE.match(line)
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


def test_installed_packages_are_the_locked_versions():
    pins = locked(REPO / "requirements.lock") | locked(REPO / "requirements-nodeps.lock")
    assert len(pins) > 50 and "transformers" in pins and "torch" not in pins
    wrong = {}
    for name, pinned in pins.items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = None
        if installed != pinned:
            wrong[name] = (pinned, installed)
    assert not wrong, f"not the locked versions (locked, installed): {wrong}; run `make install` (or `make lock`)"
    assert version("torch").startswith("2.13.0")  # the one package outside the lock: the Makefile pins it


def test_a_run_without_the_shared_data_stops_in_one_line(tmp_path):
    """A wrong PRICER_DATA must not pass as a green run with half the suite skipped."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PRICER_DATA": str(tmp_path / "nowhere")}
    env.pop("PRICER_SKIP_DATA", None)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_layout.py"],
                            capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode == 4 and len(lines) == 1 and "shared data not found" in lines[0], lines

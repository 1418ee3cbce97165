"""The environment `make` builds is the lock file's: every locked package installed at its locked version."""

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

"""Small file helpers: every file pricer writes lands whole or not at all."""

import json
import os
import tempfile
import tomllib
from pathlib import Path

from pricer.errors import PricerError


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def cache_dir() -> Path:
    return Path(os.environ.get("PRICER_CACHE", Path.home() / ".cache" / "pricer"))


def read_toml(path: str | Path) -> dict:
    """A recipe file's tables, or one line that says why it cannot be read."""
    try:
        return tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise PricerError(f"{path}: no such recipe file") from None
    except tomllib.TOMLDecodeError as e:
        raise PricerError(f"{path}: not valid TOML ({e})") from None

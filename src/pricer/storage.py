"""Small file helpers: every file pricer writes lands whole or not at all."""

import hashlib
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


def join_checked(parts: list[Path], target: Path, size: int, sha256: str) -> str | None:
    """The files joined in order into `target`, which appears whole or not at all (another process may be joining it
    too); the hash is taken while joining. None when the result has the expected size and sha256, else what it has."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as out:
            for path in parts:
                with open(path, "rb") as part:
                    while chunk := part.read(16 << 20):
                        digest.update(chunk)
                        out.write(chunk)
        joined = Path(tmp).stat().st_size
        if joined != size or digest.hexdigest() != sha256:
            return f"{joined:,} bytes with sha256 {digest.hexdigest()[:12]}..., not the expected {size:,} bytes / {sha256[:12]}..."
        os.replace(tmp, target)
        return None
    finally:
        Path(tmp).unlink(missing_ok=True)


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

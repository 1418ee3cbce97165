"""Bundled bases split over numbered packages: joined once in order, checked by size and hash, a missing part named."""

import hashlib
import subprocess
import sys

import pytest

from pricer import PricerError
from pricer.llm.bundled import SPLIT, SplitGGUF, join_parts, part_paths


@pytest.fixture
def parts(tmp_path, monkeypatch):
    """Three real packages on sys.path, fakepart1..3, each holding data/partNN.bin: a file of 3 x 1000 bytes."""
    data = [bytes([i]) * 1000 for i in (1, 2, 3)]
    for i, chunk in enumerate(data, start=1):
        package = tmp_path / "site" / f"fakepart{i}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"part{i:02d}.bin").write_bytes(chunk)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    whole = b"".join(data)
    return SplitGGUF("fakepart{}", 3, "data/part{:02d}.bin", "0.1", len(whole), hashlib.sha256(whole).hexdigest()), whole


def test_parts_join_in_order_once_and_the_hash_is_checked(parts, tmp_path):
    split, whole = parts
    target = join_parts("fake", split, tmp_path / "cache" / "fake.gguf")
    assert target.read_bytes() == whole
    wrong = SplitGGUF(split.package, 3, split.data, "0.1", split.size, "0" * 64)
    with pytest.raises(PricerError, match="not the expected 3,000 bytes"):
        join_parts("fake", wrong, tmp_path / "cache" / "other.gguf")
    assert not list((tmp_path / "cache").glob("*.partial")) and not (tmp_path / "cache" / "other.gguf").exists()
    for part in part_paths("fake", split):
        part.unlink()  # joined already: the second call must not read the parts
    assert join_parts("fake", split, target) == target and target.read_bytes() == whole


def test_a_missing_part_is_named_with_the_command_that_installs_it(parts, tmp_path):
    split, _ = parts
    (tmp_path / "site" / "fakepart2" / "__init__.py").unlink()
    (tmp_path / "site" / "fakepart2" / "data" / "part02.bin").unlink()
    (tmp_path / "site" / "fakepart2" / "data").rmdir()
    (tmp_path / "site" / "fakepart2").rmdir()
    sys.modules.pop("fakepart2", None)
    with pytest.raises(PricerError, match=r"part 2 of 3 is not installed \(fakepart2\).*make qwen"):
        part_paths("fake", split)


def test_the_qwen_entries_are_the_packages_make_qwen_installs():
    """Every part each split model names is pinned, at the version it names, in requirements-qwen.lock (what
    `make qwen` installs), and the lock pins no part beyond them."""
    from conftest import REPO
    from test_environment import locked

    pins = locked(REPO / "requirements-qwen.lock")
    named = {split.distribution(i): split.version for split in SPLIT.values() for i in range(1, split.parts + 1)}
    assert named == pins


@pytest.mark.slow
def test_two_processes_converting_the_bundled_model_at_once_both_get_it(tmp_path):
    """Two trainings started together on a fresh cache (an ensemble's fold beside a single run) once collided on the
    de-quantised copy; now each writes its own and the later one keeps the first."""
    import os

    code = "from pricer.llm.models import resolve_base; print(resolve_base('smollm2-135m'))"
    env = {**os.environ, "PRICER_CACHE": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    results = [(p.returncode, out.strip(), err) for p in procs for out, err in [p.communicate(timeout=300)]]
    assert [r[0] for r in results] == [0, 0], results[0][2][-2000:] + results[1][2][-2000:]
    assert results[0][1] == results[1][1] == str(tmp_path / "models" / "smollm2-135m")
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["smollm2-135m"]  # no half-written copies left

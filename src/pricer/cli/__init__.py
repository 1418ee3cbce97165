"""The `pricer` command: a Typer app whose commands live in one module per stage; `main` runs it.

An error you can fix prints as one line and exits with code 2.
"""

import logging
import sys

# each module registers its commands, in this order in the help: the pipeline's
from pricer.cli import data, models, evaluation, serving, deals, catalog, index, bench, demo  # noqa: F401, I001
from pricer.cli.common import app, dollars, err  # noqa: F401 (the command's API for tests and scripts)
from pricer.cli.models import refuse_recipe_keys_as_flags
from pricer.errors import PricerError


class _StderrLines(logging.Formatter):
    """Library messages as the command's own lines on stderr: warnings say so, the rest as written."""

    def format(self, record: logging.LogRecord) -> str:
        return ("warning: " if record.levelno >= logging.WARNING else "") + record.getMessage()


def main() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_StderrLines())
    logging.getLogger("pricer").addHandler(handler)
    logging.getLogger("pricer").setLevel(logging.INFO)
    try:
        refuse_recipe_keys_as_flags(sys.argv[1:])
        app()
    except PricerError as e:
        err.print(f"[red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted: finished work is saved; run the same command again to resume")
        sys.exit(130)

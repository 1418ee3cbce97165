"""pricer: estimate a product's price from its text.

From Python: `pricer.read_items`, `pricer.fit`, `pricer.load_predictor`, `pricer.evaluate` (see pricer/api.py).
They are imported on first use, so `import pricer` stays light.
"""

__version__ = "0.1.0"
__all__ = ["PricerError", "evaluate", "fit", "load_predictor", "read_items"]


class PricerError(Exception):
    """A problem the user can fix (bad file, bad flag, wrong model directory); shown as one line, no traceback."""


def first_line(error: BaseException) -> str:
    """The first line of an error's message (a library's can run to pages), or its type when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def __getattr__(name: str):
    if name in ("evaluate", "fit", "load_predictor", "read_items"):
        from pricer import api

        return getattr(api, name)
    raise AttributeError(f"module 'pricer' has no attribute {name!r}")

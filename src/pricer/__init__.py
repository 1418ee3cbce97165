"""pricer: estimate a product's price from its text.

From Python: `pricer.read_items`, `pricer.fit`, `pricer.load_predictor`, `pricer.evaluate` (see pricer/api.py).
They are imported on first use, so `import pricer` stays light.
"""

__version__ = "0.1.0"
__all__ = ["PricerError", "evaluate", "fit", "load_predictor", "read_items"]

from pricer.errors import PricerError, first_line  # noqa: E402, F401


def __getattr__(name: str):
    if name in ("evaluate", "fit", "load_predictor", "read_items"):
        from pricer import api

        return getattr(api, name)
    raise AttributeError(f"module 'pricer' has no attribute {name!r}")

"""pricer: estimate a product's price from its text."""

__version__ = "0.1.0"


class PricerError(Exception):
    """A problem the user can fix (bad file, bad flag, wrong model directory); shown as one line, no traceback."""

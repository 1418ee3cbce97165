"""The error a user can fix, and how a library's error is shortened for a one-line message."""


class PricerError(Exception):
    """A problem the user can fix (bad file, bad flag, wrong model directory); shown as one line, no traceback."""


def first_line(error: BaseException) -> str:
    """The first line of an error's message (a library's can run to pages), or its type when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__

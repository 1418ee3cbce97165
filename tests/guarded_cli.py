"""`python tests/guarded_cli.py ARGS...` is `pricer ARGS...` with the suite's deprecation guard: a DeprecationWarning or
FutureWarning raised by pricer's own call of a library writes DEPRECATED_MARK and the message to stderr, which the
tests' command helpers then fail on (the guard of conftest.py covers only the test process). Ctrl-C raises
KeyboardInterrupt as in a terminal, also where the suite runs as a background job (whose children inherit an ignored
SIGINT, and Python then installs no handler for it)."""

import inspect
import signal
import sys
import warnings

from conftest import _deprecated_api_called_by_pricer

DEPRECATED_MARK = "pricer calls a deprecated API:"


def install_guard() -> None:
    original = warnings.warn

    def warn(message, category=None, stacklevel=1, source=None, **kwargs):
        kind = category or (type(message) if isinstance(message, Warning) else UserWarning)
        if issubclass(kind, (DeprecationWarning, FutureWarning)) and _deprecated_api_called_by_pricer(inspect.currentframe().f_back):
            print(f"{DEPRECATED_MARK} {message}", file=sys.stderr, flush=True)
        return original(message, category, stacklevel + 1, source, **kwargs)

    warnings.warn = warn


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    install_guard()
    from pricer.cli import main

    sys.argv[0] = "pricer"
    main()

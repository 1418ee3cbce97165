"""`python tests/guarded_cli.py ARGS...` is `pricer ARGS...` with the suite's deprecation guard: a DeprecationWarning or
FutureWarning raised by pricer's own call of a library writes DEPRECATED_MARK and the message to stderr, which the
tests' command helpers then fail on (the guard of conftest.py covers only the test process). Ctrl-C raises
KeyboardInterrupt as in a terminal, also where the suite runs as a background job (whose children inherit an ignored
SIGINT, and Python then installs no handler for it)."""

import signal
import sys
import warnings

from conftest import warn_reporting_our_deprecations

DEPRECATED_MARK = "pricer calls a deprecated API:"


def install_guard() -> None:
    warnings.warn = warn_reporting_our_deprecations(
        warnings.warn, lambda message: print(f"{DEPRECATED_MARK} {message}", file=sys.stderr, flush=True))


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    install_guard()
    from pricer.cli import main

    sys.argv[0] = "pricer"
    main()

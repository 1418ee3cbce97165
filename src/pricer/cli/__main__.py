"""`python -m pricer.cli ARGS` is `pricer ARGS`."""

from pricer.cli import main

if __name__ == "__main__":
    main()

"""`pricer ARGS...` with this process's share of its GPU capped: `python experiments/capped.py 0.49 train ...`.

Two trainings on one card each see about half of it; the allocator frees its own cache before it reaches the cap
instead of taking memory the other process needs.
"""

import sys

import torch

from pricer.cli import main

if __name__ == "__main__":
    fraction = float(sys.argv.pop(1))
    if torch.cuda.is_available():
        torch.cuda.set_per_process_memory_fraction(fraction)
    sys.argv[0] = "pricer"
    main()

"""Devices and batch layouts: a replica per GPU, left padding for inference, right padding or one flattened row for
training.
"""

import os

import torch


def inference_devices(gpus: int) -> list[str]:
    """One model replica per device: the first `gpus` GPUs (0: all of them), this process's own GPU under
    `accelerate launch`, or the CPU."""
    if not torch.cuda.is_available():
        return ["cpu"]
    if "LOCAL_RANK" in os.environ:
        return [f"cuda:{os.environ['LOCAL_RANK']}"]
    count = torch.cuda.device_count()
    return [f"cuda:{i}" for i in range(min(gpus, count) if gpus > 0 else count)]


def device_of(model) -> torch.device:
    return next(model.parameters()).device


def left_padded(sequences: list[list[int]], pad_token_id: int, device):
    """A batch padded on the left, so that the last position of every row is its own last token."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, width - len(seq) :] = torch.tensor(seq)
        mask[row, width - len(seq) :] = 1
    return ids.to(device), mask.to(device)


def right_padded(rows: list[list], value) -> torch.Tensor:
    """Rows of different lengths as one tensor, `value` filling their ends: the training layout."""
    width = max(len(r) for r in rows)
    return torch.tensor([r + [value] * (width - len(r)) for r in rows])


def flattened(examples: list[dict]) -> dict:
    """A batch's examples end to end in one row, with positions that restart at 0 for each: transformers reads the
    restarts as sequence boundaries and builds a block-diagonal causal mask, so no token attends across examples and
    no FLOP goes to padding. Without a cache only: with one it does not look for the restarts."""
    return {
        "input_ids": torch.tensor([[t for e in examples for t in e["input_ids"]]]),
        "position_ids": torch.tensor([[p for e in examples for p in range(len(e["input_ids"]))]]),
        "use_cache": False,
    }

"""The digit search's prompt cache: each prompt runs through the model once, the beams' digits are fed after it."""

import copy

import torch

from pricer.llm.batching import device_of, left_padded


class CachedPrompts:
    """`continuations` for the digit search over one batch of prompts: each prompt runs through the model once and
    keeps its KV cache; a beam's later steps feed only its few digit tokens after the cached prompt. Without the
    cache every step of every beam re-reads the whole prompt (about 14 prompt passes per item).

    A step's beams go through the model in passes of up to `rows_per_pass` rows, each row with its own copy of its
    prompt's cache: one pass per step reads the weights once for all the beams. On a GPU a pass takes no more rows
    than its free memory holds (rows_that_fit). The log-probabilities stay on the model's device (the search copies
    out the digit tokens' columns only)."""

    def __init__(self, model, prompts: list[list[int]], pad_token_id: int, rows_per_pass: int):
        self.model = model
        device = device_of(model)
        ids, self.mask = left_padded(prompts, pad_token_id, device)
        out = model(input_ids=ids, attention_mask=self.mask, use_cache=True, logits_to_keep=1)
        self.cache = out.cache
        self.first = torch.log_softmax(out.logits[:, -1, :].float(), dim=-1)
        self.rows_per_pass = rows_that_fit(rows_per_pass, len(prompts), self._bytes_per_row(len(prompts)),
                                           _free_bytes(device))

    def _bytes_per_row(self, rows: int) -> int:
        """A beam row's copy of its prompt's cache, and its log-probabilities (a few float copies of the vocabulary)."""
        layers = getattr(self.cache, "layers", [])
        cache = sum(t.nbytes for layer in layers for t in (layer.keys, layer.values) if t is not None) // rows
        return cache + 4 * 4 * self.first.shape[1]

    def __call__(self, pairs: list[tuple[int, list[int]]]) -> torch.Tensor:
        out = torch.empty((len(pairs), self.first.shape[1]), device=self.first.device)
        by_length: dict[int, list[int]] = {}
        for row, (_, ids) in enumerate(pairs):
            by_length.setdefault(len(ids), []).append(row)
        for length, rows in by_length.items():
            if length == 0:
                out[rows] = self.first[[pairs[r][0] for r in rows]]
                continue
            for start in range(0, len(rows), self.rows_per_pass):
                part = rows[start : start + self.rows_per_pass]
                out[part] = self._after_prompt([pairs[r][0] for r in part], [pairs[r][1] for r in part])
        return out

    def _after_prompt(self, prompt_rows: list[int], suffixes: list[list[int]]) -> torch.Tensor:
        device = self.mask.device
        index = torch.tensor(prompt_rows, device=device)
        cache = copy.deepcopy(self.cache)  # the forward pass appends to the cache it is given
        cache.reorder_cache(index)  # one row of the prompts' cache per beam
        suffix = torch.tensor(suffixes, device=device)
        mask = torch.cat([self.mask[index], torch.ones_like(suffix)], dim=1)
        logits = self.model(input_ids=suffix, attention_mask=mask, cache=cache, logits_to_keep=1).logits
        return torch.log_softmax(logits[:, -1, :].float(), dim=-1)


def rows_that_fit(wanted: int, prompts: int, bytes_per_row: int, free_bytes: int | None) -> int:
    """`wanted` rows a pass, or as many as three quarters of the free memory hold beside the pass's copy of the
    prompts' own cache; never fewer than the prompts. free_bytes None (the CPU): no limit."""
    if free_bytes is None:
        return wanted
    return max(prompts, min(wanted, int(0.75 * free_bytes) // max(bytes_per_row, 1) - prompts))


def _free_bytes(device: torch.device) -> int | None:
    """What the GPU has free, counting the blocks PyTorch holds in reserve unused."""
    if device.type != "cuda":
        return None
    reserved_unused = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    return torch.cuda.mem_get_info(device)[0] + reserved_unused

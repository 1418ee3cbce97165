"""The digit search's prompt cache: each prompt runs through the model once, the beams' digits are fed after it."""

import copy

import torch

from pricer.llm.batching import device_of, left_padded


class CachedPrompts:
    """`continuations` for the digit search over one batch of prompts: each prompt runs through the model once and
    keeps its KV cache; a beam's later steps feed only its few digit tokens after the cached prompt. Without the
    cache every step of every beam re-reads the whole prompt (about 14 prompt passes per item).

    A step's beams go through the model in passes of up to `rows_per_pass` rows, each row with its own copy of its
    prompt's cache: one pass per step reads the weights once for all the beams. The log-probabilities stay on the
    model's device (the search copies out the digit tokens' columns only)."""

    def __init__(self, model, prompts: list[list[int]], pad_token_id: int, rows_per_pass: int):
        self.model, self.rows_per_pass = model, rows_per_pass
        ids, self.mask = left_padded(prompts, pad_token_id, device_of(model))
        out = model(input_ids=ids, attention_mask=self.mask, use_cache=True, logits_to_keep=1)
        self.cache = out.cache
        self.first = torch.log_softmax(out.logits[:, -1, :].float(), dim=-1)

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

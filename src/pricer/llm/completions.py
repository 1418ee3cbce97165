"""The examples of a language model that writes the price: prompt + `Price is $` + the price's digits, the loss on the
digits alone.

Why the loss is ours: it falls on the last few tokens of each example (the price), yet a causal LM computes logits,
in fp32 for the loss, at every position: for a 128K-token vocabulary that is most of the activation memory. So the
model is asked for its final hidden states and one position of logits, and the output layer is applied to the price
positions alone. Batches are padded on the right: with left padding a padded row attends to nothing, and CUDA's
attention kernels can return NaN there, which the backward pass spreads into every gradient.
"""

import torch

from pricer.data.items import Item
from pricer.llm.batching import flattened, right_padded
from pricer.llm.prompts import MAX_PROMPT_TOKENS, QUESTION, completion, prompt_token_ids


class CompletionExamples(torch.utils.data.Dataset):
    """Prompt + completion token ids; the labels hide the prompt (-100), so the loss falls on the price alone."""

    def __init__(self, items: list[Item], tokenizer, max_length: int, contexts: list[str] | None = None,
                 question: str = QUESTION):
        answers = [tokenizer.encode(completion(it.price), add_special_tokens=False) for it in items]
        budgets = [min(MAX_PROMPT_TOKENS, max_length - len(a) - 2) for a in answers]  # room for special tokens
        prompts = prompt_token_ids([it.text for it in items], tokenizer, budgets, contexts, question)
        self.examples = []
        for prompt_ids, answer_ids in zip(prompts, answers):
            ids = prompt_ids + answer_ids
            labels = [-100] * len(prompt_ids) + answer_ids
            self.examples.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, i):
        return self.examples[i]


class PaddedCompletions:
    """Collator: pads on the right, and asks the model for its final hidden states instead of all its logits."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, examples: list[dict]) -> dict:
        return {
            "input_ids": right_padded([e["input_ids"] for e in examples], self.pad_token_id),
            "attention_mask": right_padded([e["attention_mask"] for e in examples], 0),
            "labels": right_padded([e["labels"] for e in examples], -100),
            "output_hidden_states": True,
            "logits_to_keep": 1,  # the model's own logits: one position, unused
        }


class PackedCompletions:
    """Collator for padding-free training (`padding_free = true`): the same examples, loss and gradients as
    PaddedCompletions. Each example's first label is a prompt token's -100, so the shifted loss never crosses a join."""

    def __call__(self, examples: list[dict]) -> dict:
        return {
            **flattened(examples),
            "labels": torch.tensor([[label for e in examples for label in e["labels"]]]),
            "output_hidden_states": True,
            "logits_to_keep": 1,
        }


def completion_loss_for(model):
    """The loss function (for the Trainer's compute_loss_func): the output layer applied at the price positions only,
    where the hidden state at t predicts token t + 1. Gemma-style logit soft-capping is kept."""
    output_layer = model.get_output_embeddings()
    cap = getattr(model.config.get_text_config(), "final_logit_softcapping", None)

    def completion_loss(outputs, labels, num_items_in_batch=None):
        hidden, targets = outputs.hidden_states[-1][:, :-1], labels[:, 1:]
        scored = targets != -100
        logits = output_layer(hidden[scored].to(output_layer.weight.dtype)).float()  # autocast may hand fp32 states
        if cap:
            logits = cap * torch.tanh(logits / cap)
        loss = torch.nn.functional.cross_entropy(logits, targets[scored], reduction="sum")
        return loss / (num_items_in_batch if num_items_in_batch is not None else scored.sum())

    return completion_loss

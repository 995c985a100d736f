"""A downstream task the byte-level models can fail: which line comes next?

For a line of held-out source, the model sees the bytes just before it and four candidate
lines: the true one and three others from elsewhere in the held-out files, with the same
indentation and the same length in bytes (so neither the indentation nor the length gives the
answer away, and summed log-likelihoods compare like with like). It picks the candidate with
the highest summed log-likelihood; chance is 1/4. Alongside the accuracy it reports the task
loss: bits per byte on the true continuation.

``NextLineEval`` runs the task at every validation (the run's 8 curve points, the last at the
final step) and logs both numbers to the run at that step: checkpoints for step 2 of the
downstream chain, the last one the run's final point;
``TASK_TAGS`` declares the task on the run (the downstream part of the data contract: tags
``scaling.tasks``, ``scaling.task.<name>.metric``, ``.loss_metric``, ``.chance``,
``.n_examples``).
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass

import lightning as L
import torch
import torch.nn.functional as F

from mlflow_scaling.tracking import schema

TASK = "nextline"
METRIC_ACCURACY = "task.nextline.accuracy"
METRIC_BITS_PER_BYTE = "task.nextline.bpb"
N_CHOICES = 4
CHANCE = 1.0 / N_CHOICES
N_EXAMPLES = 400
MIN_CHARS = 8  # lines shorter than this (after indentation) say too little to choose between
MAX_LINE_BYTES = 32  # the line with its newline; the rest of the 64-byte window is context


@dataclass(frozen=True)
class Example:
    """One question: the bytes before the line, the candidate lines, the true one's index."""

    context: bytes
    choices: tuple[bytes, ...]
    answer: int


def _indent(line: bytes) -> int:
    return len(line) - len(line.lstrip(b" \t"))


def build_examples(
    text: bytes, window: int, n_examples: int = N_EXAMPLES, seed: int = 0
) -> list[Example]:
    """``n_examples`` questions from ``text`` (held-out source), each filling ``window`` + 1 bytes.

    Candidate lines end with their newline. Distractors share the true line's indentation and
    byte length and differ from it in content. The selection depends only on ``text`` and
    ``seed``.
    """
    lines = text.splitlines(keepends=True)
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line))
    eligible = [
        i
        for i, line in enumerate(lines)
        if line.endswith(b"\n")
        and len(line) <= MAX_LINE_BYTES
        and len(line.strip()) >= MIN_CHARS
        and starts[i] >= window + 1 - len(line)
    ]
    pools: dict[tuple[int, int], set[bytes]] = defaultdict(set)
    for i in eligible:
        pools[(_indent(lines[i]), len(lines[i]))].add(lines[i])
    rng = random.Random(seed)
    order = eligible[:]
    rng.shuffle(order)
    examples = []
    for i in order:
        true = lines[i]
        others = sorted(pools[(_indent(true), len(true))] - {true})
        if len(others) < N_CHOICES - 1:
            continue
        choices = rng.sample(others, N_CHOICES - 1)
        answer = rng.randrange(N_CHOICES)
        choices.insert(answer, true)
        context = text[starts[i] - (window + 1 - len(true)) : starts[i]]
        examples.append(Example(context, tuple(choices), answer))
        if len(examples) == n_examples:
            break
    if not examples:
        raise ValueError("the held-out text has no line with three same-shaped distractors")
    return examples


@dataclass(frozen=True)
class TaskScore:
    accuracy: float
    bits_per_byte: float
    n_examples: int


@torch.no_grad()
def score(model: torch.nn.Module, examples: list[Example], batch_size: int = 64) -> TaskScore:
    """Accuracy (argmax of summed log-likelihood) and bits per byte on the true lines."""
    seqs, spans = [], []
    for ex in examples:
        for choice in ex.choices:
            seqs.append(list(ex.context + choice))
            spans.append(len(choice))
    data = torch.tensor(seqs, dtype=torch.long)
    n_target = data.shape[1] - 1
    position = torch.arange(n_target)
    summed = torch.empty(len(seqs))
    was_training = model.training
    model.eval()
    try:
        for lo in range(0, len(seqs), batch_size):
            chunk = data[lo : lo + batch_size]
            logp = F.log_softmax(model(chunk[:, :-1]).float(), dim=-1)
            target_logp = logp.gather(-1, chunk[:, 1:, None]).squeeze(-1)
            span = torch.tensor(spans[lo : lo + batch_size])
            in_choice = position[None, :] >= (n_target - span)[:, None]
            summed[lo : lo + chunk.shape[0]] = (target_logp * in_choice).sum(dim=1)
    finally:
        model.train(was_training)
    by_example = summed.view(len(examples), N_CHOICES)
    answers = torch.tensor([ex.answer for ex in examples])
    accuracy = (by_example.argmax(dim=1) == answers).float().mean().item()
    true_logp = by_example.gather(1, answers[:, None]).sum().item()
    true_bytes = sum(len(ex.choices[ex.answer]) for ex in examples)
    return TaskScore(accuracy, -true_logp / (math.log(2) * true_bytes), len(examples))


def task_tags(n_examples: int) -> dict[str, str]:
    """The tags that declare the task on a member run (the data contract's task tags)."""
    return {
        schema.TAG_TASKS: TASK,
        schema.task_tag(TASK, "metric"): METRIC_ACCURACY,
        schema.task_tag(TASK, "loss_metric"): METRIC_BITS_PER_BYTE,
        schema.task_tag(TASK, "chance"): f"{CHANCE:g}",
        schema.task_tag(TASK, "n_examples"): str(n_examples),
    }


class NextLineEval(L.Callback):
    """Score the task at every validation (the run's curve points) and when training ends, and
    log accuracy and bits per byte to the run at that step.

    Each point is a checkpoint for step 2 of the downstream chain (task loss to accuracy); the
    last, at the final step, is the run's final point for step 1 too. A step already scored
    (the last validation is at the final step) is not scored again.
    """

    def __init__(self, examples: list[Example]) -> None:
        self.examples = examples
        self.result: TaskScore | None = None
        self._scored_step: int | None = None

    def _score(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self._scored_step == trainer.global_step:
            return
        self.result = score(pl_module, self.examples)
        self._scored_step = trainer.global_step
        if trainer.logger is not None:
            metrics: dict[str, float] = {
                METRIC_ACCURACY: self.result.accuracy,
                METRIC_BITS_PER_BYTE: self.result.bits_per_byte,
            }
            trainer.logger.log_metrics(metrics, step=trainer.global_step)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._score(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._score(trainer, pl_module)

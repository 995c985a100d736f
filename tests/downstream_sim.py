"""Simulated downstream tasks with a known chain, for the tests and benchmarks/bench_downstream.py.

A family of runs (N, D) gets a task loss from a known Chinchilla-form law (bits per byte of the
correct answer) with multiplicative noise, and an accuracy measured on ``n_examples`` questions:
the true accuracy is chance + (ceiling − chance)·σ(k·(L0 − task loss)), the measurement a
binomial draw around it. A target model's true and measured accuracy come from the same chain,
so a prediction can be scored against both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

SIZES = (1e7, 2e7, 5e7, 1e8, 2e8)
TOKENS_PER_PARAM = (10.0, 20.0, 40.0)
TASK_LAW = {"E": 0.55, "A": 60.0, "B": 300.0, "alpha": 0.32, "beta": 0.32}
SIGMOID = {"chance": 0.25, "ceiling": 0.92, "k": 6.0, "L0": 1.0}
TRAIN_LAW = {"E": 1.7, "A": 400.0, "B": 1800.0, "alpha": 0.34, "beta": 0.36}


def task_loss(n, d, law=TASK_LAW):
    n, d = np.asarray(n, float), np.asarray(d, float)
    return law["E"] + law["A"] / n ** law["alpha"] + law["B"] / d ** law["beta"]


def true_accuracy(loss, sig=SIGMOID):
    return sig["chance"] + (sig["ceiling"] - sig["chance"]) * expit(sig["k"] * (sig["L0"] - loss))


@dataclass
class SimulatedTask:
    n: np.ndarray
    d: np.ndarray
    c: np.ndarray
    task_loss: np.ndarray
    accuracy: np.ndarray
    train_loss: np.ndarray
    n_examples: int
    chance: float

    def target(self, n: float, tokens_per_param: float = 20.0, seed: int = 10_000):
        """(N, D, true accuracy, a measured accuracy) of a target model."""
        rng = np.random.default_rng(seed)
        d = n * tokens_per_param
        true = float(true_accuracy(task_loss(n, d)))
        measured = rng.binomial(self.n_examples, true) / self.n_examples
        return n, d, true, float(measured)


def simulate_task(
    seed: int,
    *,
    sizes=SIZES,
    tokens_per_param=TOKENS_PER_PARAM,
    n_examples: int = 2000,
    loss_noise: float = 0.005,
    at_chance: bool = False,
) -> SimulatedTask:
    """One family with a task. ``at_chance``: every run answers by guessing (accuracy at
    chance up to sampling noise) while the task loss still falls."""
    rng = np.random.default_rng(seed)
    n = np.repeat(np.asarray(sizes, float), len(tokens_per_param))
    d = n * np.tile(np.asarray(tokens_per_param, float), len(sizes))
    loss = task_loss(n, d) * np.exp(rng.normal(0.0, loss_noise, n.size))
    true = np.full(n.size, SIGMOID["chance"]) if at_chance else true_accuracy(loss)
    acc = rng.binomial(n_examples, true) / n_examples
    train = task_loss(n, d, TRAIN_LAW) * np.exp(rng.normal(0.0, loss_noise, n.size))
    return SimulatedTask(n, d, 6 * n * d, loss, acc, train, n_examples, SIGMOID["chance"])


FREE_SIGMOID = {"floor": 0.35, "ceiling": 0.9, "k": 6.0, "L0": 1.3}
"""A step 2 whose floor sits far above chance 0.25 (length-normalised accuracy of small
models), for the checkpoint tests."""
CHECKPOINT_FRACTIONS = (0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.85, 1.0)


def free_accuracy(loss, sig=FREE_SIGMOID):
    return sig["floor"] + (sig["ceiling"] - sig["floor"]) * expit(sig["k"] * (sig["L0"] - loss))


@dataclass
class SimulatedCheckpoints:
    """One row per (run, checkpoint): D is the tokens seen at that step."""

    run: np.ndarray
    step: np.ndarray
    n: np.ndarray
    d: np.ndarray
    task_loss: np.ndarray
    accuracy: np.ndarray
    n_examples: int
    chance: float = 0.25

    def final(self) -> np.ndarray:
        return self.step == self.step.max()


def simulate_checkpoints(
    seed: int,
    *,
    sizes=SIZES,
    tokens_per_param=TOKENS_PER_PARAM,
    n_examples: int = 2000,
    loss_noise: float = 0.005,
    fractions=CHECKPOINT_FRACTIONS,
) -> SimulatedCheckpoints:
    """The family of :func:`simulate_task` with every run evaluated at ``fractions`` of its
    steps (a schedule-free task loss L(N, D_t) at each), accuracy through FREE_SIGMOID."""
    rng = np.random.default_rng(seed)
    n_run = np.repeat(np.asarray(sizes, float), len(tokens_per_param))
    d_run = n_run * np.tile(np.asarray(tokens_per_param, float), len(sizes))
    frac = np.asarray(fractions, float)
    run = np.repeat(np.arange(n_run.size), frac.size)
    step = np.tile(np.round(1000 * frac).astype(int), n_run.size)
    n, d = n_run[run], d_run[run] * np.tile(frac, n_run.size)
    loss = task_loss(n, d) * np.exp(rng.normal(0.0, loss_noise, n.size))
    acc = rng.binomial(n_examples, free_accuracy(loss)) / n_examples
    return SimulatedCheckpoints(run, step, n, d, loss, acc, n_examples)

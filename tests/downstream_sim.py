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

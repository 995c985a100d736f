"""Scaling-law science: forms, fitting, the three Chinchilla approaches, allocation, uncertainty.

Pure numpy/scipy; nothing here imports MLflow or torch.
"""

from .allocation import Allocation, allocation_exponents, compute_optimal, plan_loss
from .backtest import Backtest, backtest_chinchilla
from .bootstrap import BootstrapFit, bootstrap_chinchilla
from .chinchilla import ChinchillaLaw
from .envelope import Envelope, training_curve_envelope
from .fitting import ChinchillaFit, epoch_grid, fit_chinchilla
from .isoflop import IsoFlopFit, fit_isoflop, group_by_budget

__all__ = [
    "Allocation",
    "Backtest",
    "BootstrapFit",
    "ChinchillaFit",
    "ChinchillaLaw",
    "Envelope",
    "IsoFlopFit",
    "allocation_exponents",
    "backtest_chinchilla",
    "bootstrap_chinchilla",
    "compute_optimal",
    "epoch_grid",
    "fit_chinchilla",
    "fit_isoflop",
    "group_by_budget",
    "plan_loss",
    "training_curve_envelope",
]

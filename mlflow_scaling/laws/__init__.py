"""Scaling-law science: forms, fitting, the three Chinchilla approaches, allocation, uncertainty.

Pure numpy/scipy; nothing here imports MLflow or torch.
"""

from .allocation import Allocation, allocation_exponents, compute_optimal, plan_loss
from .backtest import Backtest, backtest_chinchilla
from .bnsl import BrokenPowerLaw, fit_broken_power_law
from .bootstrap import BootstrapFit, bootstrap_chinchilla
from .check import CheckResult, Criterion, scaling_check
from .chinchilla import ChinchillaLaw
from .data_constrained import DataBudgetAllocation, DataConstrainedLaw, allocate_with_unique_tokens
from .data_constrained_fit import DataConstrainedFit, fit_data_constrained
from .envelope import Envelope, training_curve_envelope
from .fitting import ChinchillaFit, epoch_grid, fit_chinchilla
from .isoflop import IsoFlopFit, fit_isoflop, group_by_budget
from .phases import PhaseReport, Segment, detect_phases
from .power_law import SaturatingPowerLaw, fit_saturating_power_law

__all__ = [
    "Allocation",
    "Backtest",
    "BootstrapFit",
    "BrokenPowerLaw",
    "CheckResult",
    "ChinchillaFit",
    "ChinchillaLaw",
    "Criterion",
    "DataBudgetAllocation",
    "DataConstrainedFit",
    "DataConstrainedLaw",
    "Envelope",
    "IsoFlopFit",
    "PhaseReport",
    "SaturatingPowerLaw",
    "Segment",
    "allocate_with_unique_tokens",
    "allocation_exponents",
    "backtest_chinchilla",
    "bootstrap_chinchilla",
    "compute_optimal",
    "detect_phases",
    "epoch_grid",
    "fit_broken_power_law",
    "fit_chinchilla",
    "fit_data_constrained",
    "fit_isoflop",
    "fit_saturating_power_law",
    "group_by_budget",
    "plan_loss",
    "scaling_check",
    "training_curve_envelope",
]

"""Every detector driftscope runs, by name (one instance each: detectors are stateless)."""

from __future__ import annotations

from detectors.base import Detector
from detectors.bocpd import BayesianChangePoint
from detectors.distribution_shift import DistributionShift
from detectors.early_warning import EarlyWarning
from detectors.error_rate import ErrorRate
from detectors.level_shift import LevelShift
from detectors.oscillation import Oscillation
from detectors.retry_feedback import RetryFeedback
from detectors.state_space import StateSpace

DETECTORS: tuple[Detector, ...] = (
    LevelShift(),
    BayesianChangePoint(),
    StateSpace(),
    DistributionShift(),
    ErrorRate(),
    EarlyWarning(),
    Oscillation(),
    RetryFeedback(),
)
BY_NAME: dict[str, Detector] = {d.name: d for d in DETECTORS}

__all__ = ["BY_NAME", "DETECTORS", "RetryFeedback"]

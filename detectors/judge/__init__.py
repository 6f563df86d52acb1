"""The observability gate's judge: did a change (canary or deploy) make the running system worse?

Kayenta-style nonparametric comparison of a candidate against a baseline per metric
(``mann_whitney``, ``proportions``), per-metric settings (``metrics``), the verdict
(``verdict``), the samples read from the store (``samples``), the feature contract
(``contract``, ``contract_checks``) and the whole judgement (``run.judge``).
"""

from detectors.judge.contract import Contract, ContractError, load_contract, parse_contract
from detectors.judge.metrics import DEFAULT_SPECS, MetricResult, MetricSpec
from detectors.judge.run import Judgement, judge, specs_for
from detectors.judge.samples import Scope
from detectors.judge.verdict import Verdict

__all__ = [
    "DEFAULT_SPECS",
    "Contract",
    "ContractError",
    "Judgement",
    "MetricResult",
    "MetricSpec",
    "Scope",
    "Verdict",
    "judge",
    "load_contract",
    "parse_contract",
    "specs_for",
]

"""Consolidation: several detectors on one signal make one finding, stable across runs."""

from __future__ import annotations

from dataclasses import replace

from detectors.base import SignalKey
from detectors.findings import Finding
from detectors.run import consolidate

KEY = SignalKey("latency_p50", "payment", "Charge")
OTHER = SignalKey("latency_p50", "checkout", "PlaceOrder")


def _f(detector: str, q: float, change_ns: int | None, key: SignalKey = KEY) -> Finding:
    return Finding(
        detector=detector, signal=key, window_start_ns=0, window_end_ns=10, change_ns=change_ns, severity="warning",
        score=1.0, effect=0.5, effect_text="p50 +50 %", before=1.0, after=1.5, p_value=q, q_value=q,
        evidence={"sql": "SELECT 1"}, scope="performance",
    )  # fmt: skip


def test_one_finding_per_signal_with_every_agreeing_detector() -> None:
    found = consolidate([_f("level_shift", 1e-5, 300), _f("distribution_shift", 1e-9, None), _f("bocpd", 1e-3, 240),
                         _f("bocpd", 1e-4, 500, OTHER)])  # fmt: skip
    assert len(found) == 2
    payment = next(f for f in found if f.signal == KEY)
    assert payment.detector == "distribution_shift"  # the strongest evidence names the finding
    assert payment.change_ns == 300  # ... but the change time comes from the strongest change-point detector
    assert payment.evidence["detectors"] == {"bocpd": 1e-3, "distribution_shift": 1e-9, "level_shift": 1e-5}
    assert payment.evidence["sql"] == "SELECT 1"


def test_the_fingerprint_does_not_depend_on_which_detector_won() -> None:
    a = consolidate([_f("level_shift", 1e-5, 300), _f("bocpd", 1e-3, 240)])[0]
    b = consolidate([_f("level_shift", 1e-2, 300), _f("bocpd", 1e-6, 240)])[0]
    assert a.detector != b.detector and a.fingerprint == b.fingerprint
    assert replace(a, scope=None).fingerprint != replace(b, scope=None).fingerprint

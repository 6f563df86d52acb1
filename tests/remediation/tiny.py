"""A tiny world for the remediation tests: two services, an external provider, fast to simulate.

``api:Get`` (one server: saturates at ~2.5x its usual demand) calls ``store:Read`` and the
external ``bank:Auth`` (no spans of its own); ``api:Put`` calls ``store:Write``. Flat demand
(no daily swing), so the pre-fault window is a fair baseline for the short runs.
"""

from __future__ import annotations

from typing import Any

from remediation.whatif import Timing
from simulator.scenario import Fault, Scenario, parse_scenario

TINY = """
name = "tiny"
description = "remediation tests"
[arrivals]
rate_per_s = 8
diurnal_amplitude = 0.0
noise_sigma = 0.02
[[entrypoints]]
operation = "api:Get"
weight = 2
[[entrypoints]]
operation = "api:Put"
weight = 1
[services.api]
version = "1.0.0"
[services.api.operations.Get]
service_time = { median_ms = 5.0, sigma = 0.3 }
servers = 1
calls = [{ to = "store:Read", timeout_ms = 500 }, { to = "bank:Auth", timeout_ms = 400 }]
[services.api.operations.Put]
method = "PUT"
service_time = { median_ms = 4.0, sigma = 0.3 }
servers = 4
calls = [{ to = "store:Write", timeout_ms = 500 }]
[services.store]
version = "3.1.0"
[services.store.operations.Read]
kind = "rpc"
service_time = { median_ms = 3.0, sigma = 0.3 }
servers = 4
[services.store.operations.Write]
kind = "rpc"
service_time = { median_ms = 3.0, sigma = 0.3 }
servers = 4
[services.bank]
version = "external"
[services.bank.operations.Auth]
kind = "external"
service_time = { median_ms = 20.0, sigma = 0.3 }
servers = 100
"""

FAULT_AT = 60
TIMING = Timing(history_min=60, baseline_min=40, alert_delay_min=4, reaction_min=2, settle_min=3, eval_min=15)
"""Patch at minute 66, judged over minutes 69-84 against 20-60."""


def tiny(**fault: Any) -> Scenario:
    """The tiny world with one fault (``start_min`` 60 and ``end_min`` 120 unless given)."""
    base = parse_scenario(TINY, "tiny")
    f = Fault.model_validate({"start_min": FAULT_AT, "end_min": 120, **fault})
    return base.model_copy(update={"faults": [f]})


WORLDS: dict[str, dict[str, Any]] = {
    "release": {"kind": "latency_regression", "target": "api:Get", "magnitude": 1.0, "deploy_version": "1.1.0"},
    "surge": {"kind": "capacity_saturation", "target": "arrivals", "magnitude": 2.0, "ramp_min": 1},
    "provider": {"kind": "retry_storm", "target": "bank:Auth", "magnitude": 0.3},
    "edge": {"kind": "call_edge", "target": "api:Put", "to": "bank:Auth", "change": "add", "magnitude": 1.0},
    "sick": {"kind": "error_burst", "target": "store:Read", "magnitude": 0.1},
}
"""One fault per world: a bad release, a demand surge, a failing provider, an added call, a sick replica."""

"""The mini-faults scenario shared by the invariant tests, and scenario-minute helpers.

Imported by name (``from invariant_scenario import ...``), never through ``conftest``, so
that no sub-directory conftest shadows another.
"""

from __future__ import annotations

from simulator.run import DEFAULT_START_NS

NS_MIN = 60_000_000_000
FAULT_MIN = 120
"""Every fault of the mini-faults scenario starts here; minutes 0-120 are quiet."""
END_MIN = 150

# The mini system (api, worker, db) with one fault of every structural kind at minute 120,
# flat arrivals so that two quiet hours give every law its support.
MINI_FAULTS = f"""
extends = "mini"
name = "mini-faults"
description = "mini with structural faults at {FAULT_MIN} min"

[arrivals]
rate_per_s = 10
diurnal_amplitude = 0.0
noise_sigma = 0.05

[[faults]]
kind = "attribute_change"
target = "api:POST /items"
start_min = {FAULT_MIN}
end_min = {END_MIN}
attribute = "item.kind"
change = "vanish"

[[faults]]
kind = "call_edge"
target = "api:POST /items"
to = "worker:Validate"
change = "remove"
start_min = {FAULT_MIN}
end_min = {END_MIN}

[[faults]]
kind = "broken_propagation"
target = "worker"
start_min = {FAULT_MIN}
end_min = {END_MIN}
magnitude = 0.5

[[faults]]
kind = "new_log_template"
target = "worker"
start_min = {FAULT_MIN}
end_min = {END_MIN}
magnitude = 30
template = "fraud check timed out for order {{id}} after {{ms}} ms"
"""


def at(minute: int) -> int:
    """ns of a scenario minute."""
    return DEFAULT_START_NS + minute * NS_MIN

"""A digital twin: a scenario fitted from telemetry, its validation, and what-if on it."""

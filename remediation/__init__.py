"""Remediation: apply a patch to a simulated world, re-simulate from the patch time, and judge it.

``whatif`` runs one patch on one scenario; ``runner`` is the test suite deciding fixed / not
fixed / harmful; ``gym`` scores the patches a policy proposes. Nothing imports this package
but the CLI and the benchmarks.
"""

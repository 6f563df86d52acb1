"""Invariant drift: laws a system obeyed in a baseline window, learned, declared and checked.

In the spirit of Daikon (Ernst et al., "Dynamically discovering likely program invariants",
TSE 2001), but over telemetry: attribute contracts per operation, the call graph and its
required children, client/server span pairing, flow conservation per minute, and log
templates mined with Drain (He et al., ICWS 2017). Every invariant carries its support
(observations) and a confidence; violations become ``detectors.findings.Finding`` with
counterexamples and the SQL that shows them. ``monitor.detect_invariants`` is the entry
point of the scheduled detection job.
"""

"""Forward planning: feature contracts drafted before code, checked at design time and against the checklist.

- ``facts``: what the system is today (the spec's layers, call graph and laws; baselines
  from the store: latencies, error ratios, versions, metrics), the input of drafting and
  of the design checks;
- ``feasibility``: the latency floor a dependency chain puts under an SLO (pure numbers);
- ``design``: a contract checked against the boundary rules, the call graph and the
  invariants before any code exists (``check_design``), each violation naming its rule;
- ``draft``: the offline drafting policy (a template filled from the touched operations)
  and the deterministic validation every draft goes through;
- ``junit``, ``repo``, ``terraform``: the evidence of the Feature Contract Checklist
  (test results, the change's files, infrastructure code), read from files;
- ``checklist``: the checklist's rows and verdict (Behaviour, Physics, Deployment, Design);
- ``render``: tables, JSON and Markdown of design results and checklist verdicts.
"""

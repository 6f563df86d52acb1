"""investigations: a policy (offline playbook, Claude, or a replay) over a read-only, replayable environment.

``investigations.run.investigate(store, trigger, window, policy, config)`` snapshots the store
(``snapshot``), lets the policy call the tool belt (``tools``) within the controller's budget
(``budget``, ``environment``), verifies every claim by re-running its call (``verify``), and
persists the steps and the report (``store``, ``report``). ``gym`` scores a policy on simulator
scenarios with known root causes. See README "Investigations".
"""

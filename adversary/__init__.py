"""adversary: random worlds searched for driftscope's blind spots, each turned into a regression test.

``trial`` runs one world end to end (simulate, detect, investigate, score); ``search``
samples worlds and searches around failures; ``shrink`` reduces a failing world to a
minimal scenario; ``regressions`` writes it under ``tests/regressions/``; ``mde`` measures
the minimum detectable effect per fault kind and traffic. Only the CLI imports this package.
"""

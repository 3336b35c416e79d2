"""The library that runs models over scenes: predict, train, evaluate, explain, compare.

It returns data (arrays, reports as dataclasses) and speaks in engine terms: no CLI flags, no
cluster, no rendering; `bandfusion.display` and `bandfusion.cli` present what it returns.
"""

"""Stage 3: rule evaluation.

The rules compiled for durable_rules (the only subpackage that imports it), the virtual clock
that feeds it one fact a day under both timing placements, and the plain-Python reference
evaluator that checks it.
"""

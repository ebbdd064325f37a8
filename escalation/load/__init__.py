"""Stage 1: files to validated models.

The file formats (scenario, rule set, their variants), the closed vocabulary they draw on, the
YAML reader that keeps line numbers for errors, and where the shipped files live. Nothing here
knows about derived measures, the engine or reports.
"""

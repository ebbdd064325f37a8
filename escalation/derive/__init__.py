"""Stage 2: derived measures.

Indices, doses, data-consistency checks and each day's features, all computed from the validated
scenario. Nothing here decides whether a rule applies; the engine does that in the next stage.
"""

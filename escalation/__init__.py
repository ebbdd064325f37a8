"""escalation: a published treatment-escalation pathway as declarative rules, replayed on timelines.

For research review only; nothing it produces is advice for a patient.
"""

__version__ = "0.1.0"

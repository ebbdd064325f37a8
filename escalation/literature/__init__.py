"""The published cohort of the report's Table 1: its records, the summary figures recomputed
from them, and the cross-source check against the index-case timeline."""

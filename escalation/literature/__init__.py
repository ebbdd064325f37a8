"""The published cohort of the report's Table 1: its records (records), the summary figures
recomputed from them (summary), the cross-source check against the index-case timeline (check),
and each case placed on the pathway (placement)."""

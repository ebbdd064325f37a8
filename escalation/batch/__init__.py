"""Cohort-scale replays: many scenarios x rule sets x parameter grid points, in chunks.

The batch is planned in the calling process (inputs hashed, rule sets and grid checked, jobs cut
into chunks), run on Dask distributed worker processes that each keep one engine, and written as
a Parquet dataset one chunk at a time, so that an interrupted run keeps everything it finished.
`escalation sweep` is the same machinery with one parameter and its own outputs.

Research review only: every output carries the notice, and no row is an order for a patient.
"""

"""Analyses built on replay results: expectations (`test`), rule-set comparison (`diff`) and
parameter sweeps."""

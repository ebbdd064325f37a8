"""FHIR R4 in and out: patient records to scenario files, and scenarios to Bundles.

Importing is a stage-1 concern (files -> validated models) like `escalation.load`: nothing here
imports the engine, the matching or the reports, so an import can never depend on what a
replay would say. Research review only: an imported timeline is material for a replay, not a
clinical record.
"""

SUMMARY_FILE = "import-summary.json"  # beside the scenario files of every import: what was not used

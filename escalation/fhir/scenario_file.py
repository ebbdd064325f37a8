"""An imported scenario written in the project's own YAML format, headed by where it came from."""

from __future__ import annotations

import json
from typing import Any

import yaml

from escalation.fhir import SUMMARY_FILE
from escalation.fhir.to_scenario import NOTICE, Imported

_HEADER = """\
# {notice}
# Imported by `escalation import fhir` from {source}.
# Day 0: {day_zero}
# Every event cites the FHIR resource it was read from (source: {{fhir: Type/id}}); values the
# resources did not carry are left out. Check the summary for what was not imported.
"""
# Event keys in the order the shipped scenarios write them: what and when first, then where from.
_ORDER = ("id", "kind", "code", "marker", "direction", "status", "modality", "region", "study", "findings",
          "course", "courses_total", "days_per_course", "interval", "dose", "route", "target_trough", "day",
          "until", "values", "reported", "oxygen_device", "oxygen_flow", "flow", "sessions_total",
          "hypothetical", "source", "also", "note")


class _Dumper(yaml.SafeDumper):
    """No anchors or aliases: the loader refuses them, and a reader should see each value."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def scenario_yaml(data: dict[str, Any], origin: str, day_zero_rule: str) -> str:
    """The file text: a comment header, then the scenario in the order people read it. The header
    says where it came from (`Patient/id (file)`) and how the import found day 0, which the title
    and `day_zero` say too unless the Bundle carried the scenario's own (an export of this tool)."""
    head = _HEADER.format(notice=NOTICE, source=origin, day_zero=day_zero_rule)
    ordered = {**data, "events": [_ordered(e) for e in data["events"]]}
    body = yaml.dump(ordered, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100,
                     default_flow_style=None)
    return head + "\n" + body


def _ordered(event: dict[str, Any]) -> dict[str, Any]:
    known = {k: event[k] for k in _ORDER if k in event}
    return {**known, **{k: v for k, v in event.items() if k not in known}}


def import_files(imported: Imported) -> list[tuple[str, str]]:
    """The files an import writes, as (name, text): a scenario file per patient, then the summary
    (keys sorted, as every JSON output of the tool). One list for `escalation import fhir` and for
    a batch's Bulk Data import, so that the two write the same bytes for the same export."""
    rules = {p.scenario_id: p.day_zero_rule for p in imported.summary.patients}
    files = [(f"{sid}.yaml", scenario_yaml(data, imported.origins[sid], rules[sid] or ""))
             for data, _ in imported.scenarios for sid in [data["scenario"]["id"]]]
    summary = imported.summary.model_dump(mode="json")
    return [*files, (SUMMARY_FILE, json.dumps(summary, indent=2, sort_keys=True, ensure_ascii=False) + "\n")]

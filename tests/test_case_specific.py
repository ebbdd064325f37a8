"""Conditions that copy the index case are marked in the rule file and in every output."""

from __future__ import annotations

import json

import pytest
from conftest import INDEX_CASE, PATHWAY, ROOT, SRC, points
from pydantic import ValidationError

from escalation.load.loading import load_ruleset
from escalation.load.ruleset import Ruleset
from escalation.report.html import write_report
from escalation.report.text import to_json, to_table

COPIED = [
    "step2-plasma-exchange: invasive_ventilation in place",
    "step3-ecmo-oxygenation: fio2 >= fio2_at_least",
    "step3-ecmo-oxygenation: map >= map_at_least",
    "step3-ecmo-oxygenation: ino > ino_above",
    "add-mmf: days since first RTX >= days_after_rtx",
    "add-mmf: VV-ECMO in place",
]


def test_the_report_pathway_marks_these_conditions(pathway):
    marked = [f"{r.id}: {i}" for r in pathway.rules for i, _ in r.case_specific]
    assert len(marked) == len(COPIED)
    for rule in pathway.rules:
        if rule.case_specific:
            assert "Case-specific:" in rule.rationale, rule.id  # the reasoning is in the rationale too


def test_json_marks_each_condition_and_the_decision_point(index_result):
    assert index_result.ruleset.case_specific == COPIED
    [ecmo] = points(index_result, "step3-ecmo-oxygenation")
    assert ecmo.rests_on_case_specific
    marks = {c.condition.split(" (")[0]: c.case_specific for c in ecmo.conditions}
    assert marks["spo2 < 90"] is None  # the reason the report gives: a stated criterion
    assert "nitric oxide" in marks["ino > 0"] and not marks["ino > 0"].endswith("\n")
    [oi_rule] = [r for r in load_ruleset(PATHWAY).rules if r.id == "step3-ecmo-oi"]
    assert not oi_rule.case_specific
    [rtx] = points(index_result, "step4-rituximab")
    assert not rtx.rests_on_case_specific and rtx.rests_on_assumption
    assert "Rests on conditions copied from the index case: fio2 >= fio2_at_least" in ecmo.detail
    data = json.loads(to_json(index_result))
    assert data["ruleset"]["case_specific"] == COPIED


def test_the_table_marks_them_as_it_marks_assumptions(index_result):
    table = to_table(index_result)
    assert "CASE-SPECIFIC" in table and "(case-specific)" in table
    tail = table.split("Case-specific conditions", 1)[1]
    assert all(f"  - {c}" in tail for c in COPIED)


def test_the_html_and_markdown_reports_mark_them(tmp_path, index_case, index_result, pathway):
    out = tmp_path / "report"
    write_report(index_case, INDEX_CASE, [index_result], [pathway], out)
    html = (out / "report.html").read_text()
    assert html.count('badge case-specific">CASE-SPECIFIC') == len(COPIED) + 3  # list, and 3 rows
    assert "no source makes inhaled nitric oxide a condition for ECMO" in html
    md = (out / "report.md").read_text()
    assert "step3-ecmo-oxygenation ASSUMPTION CASE-SPECIFIC" in md.replace("\\", "")


def test_other_rule_sets_are_reviewed_too():
    marked = {p.stem: [f"{r.id}: {i}" for r in load_ruleset(p).rules for i, _ in r.case_specific]
              for p in sorted((ROOT / "rules").glob("*.yaml"))}
    assert marked["romero-bueno-2020"] == ["rb-refractory-add-on: 1", "rb-ecmo: 1", "rb-ecmo: 2"]
    assert "step4-rituximab: 2" in marked["rtx-earlier"]


def _rule(**mark) -> dict:
    return {"id": "r", "title": "Context: r", "proposes": ["c"], "rationale": "x", "sources": [SRC],
            "conditions": [{"diagnosis": "JDM", **mark}]}


def test_an_unmarked_condition_is_not_written_so_old_hashes_hold():
    head = {"ruleset": {"id": "x", "version": "0", "title": "x"},
            "labels": {"c": {"kind": "context", "description": "c"}}}
    plain = Ruleset.model_validate({**head, "rules": [_rule()]})
    assert "case_specific" not in json.dumps(plain.model_dump(mode="json"))
    marked = Ruleset.model_validate({**head, "rules": [_rule(case_specific="copied")]})
    assert marked.content_hash() != plain.content_hash()
    with pytest.raises(ValidationError, match="at least 1 character"):
        Ruleset.model_validate({**head, "rules": [_rule(case_specific="")]})

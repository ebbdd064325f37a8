"""replay --format cds-hooks and --format fhir: valid, worded for review, stable across reruns.

The CDS Hooks response is checked against tests/cds_hooks_response.schema.json, written from the
CDS Hooks 2.0 specification (https://cds-hooks.hl7.org/2.0/, "CDS Service Response" and "Card
Attributes"); the GuidanceResponse Bundle against the fhir.resources R4B models.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import INDEX_CASE, ROOT
from fhir.resources.R4B.bundle import Bundle
from jsonschema import Draft7Validator
from typer.testing import CliRunner

from escalation.api import replay
from escalation.cli.app import app
from escalation.match.results import NOTICE
from escalation.report import cds_hooks, fhir_out
from escalation.report.cds_hooks import CardItem, decision_point_items, response

SCHEMA = json.loads((Path(__file__).parent / "cds_hooks_response.schema.json").read_text())
SCENARIOS = [INDEX_CASE, *sorted((ROOT / "scenarios" / "variants").glob("*.yaml"))]
ORDER_WORDS = re.compile(r"\b(give|start|administer|must|should|order)\b", re.IGNORECASE)


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, ["replay", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_cds_hooks_cards_validate_and_read_as_review_material(path):
    data = json.loads(_cli(str(path), "--format", "cds-hooks"))
    Draft7Validator.check_schema(SCHEMA)
    assert not list(Draft7Validator(SCHEMA).iter_errors(data))
    result = replay(path)
    assert len(data["cards"]) == len(result.decision_points) + len(getattr(result, "unflagged_actions", []))
    for i, card in enumerate(data["cards"]):
        assert len(card["summary"]) < 140 and card["indicator"] == "info"
        assert "for review" in card["summary"].lower() and not ORDER_WORDS.search(card["summary"])
        assert card["source"]["label"].startswith("RESEARCH REVIEW ONLY - not medical advice. Rule set ")
        assert result.ruleset.content_hash[:16] in card["source"]["label"]
        assert card["detail"].startswith(f"**{NOTICE}**")
        if i < len(result.decision_points):  # then one card per unflagged action
            assert "| condition | met by |\n" in card["detail"] and "Sources:\n- " in card["detail"]
            assert "\\_\\_" not in card["detail"]  # no fact field names (anti_mda5__wany__gt), escaped or not
        else:
            assert "no decision point of this rule set" in card["summary"] and "Rule `" in card["detail"]


def test_card_uuids_are_stable_and_distinct():
    first, second = (json.loads(_cli(str(INDEX_CASE), "--format", "cds-hooks")) for _ in range(2))
    assert first == second
    uuids = [c["uuid"] for c in first["cards"]]
    assert len(set(uuids)) == len(uuids)
    other = json.loads(_cli(str(INDEX_CASE), "--format", "cds-hooks", "--rules", str(ROOT / "rules" / "rtx-earlier.yaml")))
    assert not set(uuids) & {c["uuid"] for c in other["cards"]}


def test_the_card_builder_takes_more_kinds_of_item():
    result = replay(INDEX_CASE)

    def extra(r):
        return [CardItem(kind="note", key="one", summary="For review: a further item " + "word " * 40, detail="d")]

    cards = response(result, [decision_point_items, extra]).cards
    assert len(cards) == len(result.decision_points) + 1
    assert 130 < len(cards[-1].summary) <= 139 and cards[-1].summary.endswith("word…")


def test_markdown_detail_escapes_file_text():
    assert cds_hooks.cell("a|b <script> *x* _y_\nz") == "a\\|b \\<script> \\*x\\* \\_y\\_ z"


@pytest.mark.parametrize("path", SCENARIOS[:3], ids=lambda p: p.stem)
def test_fhir_guidance_responses_validate_and_name_the_rule(path):
    data = json.loads(_cli(str(path), "--format", "fhir"))
    Bundle.model_validate(data)
    result = replay(path)
    cards = json.loads(_cli(str(path), "--format", "cds-hooks"))["cards"]
    assert [e["resource"]["id"] for e in data["entry"]] == [c["uuid"] for c in cards[:len(result.decision_points)]]
    for entry, dp in zip(data["entry"], result.decision_points):
        g = entry["resource"]
        assert g["resourceType"] == "GuidanceResponse" and g["status"] == "success"
        assert g["moduleCanonical"] == fhir_out.canonical(result.ruleset.id, dp.rule_id, result.ruleset.version)
        assert g["moduleCanonical"].endswith(f"/PlanDefinition/{result.ruleset.id}.{dp.rule_id}|{result.ruleset.version}")
        assert g["note"][0]["text"] == NOTICE
        assert g["meta"]["tag"][0]["code"] == "research-review-only"


def test_unflagged_actions_get_cards_when_the_result_has_them():
    """A separate change adds `unflagged_actions` to ReplayResult; without it there is nothing to show."""
    from escalation.match import results

    if not hasattr(results, "UnflaggedAction"):
        pytest.skip("ReplayResult has no unflagged_actions yet")
    result = replay(INDEX_CASE)
    action = results.UnflaggedAction(code="PE", event_id="pe", day=11, day_latest=12, placements=["early"],
                                      candidates=[])
    with_action = result.model_copy(update={"unflagged_actions": [*result.unflagged_actions, action]})
    data = response(with_action).model_dump(mode="json")
    assert not list(Draft7Validator(SCHEMA).iter_errors(data))
    last = data["cards"][-1]
    assert last["summary"] == "For review: PE on day 11..12 has no decision point of this rule set"
    assert "Event `pe`" in last["detail"] and last["detail"].startswith(f"**{NOTICE}**")


def test_a_card_marks_case_specific_rows_and_a_disputed_value():
    """Found in a trial: the cards' condition tables dropped '(case-specific)', and a card resting on
    the recomputed OI 36 (reported as 20) said so only inside its row."""
    result = replay(INDEX_CASE)
    detail = {dp.rule_id: cds_hooks.decision_point_detail(result, dp) for dp in result.decision_points}
    assert "| invasive\\_ventilation in place (case-specific) | yes |" in detail["step2-plasma-exchange"]
    assert detail["pards-oi-severe"].endswith("Rests on an index recomputed from the record where the source "
                                              "reports another figure: the row that says so.")
    assert "recomputed from the record" not in detail["step2-plasma-exchange"]

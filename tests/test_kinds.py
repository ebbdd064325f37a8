"""Codes that contain other codes: a rule asking for ILD is met by RP-ILD, never the reverse.

Each case runs through both evaluators (the engine, fed by derive/features.py, and the plain
reference evaluator), which must agree, and checks the day the rule fires or that it does not.
"""

from __future__ import annotations

import pytest
from conftest import SRC, ev, make_scenario

from escalation.derive.features import CodeMatch, DayFeatures
from escalation.derive.placement import place
from escalation.evaluate.engine import compile_ruleset
from escalation.evaluate.reference import evaluate
from escalation.evaluate.replay import run_pass
from escalation.load.ruleset import Ruleset
from escalation.load.vocabulary import CODES, DIAGNOSES, KIND_OF, broader_kinds, kinds_of, narrower


def one_rule(*conditions: dict, parameters: dict | None = None) -> Ruleset:
    """A rule set of one context rule with these conditions."""
    return Ruleset.model_validate({
        "ruleset": {"id": "kinds", "version": "0", "title": "kinds"},
        "labels": {"seen": {"kind": "context", "description": "seen"}},
        "rules": [{"id": "asks", "title": "Context: asks for a code", "proposes": ["seen"],
                   "rationale": "test", "sources": [SRC], "conditions": list(conditions),
                   "parameters": parameters or {}}],
    })


def fired_days(scenario, ruleset) -> list[int]:
    """Days the rule fires under the early placement, after checking both evaluators agree."""
    compiled = compile_ruleset(ruleset)
    engine = {w: [(f.rule_id, f.day, f.occurrence) for f in run_pass(scenario, compiled, w).flags]
              for w in ("early", "late")}
    assert engine == evaluate(scenario, ruleset)
    return [day for _, day, _ in engine["early"]]


def test_the_hierarchy_is_declared_once_with_sources():
    assert KIND_OF["RP-ILD"].parent == "ILD" and "ILD" in DIAGNOSES
    for child, link in KIND_OF.items():
        assert link.sources, child
        assert (child in DIAGNOSES) == (link.parent in DIAGNOSES)
        if child in CODES:
            assert CODES[child].kind == CODES[link.parent].kind


def test_narrower_runs_one_way():
    assert narrower("RP-ILD", "ILD") and not narrower("ILD", "RP-ILD")
    assert not narrower("ILD", "ILD")
    assert kinds_of("ILD") == {"ILD", "RP-ILD"} and kinds_of("RP-ILD") == {"RP-ILD"}
    assert broader_kinds("VV-ECMO") == ("ECMO",)


def test_an_ild_rule_matches_an_rp_ild_timeline():
    s = make_scenario(ev("finding", 3, code="malar_rash"), diagnoses=(("RP-ILD", 2),))
    assert fired_days(s, one_rule({"diagnosis": "ILD"})) == [2]


def test_an_rp_ild_rule_does_not_match_an_ild_timeline():
    s = make_scenario(ev("finding", 3, code="malar_rash"), diagnoses=(("ILD", 2),))
    assert fired_days(s, one_rule({"diagnosis": "RP-ILD"})) == []


@pytest.mark.parametrize("condition, recorded, days", [
    ({"active": "ECMO"}, "VV-ECMO", [4]),               # support: the broader rule counts VV-ECMO
    ({"active": "VV-ECMO"}, "ECMO", []),                # a timeline with only ECMO: mode unknown
    ({"given": ["CNI"]}, "Tac", [4]),                   # therapy
    ({"given": ["CyA"]}, "CNI", []),
])
def test_actions_follow_the_hierarchy_one_way(condition, recorded, days):
    kind = CODES[recorded].kind.value
    s = make_scenario(ev(kind, 4, code=recorded), ev("finding", 6, code="malar_rash"))
    assert fired_days(s, one_rule(condition))[:1] == days


def test_since_counts_the_starts_of_every_narrower_kind():
    s = make_scenario(ev("therapy", 2, code="Tac"), ev("therapy", 5, code="CyA"),
                      ev("finding", 9, code="malar_rash"))
    rs = one_rule({"since": ["CNI"], "of": "last", "op": ">=", "days": "d"},
                  parameters={"d": {"value": 3, "unit": "days", "assumption": True, "note": "test"}})
    assert fired_days(s, rs) == [8]  # three days after the last start, CyA on day 5


def test_features_report_matches_through_the_hierarchy_and_broader_codes():
    s = make_scenario(ev("support", 4, code="ECMO"), ev("finding", 6, code="malar_rash"),
                      diagnoses=(("RP-ILD", 1),))
    features = DayFeatures.build(s, place(s, "early"))
    found = features.code_matches(["ILD", "VV-ECMO"], 5)
    assert found == [CodeMatch("ILD", "RP-ILD", True), CodeMatch("VV-ECMO", "ECMO", False)]
    assert found[0].text() == "RP-ILD recorded; counts for ILD, as a kind of it"
    assert found[1].text() == "ECMO recorded; rule asks for VV-ECMO, a narrower kind"
    assert features.code_matches(["VV-ECMO"], 3) == []  # not yet begun on day 3

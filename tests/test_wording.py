"""One condition reads alike in every output (load/wording.py): the decision point's text is the
why-not label with the parameter names added, and the rule file's wording has the names where
the label has the values."""

from __future__ import annotations

import pytest
from conftest import ROOT

from escalation.load.loading import load_ruleset
from escalation.load.ruleset import condition_parameters
from escalation.load.wording import condition_text

RULE_FILES = sorted((ROOT / "rules").glob("*.yaml"))
CONDITIONS = [(path.name, rule, cond) for path in RULE_FILES for rule in load_ruleset(path).rules
              for cond in rule.conditions]


@pytest.mark.parametrize(("file", "rule", "cond"), CONDITIONS,
                         ids=[f"{f}:{r.id}:{i}" for i, (f, r, _) in enumerate(CONDITIONS)])
def test_the_three_renderings_say_the_same_thing(file, rule, cond):
    values, full, written = (condition_text(cond, rule, s) for s in ("values", "full", "written"))
    assert full == values or full.startswith(values + " ("), (values, full)
    names = [n for n in condition_parameters(cond) if n != "any"]
    for name in names:
        assert name in written, (name, written)
        assert name not in values, (name, values)
        assert name in full, (name, full)
    if not names:
        assert written == values


def test_the_shipped_rules_cover_every_kind_of_condition():
    kinds = {type(c).__name__ for _, _, c in CONDITIONS}
    assert kinds >= {"MeasureCondition", "TrendCondition", "GivenCondition", "SinceCondition", "ActiveCondition",
                     "DiagnosisCondition", "StepCondition"}


def test_values_need_the_rule():
    _, rule, cond = next(c for c in CONDITIONS if c[2].__class__.__name__ == "MeasureCondition")
    with pytest.raises(ValueError, match="come from its rule"):
        condition_text(cond, None, "values")
    assert condition_text(cond, style="written").startswith(cond.measure)


def test_a_look_back_of_any_says_the_latest_reading_counts(pathway):
    """Found in a user trial: '(reading ever)' read as 'any reading ever', yet the latest reading
    at any distance is the one compared (day 457 of the index case shows 450, below 500, though
    day 0 read >7500)."""
    from escalation.load.wording import condition_text

    rule = pathway.rule("step1-combination")
    cond = next(c for c in rule.conditions if getattr(c, "within_days", None) == "any")
    assert condition_text(cond, rule, "full") == "anti_mda5 >= 500 (anti_mda5_high; reading at any time, the latest)"

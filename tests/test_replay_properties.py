"""Properties of the replay: no look-ahead, byte-identical reruns, no leaks between patients."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import INDEX_CASE, PATHWAY, ROOT, ev, make_scenario, obs, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import timelines

from escalation.evaluate.engine import EngineError, Session, compile_ruleset
from escalation.evaluate.replay import run_pass
from escalation.load.loading import load_ruleset
from escalation.report.text import to_json, to_table

PATHWAY_RULES = load_ruleset(PATHWAY)


def _before(scenario, ruleset, which, day, through=None):
    compiled = compile_ruleset(ruleset)
    flags = run_pass(scenario, compiled, which, through).flags
    return [(f.rule_id, f.day, f.occurrence, f.fact) for f in flags if f.day < day]


@pytest.mark.parametrize("day", [-6, 0, 5, 11, 12, 20, 24, 25, 28, 35, 41, 60, 110, 200, 400])
@pytest.mark.parametrize("which", ["early", "late"])
def test_truncation_changes_no_earlier_flag_on_the_index_case(index_case, pathway, which, day):
    full = _before(index_case, pathway, which, day)
    cut = _before(index_case.truncated(day), pathway, which, day, through=day)
    assert cut == full


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=timelines(), day=st.integers(-3, 45))
def test_truncation_on_generated_timelines(scenario, day):
    for which in ("early", "late"):
        full = _before(scenario, PATHWAY_RULES, which, day)
        cut = _before(scenario.truncated(day), PATHWAY_RULES, which, day, through=day)
        assert cut == full


def test_second_run_is_byte_identical(index_case, pathway):
    first = run(index_case, pathway)
    second = run(index_case, pathway)
    assert to_json(first) == to_json(second)
    assert to_table(first) == to_table(second)


def test_cli_output_is_byte_identical_across_processes():
    cmd = [sys.executable, "-m", "escalation", "replay", str(INDEX_CASE), "--format", "json"]
    outs = [subprocess.run(cmd, capture_output=True, check=True, cwd=ROOT).stdout for _ in range(2)]
    assert outs[0] == outs[1] and b'"decision_points"' in outs[0]


def test_two_scenarios_in_one_process_do_not_leak(index_case, pathway):
    alone = to_json(run(index_case, pathway))
    small = make_scenario(ev("therapy", 0, code="RTX"), ev("finding", 3, code="b_cell_recovery"),
                          obs(4, pip=35), sid="other")
    small_alone = to_json(run(small, pathway))
    # interleave: index, small, index, small; each must come out as it did alone
    assert to_json(run(small, pathway)) == small_alone
    assert to_json(run(index_case, pathway)) == alone
    assert to_json(run(small, pathway)) == small_alone
    fired = [dp["rule_id"] for dp in json.loads(small_alone)["decision_points"]]
    assert "rtx-redose" in fired and "step1-combination" not in fired


def test_only_one_live_session_per_process(pathway):
    compiled = compile_ruleset(pathway)
    with Session(compiled):
        with pytest.raises(EngineError, match="another engine session is live"):
            Session(compiled)
    # once closed, a new session opens normally
    with Session(compiled) as s:
        assert s.evaluate({"day": 0}) == []


def test_two_versions_of_a_rule_set_in_one_process(index_case, pathway):
    moved = pathway.with_overrides({("step4-rituximab", "pe_days_before_refractory"): 3})
    a, b = run(index_case, pathway), run(index_case, moved)
    assert a.ruleset.content_hash != b.ruleset.content_hash
    day = {r.ruleset.content_hash: next(d.day for d in r.decision_points if d.rule_id == "step4-rituximab")
           for r in (a, b)}
    assert day[a.ruleset.content_hash] == 18
    assert day[b.ruleset.content_hash] == 14  # 3 days after PE, once the rebound (day 13) is seen


def test_the_cli_script_is_installed_and_says_research_only():
    script = Path(sys.executable).parent / "escalation"
    out = subprocess.run([str(script), "replay", str(INDEX_CASE)], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    assert out.startswith("RESEARCH REVIEW ONLY")
    assert "step2-plasma-exchange" in out


def test_a_replay_where_nothing_fires_exits_cleanly(tmp_path):
    """Regression: durable_rules aborted the process when a session was deleted in a ruleset
    where no action had ever run; a fresh process with nothing to flag must still exit 0."""
    import yaml

    scenario = make_scenario(obs(0, anti_mda5=300), diagnoses=(("JDM", 0),))
    path = tmp_path / "quiet.yaml"
    path.write_text(yaml.safe_dump(scenario.model_dump(mode="json", exclude_none=True)))
    done = subprocess.run([sys.executable, "-m", "escalation", "replay", str(path), "--format", "json"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert '"decision_points": []' in done.stdout

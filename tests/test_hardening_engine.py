"""Hardening of the engine seam (issue "Hardening", items 1, 5, 8, 9 and 13).

Each test failed on the code before the fix. Whatever could hang durable_rules (create_ruleset
loops for ever, deaf to Ctrl-C, on too many rules) or abort the process runs in a child process
with a timeout and a memory limit, so that a regression fails a test instead of the test run.
"""

from __future__ import annotations

import json
import math
import resource
import subprocess
import sys
import textwrap
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import INDEX_CASE, PATHWAY, ROOT, SRC, ev, make_scenario, obs
from hypothesis import given, settings
from hypothesis import strategies as st

from escalation.evaluate import engine
from escalation.evaluate.engine import EngineError, Session, compile_ruleset
from escalation.evaluate.reference import evaluate
from escalation.evaluate.replay import replay
from escalation.load.errors import InputError
from escalation.load.loading import load_ruleset, load_scenario

REGRESSIONS = ROOT / "tests" / "regressions" / "engine"
MEMORY_LIMIT = 1 << 30
MAX_STACK, MAX_FACT_FIELDS = 64, 254  # events.c:18 MAX_STACK_SIZE; state.h:20 MAX_OBJECT_PROPERTIES - 1


def fnv1a(text: str) -> int:
    """The engine's hash. New with the fix: imported here, so that on the old code each test of
    this file fails for its own reason rather than all of them at collection."""
    from escalation.evaluate.limits import fnv1a

    return fnv1a(text)


def program_for(ruleset):
    from escalation.evaluate.engine import program_for

    return program_for(ruleset)


# --- helpers ------------------------------------------------------------------------------------


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def isolated(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a command in a child process with a memory limit; a hang fails the test."""
    try:
        return subprocess.run(args, check=False, capture_output=True, text=True, timeout=timeout,
                              preexec_fn=_limited, cwd=ROOT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(map(str, args))} still running after {timeout} s: the engine hangs")


def cli(*args: Any, timeout: float = 120) -> subprocess.CompletedProcess:
    return isolated([sys.executable, "-m", "escalation", *map(str, args)], timeout)


def rule(rule_id: str, conditions: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A context rule (no therapy step) with one threshold parameter, t, in %."""
    return {"id": rule_id, "title": f"Context: {rule_id} for review", "proposes": ["note"],
            "rationale": "a test rule", "sources": [SRC],
            "parameters": {"t": {"value": 10, "unit": "%", "assumption": True, "note": "a test value"}},
            "conditions": conditions, **extra}


class _Plain(yaml.SafeDumper):
    """Repeated values written out: the loader refuses anchors on mappings and lists."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def write_rules(path: Path, rules: list[dict[str, Any]]) -> Path:
    data = {"ruleset": {"id": "hardening", "version": "1", "title": "engine limits"},
            "labels": {"note": {"kind": "context", "description": "a note"}}, "rules": rules}
    path.write_text(yaml.dump(data, Dumper=_Plain, sort_keys=False), encoding="utf-8")
    return path


def line_of_rule(path: Path, rule_id: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, 1) if line.strip() == f"- id: {rule_id}")


SPO2 = {"measure": "spo2", "op": ">=", "threshold": "t"}
VENTILATED = make_scenario(ev("support", 0, code="invasive_ventilation", until=3), obs(0, spo2=95),
                           obs(2, spo2=96), diagnoses=(("JDM", 0),))


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("scenario") / "ventilated.yaml"
    path.write_text(yaml.safe_dump(VENTILATED.model_dump(mode="json", exclude_none=True), sort_keys=False))
    return path


# --- item 1: the engine's fixed limits, refused when a rule set is loaded -----------------------


def test_513_rules_are_refused_by_check_instead_of_hanging_the_replay(tmp_path, scenario_file):
    path = write_rules(tmp_path / "many.yaml", [rule(f"r{i}", [{"diagnosis": "JDM"}]) for i in range(513)])
    for args in (("check", path), ("replay", scenario_file, "--rules", path)):
        done = cli(*args, timeout=60)
        assert done.returncode == 2, done.stdout + done.stderr
        assert f"{path}:{line_of_rule(path, 'r64')} (rules[64].id): rule 'r64' is one rule too many" in done.stderr
        assert f"stack of {MAX_STACK} entries (MAX_STACK_SIZE, events.c:18)" in done.stderr
        assert "Traceback" not in done.stderr


def test_64_rules_replay_and_the_65th_is_refused(tmp_path, scenario_file):
    rules = [rule(f"r{i}", [{"active": "invasive_ventilation"}, SPO2], repeat="each_day") for i in range(65)]
    fits = write_rules(tmp_path / "fits.yaml", rules[:64])
    done = cli("replay", scenario_file, "--rules", fits, "--format", "json")
    assert done.returncode == 0, done.stderr
    points = json.loads(done.stdout)["decision_points"]
    assert len(points) == 64 * 2  # every rule on day 0 and day 2, the days with an SpO2 reading
    with pytest.raises(InputError, match=r"rule 'r64' is one rule too many.*would need 65"):
        load_ruleset(write_rules(tmp_path / "over.yaml", rules))


def test_a_rule_takes_at_most_14_measure_conditions(tmp_path, scenario_file):
    fits = write_rules(tmp_path / "fits.yaml", [rule("wide", [SPO2] * 14)])
    done = cli("replay", scenario_file, "--rules", fits, "--format", "json")
    assert done.returncode == 0, done.stderr
    assert [p["rule_id"] for p in json.loads(done.stdout)["decision_points"]] == ["wide"]
    over = write_rules(tmp_path / "over.yaml", [rule("wide", [SPO2] * 15)])
    done = cli("check", over)
    assert done.returncode == 2
    assert (f"{over}:{line_of_rule(over, 'wide') + 13} (rules[0].conditions): rule 'wide' needs 32 entries "
            "in the engine's expression sequence, which holds 31") in done.stderr


def test_a_repeating_rule_takes_one_measure_condition_less(tmp_path):
    write_rules(tmp_path / "fits.yaml", [rule("wide", [SPO2] * 13, repeat="each_day")])
    load_ruleset(tmp_path / "fits.yaml")
    with pytest.raises(InputError, match="rule 'wide' needs 32 entries"):
        load_ruleset(write_rules(tmp_path / "over.yaml", [rule("wide", [SPO2] * 14, repeat="each_day")]))


def _given_lists(n: int) -> list[dict[str, Any]]:
    """n `given` conditions, each a different list of codes (so a different field), all true once
    MPT has started."""
    others = ["PSL", "CyA", "Tac", "IVCY", "IVIG", "RTX", "MMF", "TMP-SDZ", "PE", "VV-ECMO",
              "invasive_ventilation", "oxygen_mask", "nasal_cannula", "prone_positioning", "transfer",
              "discharge", "follow_up", "malar_rash", "gottron_sign", "b_cell_recovery", "admission_prior"]
    lists = [["MPT", *c] for c in combinations(others, 3)][:n]
    assert len(lists) == n
    return [{"given": codes} for codes in lists]


def test_a_fact_takes_254_fields_and_not_255(tmp_path):
    # id, sid, kind, the rule's fired-field and 250 features: 254 fields, the engine's most
    scenario = make_scenario(ev("therapy", 0, code="MPT"), obs(1, spo2=95))
    path = write_rules(tmp_path / "fits.yaml", [rule("broad", _given_lists(250))])
    code = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(ROOT / 'tests')!r})
        import yaml
        from escalation.load.loading import load_ruleset
        from escalation.load.scenario import Scenario
        from escalation.evaluate.replay import replay
        sc = Scenario.model_validate(yaml.safe_load({yaml.safe_dump(scenario.model_dump(mode='json'))!r}))
        print([(f.rule_id, f.days) for f in replay(sc, load_ruleset({str(path)!r})).flags])
    """)
    done = isolated([sys.executable, "-c", code])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[('broad', (0, 0))]"
    over = write_rules(tmp_path / "over.yaml", [rule("broad", _given_lists(251))])
    with pytest.raises(InputError, match=f"could carry 255 fields; the engine takes at most {MAX_FACT_FIELDS}"):
        load_ruleset(over)


def test_shipped_rule_sets_fit_the_engine():
    for path in sorted((ROOT / "rules").glob("*.yaml")):
        assert program_for(load_ruleset(path)).problem is None, path


# --- item 8: engine field names that share the engine's hash ------------------------------------


def test_rule_ids_whose_fields_once_shared_a_hash_both_fire():
    scenario = make_scenario(obs(0, spo2=95), obs(10, spo2=95), diagnoses=(("JDM", 0), ("RP-ILD", 5)))
    flags = replay(scenario, load_ruleset(REGRESSIONS / "fnv-collision.yaml")).flags
    assert [(f.rule_id, f.days) for f in flags] == [("ripfo", (0, 0)), ("r1rja", (5, 5))]
    assert fnv1a("fired__ripfo") == fnv1a("fired__r1rja")  # the engine's FNV-1a, as in json.c


def test_no_two_engine_names_share_a_hash():
    for path in [*sorted((ROOT / "rules").glob("*.yaml")), REGRESSIONS / "fnv-collision.yaml"]:
        program = program_for(load_ruleset(path))
        names = ["id", "sid", "kind", "$s", *(n for names in program.slots.values() for n in names)]
        assert len({fnv1a(n) for n in names}) == len(names), path


def test_fnv1a_is_the_engines_hash():
    # constants the C source spells out next to the names they hash (rete.c:11-39, state.h:4-5)
    assert fnv1a("all") == 321211332 and fnv1a("$lte") == 2350824890 and fnv1a("$m") == 1690058490
    assert fnv1a("id") == 926444256 and fnv1a("sid") == 3593476751


# --- item 9: the engine compares the value the user gave, exactly ------------------------------


def _ecmo_days(ruleset) -> tuple[list[int], list[int]]:
    scenario = load_scenario(INDEX_CASE)
    engine_days = sorted({f.day for p in replay(scenario, ruleset).passes.values() for f in p.flags
                          if f.rule_id == "step3-ecmo-oxygenation"})
    reference_days = sorted({d for ds in evaluate(scenario, ruleset).values() for r, d, _ in ds
                             if r == "step3-ecmo-oxygenation"})
    return engine_days, reference_days


def test_a_threshold_with_many_decimals_is_not_rounded():
    pathway = load_ruleset(PATHWAY)
    assert _ecmo_days(pathway) == ([24], [24])  # MAP 18 on day 24 meets map_at_least 18
    above = pathway.with_overrides({("step3-ecmo-oxygenation", "map_at_least"): 18.0000004})
    assert _ecmo_days(above) == ([], [])


def test_numbers_the_engine_parser_refuses_in_exponent_form_are_compared_exactly(tmp_path):
    """1e-05 is what json.dumps writes, and the engine's parser refuses it (error 204)."""
    scenario = make_scenario(obs(0, ino=1.5e-05), obs(1, ino=1e-05), obs(2, ino=3e-06))
    tiny = rule("tiny", [{"measure": "ino", "op": ">", "threshold": "t"}], repeat="each_day",
                parameters={"t": {"value": 1e-05, "unit": "ppm", "assumption": True, "note": "tiny"}})
    base = load_ruleset(write_rules(tmp_path / "tiny.yaml", [tiny]))
    for t, days in ((1e-05, [0]), (1.4999999e-05, [0]), (3e-06, [0, 1]), (2.9999999e-06, [0, 1, 2])):
        rs = base.with_overrides({("tiny", "t"): t})
        assert [f.day for f in replay(scenario, rs).passes["early"].flags] == days, t
        assert [d for _, d, _ in evaluate(scenario, rs)["early"]] == days, t


@settings(max_examples=500, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**53), 2**53))
def test_every_finite_number_is_written_so_the_engine_reads_it_back_exactly(x):
    from escalation.evaluate.engine import json_number

    text = json_number(x)
    assert "e" not in text.lower()
    assert (float(text) if "." in text else int(text)) == x
    assert isinstance(x, int) or "." in text  # a double never reaches the engine as an integer


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_a_non_finite_parameter_is_refused_when_loaded(value):
    with pytest.raises(ValueError, match="must be a finite number"):
        load_ruleset(PATHWAY).with_overrides({("step3-ecmo-oi", "oi_above"): value})


# --- item 5: thresholds are data; one engine ruleset per rule-set shape -------------------------


def test_one_engine_ruleset_serves_every_parameter_value():
    pathway = load_ruleset(PATHWAY)
    scenario = load_scenario(INDEX_CASE)
    replay(scenario, pathway)
    registered = len(engine._REGISTERED)
    names = set()
    for i in range(40):  # thresholds, windows and repeat days alike
        rs = pathway.with_overrides({("step3-ecmo-oi", "oi_above"): 30 + i / 7,
                                     ("step2-plasma-exchange", "trend_window_days"): 7 + i % 5})
        names.add(compile_ruleset(rs).name)
        replay(scenario, rs)
    assert len(names) == 1 and len(engine._REGISTERED) == registered


MEMORY_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from conftest import PATHWAY, ev, make_scenario, obs
from escalation.evaluate.replay import replay
from escalation.load.loading import load_ruleset

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

scenario = make_scenario(ev("support", 0, code="invasive_ventilation"), obs(1, map=20, fio2=1.0, pao2=50),
                         obs(2, map=25, fio2=1.0, pao2=40), diagnoses=(("JDM", 0),))
pathway = load_ruleset(PATHWAY)
for i in range(2000):
    replay(scenario, pathway.with_overrides({{("step3-ecmo-oi", "oi_above"): 30 + i * 0.01}}))
    if i + 1 in (200, 2000):
        print(rss_mb(), flush=True)
"""


def test_memory_stays_flat_over_2000_parameter_values():
    done = isolated([sys.executable, "-c", MEMORY_SCRIPT.format(tests=str(ROOT / "tests"))], timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    at_200, at_2000 = map(float, done.stdout.split())
    assert at_2000 - at_200 < 30, f"RSS grew from {at_200:.0f} MB to {at_2000:.0f} MB"


# --- item 13: engine errors say which file, rule and value --------------------------------------


def test_a_refusal_of_the_engine_points_at_the_file_line_and_rule(tmp_path, scenario_file):
    path = write_rules(tmp_path / "wide.yaml", [rule("ok", [SPO2]), rule("wide", [SPO2] * 15)])
    done = cli("replay", scenario_file, "--rules", path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"error: {path}:")
    assert "(rules[1].conditions): rule 'wide' needs 32 entries" in done.stderr


def test_an_engine_error_names_the_file_line_rule_and_value():
    compiled = compile_ruleset(load_ruleset(PATHWAY))
    key = "oi__w0"  # the OI reading of the day, which step3-ecmo-oi compares first
    assert key in compiled.binding
    with Session(compiled) as session, pytest.raises(EngineError) as caught:
        session.evaluate({"day": 3, key: math.inf})
    err = caught.value
    assert err.file.endswith("rules/report-pathway.yaml") and err.line == line_of_rule(PATHWAY, "step3-ecmo-oi")
    assert (err.rule, err.value) == ("step3-ecmo-oi", math.inf)
    assert str(err).startswith(f"{err.file}:{err.line} (rule 'step3-ecmo-oi'): oi__w0 = inf on day 3")


def test_a_variant_rule_points_at_the_variant_and_the_others_at_its_base():
    variant = ROOT / "rules" / "rtx-earlier.yaml"
    rs = load_ruleset(variant)
    file, line = rs.origin("step4-rituximab")
    assert file.endswith("rtx-earlier.yaml") and line == line_of_rule(variant, "step4-rituximab")
    file, line = rs.origin("step3-ecmo-oi")
    assert file.endswith("report-pathway.yaml") and line == line_of_rule(PATHWAY, "step3-ecmo-oi")


def test_each_fact_id_is_checked_with_the_engines_own_hash_of_it():
    """A session hashes each fact id one digit on from an earlier id's hash; every hash must be
    the engine's FNV-1a of the whole id, and an id whose hash an earlier one has is refused."""
    from escalation.evaluate.limits import fnv1a as engine_hash

    compiled = compile_ruleset(load_ruleset(PATHWAY))
    with Session(compiled) as session:
        tails = [session._fact_id() for _ in range(1234)]
        assert tails[:3] == ["0", "1", "2"] and tails[-1] == "1233"
        assert session._tail_hashes == [engine_hash(f"{session.sid}.{t}") for t in tails]
        session._hashes.add(engine_hash(f"{session.sid}.1234"))
        with pytest.raises(EngineError, match="shares its engine hash"):
            session._fact_id()

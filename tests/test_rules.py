"""Each rule of the report's pathway on small timelines written for it: where it fires and where
it must not."""

from __future__ import annotations

import pytest
from conftest import ROOT, ev, make_scenario, obs, run

from escalation.load.loading import load_ruleset

DX = (("JDM", 0), ("RP-ILD", 0))


def fired(scenario, pathway) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for dp in run(scenario, pathway).decision_points:
        out.setdefault(dp.rule_id, []).append(dp.day)
    return out


# --- step 1 ----------------------------------------------------------------------------------

def test_step1_fires_on_jdm_rpild_and_raised_titre(pathway):
    s = make_scenario(obs(2, anti_mda5=800), diagnoses=DX)
    assert fired(s, pathway)["step1-combination"] == [2]


@pytest.mark.parametrize("titre, dx", [
    (300, DX),                                   # titre within the reference range
    ({"value": 400, "comparator": "<"}, DX),     # only known to be below 400
    (800, (("JDM", 0),)),                        # no RP-ILD diagnosis
])
def test_step1_does_not_fire(pathway, titre, dx):
    s = make_scenario(obs(2, anti_mda5=titre), diagnoses=dx)
    assert "step1-combination" not in fired(s, pathway)


def test_step1_waits_for_the_later_diagnosis(pathway):
    s = make_scenario(obs(0, anti_mda5={"value": 7500, "comparator": ">"}),
                      diagnoses=(("JDM", 0), ("RP-ILD", 6)))
    assert fired(s, pathway)["step1-combination"] == [6]


# --- step 2 ----------------------------------------------------------------------------------

def _step2_timeline(second_titre):
    return [obs(0, anti_mda5=800), obs(4, anti_mda5=second_titre),
            ev("therapy", 0, code="MPT"), ev("support", 5, code="invasive_ventilation")]


def test_step2_fires_when_ventilated_and_titre_not_falling(pathway):
    s = make_scenario(*_step2_timeline(900), diagnoses=DX)
    result = fired(s, pathway)
    assert result["step2-plasma-exchange"] == [5]


def test_step2_does_not_fire_when_titre_falls(pathway):
    s = make_scenario(*_step2_timeline(400), diagnoses=DX)
    assert "step2-plasma-exchange" not in fired(s, pathway)


def test_step2_does_not_fire_without_ventilation(pathway):
    s = make_scenario(*_step2_timeline(900)[:3], diagnoses=DX)
    assert "step2-plasma-exchange" not in fired(s, pathway)


def test_step2_uses_a_reported_trend_when_no_numbers_exist(pathway):
    s = make_scenario(obs(0, anti_mda5=800), ev("therapy", 0, code="MPT"),
                      ev("trend_report", 3, marker="anti_mda5", direction="not_decreasing"),
                      ev("support", 5, code="invasive_ventilation"), diagnoses=DX)
    assert fired(s, pathway)["step2-plasma-exchange"] == [5]


# --- step 3 ----------------------------------------------------------------------------------

DAY7 = {"spo2": {"value": 90, "comparator": "<"}, "fio2": 1.0, "map": 18, "ino": 5}


def test_step3_oxygenation_fires_on_the_day24_picture(pathway):
    s = make_scenario(ev("support", 1, code="invasive_ventilation"), obs(7, **DAY7))
    assert fired(s, pathway)["step3-ecmo-oxygenation"] == [7]


@pytest.mark.parametrize("change", [
    {"map": 15},                                   # support not high enough
    {"fio2": 0.9},                                 # not on FiO2 1.0
    {"spo2": {"value": 92, "comparator": "<"}},    # only known to be below 92
    {"spo2": {"min": 86, "max": 96}},              # a span reaching above 90
])
def test_step3_oxygenation_does_not_fire(pathway, change):
    s = make_scenario(ev("support", 1, code="invasive_ventilation"), obs(7, **{**DAY7, **change}))
    assert "step3-ecmo-oxygenation" not in fired(s, pathway)


def test_step3_oxygenation_needs_inhaled_no(pathway):
    values = {k: v for k, v in DAY7.items() if k != "ino"}
    s = make_scenario(ev("support", 1, code="invasive_ventilation"), obs(7, **values))
    assert "step3-ecmo-oxygenation" not in fired(s, pathway)


def test_step3_oi_route_fires_above_40(pathway):
    # OI = 20 x 1.0 x 100 / 40 = 50
    s = make_scenario(ev("support", 1, code="invasive_ventilation"), obs(3, pao2=40, map=20, fio2=1.0))
    assert fired(s, pathway)["step3-ecmo-oi"] == [3]


def test_step3_oi_route_does_not_fire_at_or_below_40(pathway):
    # OI = 20 x 1.0 x 100 / 50 = 40, not above 40
    s = make_scenario(ev("support", 1, code="invasive_ventilation"), obs(3, pao2=50, map=20, fio2=1.0))
    assert "step3-ecmo-oi" not in fired(s, pathway)


# --- step 4 ----------------------------------------------------------------------------------

def _refractory(after_pe_titre):
    return [*_step2_timeline(900), ev("procedure", 5, code="PE"),
            obs(8, id="t8", anti_mda5=500), obs(12, id="t12", anti_mda5=after_pe_titre),
            ev("finding", 10, code="respiratory_not_improving")]


def test_step4_fires_on_rebound_after_pe_without_improvement(pathway):
    s = make_scenario(*_refractory(1500), diagnoses=DX)
    assert fired(s, pathway)["step4-rituximab"] == [12]


def test_step4_does_not_fire_when_titre_keeps_falling(pathway):
    s = make_scenario(*_refractory(300), diagnoses=DX)
    assert "step4-rituximab" not in fired(s, pathway)


def test_step4_waits_the_pe_days_parameter(pathway):
    # rebound seen on day 9, only 4 days into PE: the flag waits until PE has run 7 days (day 12)
    events = [*_step2_timeline(900), ev("procedure", 5, code="PE"), obs(8, id="t8", anti_mda5=500),
              obs(9, id="t9", anti_mda5=1500), ev("finding", 9, code="respiratory_not_improving"),
              obs(20, id="record-goes-on", pip=20)]
    assert fired(make_scenario(*events, diagnoses=DX), pathway)["step4-rituximab"] == [12]


def test_the_clock_stops_at_the_end_of_the_record(pathway):
    # the same timeline ending on day 9: nothing is known after it, so step 4 is never reached
    events = [*_step2_timeline(900), ev("procedure", 5, code="PE"), obs(8, id="t8", anti_mda5=500),
              obs(9, id="t9", anti_mda5=1500), ev("finding", 9, code="respiratory_not_improving")]
    s = make_scenario(*events, diagnoses=DX)
    assert "step4-rituximab" not in fired(s, pathway)
    late = run(s, pathway, through_day=12)
    assert [dp.day for dp in late.decision_points if dp.rule_id == "step4-rituximab"] == [12]


# --- add-ons and watches -----------------------------------------------------------------------

def _after_rtx(ecmo_until):
    return [*_refractory(1500), ev("support", 10, code="VV-ECMO", until=ecmo_until),
            ev("therapy", 15, code="RTX")]


def test_mmf_fires_a_week_after_rtx_while_on_ecmo(pathway):
    assert fired(make_scenario(*_after_rtx(40), diagnoses=DX), pathway)["add-mmf"] == [22]


def test_mmf_does_not_fire_once_off_ecmo(pathway):
    assert "add-mmf" not in fired(make_scenario(*_after_rtx(20), diagnoses=DX), pathway)


def test_rtx_redose_once_per_b_cell_report(pathway):
    s = make_scenario(ev("therapy", 0, code="RTX"),
                      *[ev("finding", d, id=f"b{d}", code="b_cell_recovery") for d in (30, 45, 70)],
                      obs(80, pip=20))
    assert fired(s, pathway)["rtx-redose"] == [30, 45, 70]


def test_rtx_redose_needs_a_first_dose(pathway):
    s = make_scenario(ev("finding", 30, code="b_cell_recovery"), ev("therapy", 31, code="IVIG"))
    assert "rtx-redose" not in fired(s, pathway)


@pytest.mark.parametrize("pip, fires", [(32, True), (30, False)])
def test_barotrauma_watch_is_strictly_above_30(pathway, pip, fires):
    s = make_scenario(ev("support", 1, code="invasive_ventilation"), obs(4, pip=pip))
    assert ("barotrauma-watch" in fired(s, pathway)) is fires


def test_infection_watch_on_immunosuppression_only(pathway):
    assert fired(make_scenario(ev("therapy", 2, code="MPT")), pathway)["infection-watch"] == [2]
    assert "infection-watch" not in fired(make_scenario(ev("therapy", 2, code="IVIG")), pathway)


def test_infection_watch_is_matched_to_prophylaxis(pathway):
    s = make_scenario(ev("therapy", 2, code="MPT"), ev("therapy", 3, code="TMP-SDZ"))
    [dp] = [d for d in run(s, pathway).decision_points if d.rule_id == "infection-watch"]
    assert (dp.actual_day, dp.lag_days) == (3, 1)


# --- PALICC severity context -------------------------------------------------------------------

@pytest.mark.parametrize("pao2, band", [
    (300, None),          # OI 10 x 1.0 x 100 / 300 = 3.3: below the mild band
    (200, "mild"),        # OI 5
    (100, "moderate"),    # OI 10
    (62.5, "severe"),     # OI 16: the lower bound of severe is inclusive
])
def test_oi_bands(pathway, pao2, band):
    s = make_scenario(ev("support", 0, code="invasive_ventilation"), obs(2, pao2=pao2, map=10, fio2=1.0))
    bands = {r.split("-")[-1] for r in fired(s, pathway) if r.startswith("pards-oi")}
    assert bands == ({band} if band else set())


def test_osi_needs_spo2_at_most_97(pathway):
    # OSI = 14 x 0.6 x 100 / 92 = 9.1: moderate; at SpO2 98 no OSI is computed at all
    vent = ev("support", 0, code="invasive_ventilation")
    assert "pards-osi-moderate" in fired(make_scenario(vent, obs(2, spo2=92, fio2=0.6, map=14)), pathway)
    assert not any(r.startswith("pards-osi") for r in
                   fired(make_scenario(vent, obs(2, spo2=98, fio2=0.6, map=14)), pathway))


def test_severity_needs_invasive_ventilation(pathway):
    s = make_scenario(obs(2, pao2=100, map=10, fio2=1.0))
    assert not any(r.startswith("pards") for r in fired(s, pathway))


@pytest.mark.parametrize("spo2, fio2, map_, band", [
    (96, 0.5, 10, "mild"),       # OSI 5.2
    (90, 1.0, 12, "severe"),     # OSI 13.3
    (97, 0.4, 10, None),         # OSI 4.1: below the mild band
])
def test_osi_bands(pathway, spo2, fio2, map_, band):
    vent = ev("support", 0, code="invasive_ventilation")
    got = {r.split("-")[-1] for r in fired(make_scenario(vent, obs(2, spo2=spo2, fio2=fio2, map=map_)), pathway)
           if r.startswith("pards-osi")}
    assert got == ({band} if band else set())


# --- the other shipped rule sets -----------------------------------------------------------------

ROMERO = load_ruleset(ROOT / "rules" / "romero-bueno-2020.yaml")
EARLIER = load_ruleset(ROOT / "rules" / "rtx-earlier.yaml")


def test_romero_bueno_first_line_needs_a_raised_titre():
    assert fired(make_scenario(obs(1, anti_mda5=900), diagnoses=DX), ROMERO)["rb-first-line"] == [1]
    assert "rb-first-line" not in fired(make_scenario(obs(1, anti_mda5=300), diagnoses=DX), ROMERO)


@pytest.mark.parametrize("vent_day, expected", [(3, [7]), (9, [9])])
def test_romero_bueno_add_on_waits_a_week_of_first_line(vent_day, expected):
    s = make_scenario(obs(0, anti_mda5=800), obs(2, id="t2", anti_mda5=900),
                      ev("support", vent_day, code="invasive_ventilation"), obs(20, pip=20), diagnoses=DX)
    assert fired(s, ROMERO)["rb-refractory-add-on"] == expected


def test_romero_bueno_add_on_not_when_the_titre_falls():
    s = make_scenario(obs(0, anti_mda5=800), obs(2, id="t2", anti_mda5=300),
                      ev("support", 3, code="invasive_ventilation"), obs(20, pip=20), diagnoses=DX)
    assert "rb-refractory-add-on" not in fired(s, ROMERO)


@pytest.mark.parametrize("finding_day, fires", [(15, True), (2, False)])
def test_romero_bueno_rescue_two_weeks_after_add_on_without_improvement(finding_day, fires):
    s = make_scenario(obs(0, anti_mda5=800), obs(2, id="t2", anti_mda5=900),
                      ev("support", 3, code="invasive_ventilation"),
                      ev("finding", finding_day, code="respiratory_not_improving"), obs(30, pip=20), diagnoses=DX)
    result = fired(s, ROMERO)
    assert result.get("rb-rescue") == ([21] if fires else None)


@pytest.mark.parametrize("map_, fires", [(18, True), (17, False)])
def test_romero_bueno_ecmo(map_, fires):
    s = make_scenario(obs(5, spo2={"value": 90, "comparator": "<"}, fio2=1.0, map=map_))
    assert ("rb-ecmo" in fired(s, ROMERO)) is fires


def test_rtx_earlier_puts_rituximab_up_with_plasma_exchange():
    result = fired(make_scenario(*_step2_timeline(900), diagnoses=DX), EARLIER)
    assert result["step4-rituximab"] == result["step2-plasma-exchange"] == [5]
    assert "step4-rituximab" not in fired(make_scenario(*_step2_timeline(400), diagnoses=DX), EARLIER)


# --- thresholds a reading can cross ----------------------------------------------------------

@pytest.mark.parametrize("param, value, message", [
    ("spo2_below", 0.9, "outside the range of spo2 [1, 100] %: SpO2 is a percentage"),
    ("fio2_at_least", 1.5, "outside the range of fio2 [0.21, 1] fraction, so the condition could never change"),
    ("map_at_least", -1, "outside the range of map [0, 80] cmH2O"),
])
def test_a_threshold_no_reading_can_cross_is_refused(tmp_path, param, value, message):
    """SpO2 below 0.9 (a fraction written for 90 %) or FiO2 at least 1.5 left step 3 a rule that
    never fires, and `check` passed it; readings are held to these ranges, so thresholds are too.
    In a rule file, on --set and on a sweep or grid point alike."""
    from escalation import api
    from escalation.load.errors import InputError

    text = (ROOT / "rules" / "report-pathway.yaml").read_text(encoding="utf-8")
    head, _, tail = text.partition(f"      {param}:\n")
    value_line = tail.splitlines()[0]
    assert value_line.strip().startswith("value:")
    path = tmp_path / "bad.yaml"
    path.write_text(head + f"      {param}:\n        value: {value}\n" + tail.split("\n", 1)[1], encoding="utf-8")
    with pytest.raises(InputError) as exc:
        load_ruleset(path)
    assert message in str(exc.value) and exc.value.line == head.count("\n") + 2
    assert exc.value.where == f"rules[2].parameters.{param}.value"
    with pytest.raises(InputError, match="outside the range"):
        api.replay(ROOT / "scenarios" / "index_case.yaml", overrides={f"step3-ecmo-oxygenation.{param}": value})


def test_thresholds_at_the_ends_of_a_range_are_kept(pathway):
    """`ino > 0` asks for any reading of inhaled nitric oxide: the bounds themselves are allowed."""
    from escalation import api

    result = api.replay(ROOT / "scenarios" / "index_case.yaml",
                        overrides={"step3-ecmo-oxygenation.fio2_at_least": 0.21, "step3-ecmo-oxygenation.spo2_below": 100})
    assert "step3-ecmo-oxygenation" in {dp.rule_id for dp in result.decision_points}


# --- steps that wait for each other -----------------------------------------------------------

def _with_waits(tmp_path, waits: dict[str, list[int]], extra_rules: list[dict] = ()):
    """The report's pathway with step_flagged conditions added to rules, and rules added."""
    import yaml

    data = yaml.safe_load((ROOT / "rules" / "report-pathway.yaml").read_text(encoding="utf-8"))
    for rule in data["rules"]:
        rule["conditions"] += [{"step_flagged": n} for n in waits.get(rule["id"], [])]
    data["rules"] += list(extra_rules)
    path = tmp_path / "waits.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize("waits, rule, where", [
    ({"step1-combination": [2]}, "step1-combination", "rules[0].conditions[3].step_flagged"),  # 1 <-> 2
    ({"step2-plasma-exchange": [2]}, "step2-plasma-exchange", "rules[1].conditions[4].step_flagged"),  # itself
])
def test_a_rule_waiting_for_a_step_that_waits_for_it_is_refused(tmp_path, waits, rule, where):
    """Found in a user trial: rules waiting on each other in a cycle passed `check`, and could
    never fire whatever the timeline."""
    from escalation.load.errors import InputError

    with pytest.raises(InputError) as exc:
        load_ruleset(_with_waits(tmp_path, waits))
    assert f"rule {rule!r} waits for step" in exc.value.message and "can never fire" in exc.value.message
    assert exc.value.where == where and exc.value.line is not None


def test_a_step_another_of_whose_rules_can_fire_is_kept(tmp_path):
    """A rule of step 1 waiting for step 1 is fine while another rule of step 1 needs nothing, and
    so is step 2 waiting for step 4, which rtx-redose (step 4, no wait) can reach."""
    assert load_ruleset(_with_waits(tmp_path, {"step2-plasma-exchange": [4]}))
    second = {"id": "step1-again", "step": 1, "title": "Step 1 for review: again", "proposes": ["MPT"],
              "rationale": "a test rule", "sources": [{"section": "Case presentation"}],
              "conditions": [{"step_flagged": 1}, {"diagnosis": "JDM"}]}
    assert load_ruleset(_with_waits(tmp_path, {}, [second])).rule("step1-again")


# --- wording: a title or rationale never reads as an order ------------------------------------

@pytest.mark.parametrize("old, new, message", [
    ('title: "Step 2 for review: plasma exchange (PE)"', 'title: "Step 2 for review: give plasma exchange now"',
     "a title must not read as an order"),
    ('title: "Step 2 for review: plasma exchange (PE)"', 'title: "For review: start PE immediately"',
     "a title must not read as an order"),
    ("      On first-line therapy, respiration", "      Start plasma exchange immediately. Give 5 sessions. On first-line therapy, respiration",
     "a rationale must not read as an order ('Start plasma exchange immediately.')"),
])
def test_an_order_after_the_first_word_is_refused(tmp_path, old, new, message):
    """Found in a user trial: only a title's first word was checked, so 'Step 2 for review: give
    plasma exchange now' passed, and a rationale (printed as written in detail and in CDS Hooks
    cards) was not checked at all."""
    from escalation.load.errors import InputError

    text = (ROOT / "rules" / "report-pathway.yaml").read_text(encoding="utf-8")
    assert text.count(old) == 1
    path = tmp_path / "orders.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(InputError) as exc:
        load_ruleset(path)
    assert message in exc.value.message


@pytest.mark.parametrize("param, value, message", [
    ("ino_above", 80, "compared with >, is the top of the range of ino (80 ppm): no reading is above it"),
    ("spo2_below", 1, "compared with <, is the bottom of the range of spo2 (1 %): no reading is < it"),
])
def test_a_threshold_at_the_end_no_reading_passes_is_refused(param, value, message):
    """Found in review: `ino > 80` or `spo2 < 1` lie within the range, yet no reading can be on
    the other side of them; the check now reads the operator."""
    from escalation import api
    from escalation.load.errors import InputError

    with pytest.raises(InputError) as exc:
        api.replay(ROOT / "scenarios" / "index_case.yaml", overrides={f"step3-ecmo-oxygenation.{param}": value})
    assert message in str(exc.value)


def _rule_with(title: str = "Step 2 for review: plasma exchange (PE)", rationale: str = "Because the titre rose."):
    from escalation.load.ruleset import Rule

    return Rule.model_validate({"id": "r", "step": 2, "title": title, "proposes": ["PE"], "rationale": rationale,
                                "sources": [{"section": "Case presentation"}], "conditions": [{"diagnosis": "JDM"}]})


@pytest.mark.parametrize("title", [
    "Step 2 for review - give plasma exchange now", "Step 2 for review, then give plasma exchange",
    "Step 2 for review: now give PE", "Plasma exchange for review (then start it today)",
    "Step 2 for review: PE. Give RTX", "Step 2 for review: PE\u2014give now", "Step 2 for review: PE -- start now",
    'Step 2 for review: "Give PE"',
])
def test_an_order_in_any_clause_of_a_title_is_refused(title):
    """Found in review and in a trial: a dash (spaced or not, or two hyphens), a sentence's end, a
    quotation mark, or a comma or bracket with a lead-in word ('now', 'then') let an order through."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="a title must not read as an order"):
        _rule_with(title=title)


@pytest.mark.parametrize("rationale", [
    "Immediately give plasma exchange.", "The titre rose. Then start RTX.", "Give RTX when the titre does not fall.",
])
def test_an_order_after_a_lead_in_word_is_refused(rationale):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="a rationale must not read as an order"):
        _rule_with(rationale=rationale)


@pytest.mark.parametrize("title, rationale", [
    ("Step 3 for review: start of VV-ECMO on day 24", "Use of IVIG is described in reference 1."),
    ("Context: use of inhaled nitric oxide, for review", "Increase in titre preceded the decision."),
    ("Step 2 for review: plasma exchange (PE)", "Options exist, e.g. add MMF or switch to Tac."),
    ("Step 2 for review: plasma exchange (PE)", "Two options were named: add cyclophosphamide, or switch."),
    ("Step 2 for review: plasma exchange (PE)", "The report says the team decided to\nadd MMF on day 40."),
    ("Step 2 for review: PE (start date per report)", "Switch to tacrolimus at follow-up is reported in the case."),
    ("Step 4 for review: rituximab (use after PE)", "Increase to FiO2 1.0 did not restore SpO2 on day 24."),
    ("Step 4 for review: RTX, order per ref. 4", "Stop dates of PE are not given. Start and stop dates are from Fig. 1."),
])
def test_prose_that_only_names_an_action_is_kept(title, rationale):
    """Found in review and in a trial: 'start of', 'use of', 'increase in', 'e.g. add', a list after a
    colon, a line that wraps onto a verb, a bracket or comma naming an action, and a sentence whose
    head names an action with a verb of its own were refused as orders."""
    assert _rule_with(title=title, rationale=rationale).id == "r"


def test_orders_in_the_other_texts_a_rule_set_prints_are_refused(tmp_path):
    """Found in a trial: a label's description ('Start co-trimoxazole prophylaxis now', printed in
    CDS Hooks cards as what is put up for review), a case_specific note and the rule set's title
    passed `check` worded as orders; the title error now quotes the clause at fault."""
    import yaml
    from pydantic import ValidationError

    from escalation.load.errors import InputError
    from escalation.load.ruleset import Label, RulesetInfo

    with pytest.raises(ValidationError, match="a label's description must not read as an order"):
        Label(kind="watch", description="Start co-trimoxazole prophylaxis now")
    with pytest.raises(ValidationError, match="a rule set's title must not read as an order"):
        RulesetInfo(id="x", version="1", title="Give rituximab early")
    data = yaml.safe_load((ROOT / "rules" / "report-pathway.yaml").read_text(encoding="utf-8"))
    data["rules"][1]["conditions"][2]["case_specific"] = "Give RTX when the titre does not fall."
    path = tmp_path / "cs.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with pytest.raises(InputError, match="a case_specific note must not read as an order"):
        load_ruleset(path)
    with pytest.raises(ValidationError, match="'Give RTX' in 'Step 2 for review: PE. Give RTX'"):
        _rule_with(title="Step 2 for review: PE. Give RTX")


def test_a_title_says_for_review_as_words_not_inside_another():
    """Found in a trial: 'Step 2 for reviewing: PE' passed as saying 'for review'."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="a title says 'for review'"):
        _rule_with(title="Step 2 for reviewing: PE")
    assert _rule_with(title="Step 2 For Review: PE").title


def test_an_sf_threshold_above_what_spo2_and_fio2_allow_is_refused():
    """Found in a trial: S/F was bounded at 500, so `sf > 480` passed though SpO2 100 % on FiO2 0.21
    gives at most about 476."""
    from escalation.load.ruleset import threshold_problem

    assert threshold_problem("sf", ">", 480) is not None and threshold_problem("sf", ">", 300) is None


@pytest.mark.parametrize("text", [
    "Give rituximab now, the titre has not fallen.", "Give PE: the titre has risen.",
    "Add RTX (the titre has not fallen).", "Start PE and the titre has fallen in 3 cases.",
])
def test_a_verb_of_another_clause_does_not_make_an_order_prose(text):
    """Found in review: a verb after a comma, colon, bracket or 'and' read as the clause's own,
    so 'Give rituximab now, the titre has not fallen.' passed as prose."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="a rationale must not read as an order"):
        _rule_with(rationale=text)


@pytest.mark.parametrize("title, rationale, note", [
    ("For review: start date uncertain", "Start date not reported.",
     "Start day of ventilation taken from the case report (day 11)."),
    ("Context: stop dates, for review", "Start and stop dates per the report.", "Order follows Table 2."),
    ("Step 3 for review: VV-ECMO \u2013 start criteria of ELSO", "Switch to rituximab reported in 2 of 5 cases.",
     "Begin and end of ECMO are from Fig. 1."),
    ("Step 5 for review: MMF, e.g. add to RTX", "Order follows Table 2.", "Start date not reported."),
])
def test_nouns_made_of_verbs_are_prose(title, rationale, note):
    """Found in review: 'start date', 'start and stop dates', 'Switch ... reported', a phrase after
    'e.g.' in a title were refused as orders."""
    from escalation.load.ruleset import MeasureCondition

    rule = _rule_with(title=title, rationale=rationale)
    assert rule.id == "r" and MeasureCondition(measure="spo2", op="<", threshold="t", case_specific=note)


def test_a_label_or_rule_set_title_is_read_as_a_phrase_after_a_colon_or_dash():
    """Found in review: 'Pneumocystis: start co-trimoxazole prophylaxis now' passed as a label."""
    from pydantic import ValidationError

    from escalation.load.ruleset import Label, RulesetInfo

    with pytest.raises(ValidationError, match="a label's description must not read as an order"):
        Label(kind="watch", description="Pneumocystis: start co-trimoxazole prophylaxis now")
    with pytest.raises(ValidationError, match="a rule set's title must not read as an order"):
        RulesetInfo(id="x", version="1", title="Report pathway - start RTX earlier")
    assert RulesetInfo(id="x", version="1", title="t", description="Without response: add MMF, or switch a drug.")

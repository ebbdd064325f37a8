"""The literature cohort (Table 1): records, summary verdicts, the cross-source check, placement, CLI.

Every verdict is asserted together with the value computed from the records, and the functions are
also run on altered records or timelines to show that the verdicts follow the data.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import typer
from conftest import INDEX_CASE, ROOT
from typer.testing import CliRunner

from escalation.cli.cohort import cohort_app
from escalation.literature.check import check, check_pair
from escalation.literature.placement import STEP_OF, place, placement
from escalation.literature.records import ABSENT, NO_DATA, PRESENT, Table1, load_records
from escalation.literature.summary import summary
from escalation.load.errors import InputError
from escalation.load.loading import load_scenario
from escalation.load.scenario import Scenario
from escalation.match.results import NOTICE

RECORDS = ROOT / "scenarios" / "literature" / "table1.yaml"

app = typer.Typer()


@app.callback()
def _root() -> None:
    """A stand-in for the main app, which mounts the sub-app the same way."""


app.add_typer(cohort_app, name="cohort")
runner = CliRunner()


@pytest.fixture(scope="module")
def table() -> Table1:
    return load_records(RECORDS)


@pytest.fixture(scope="module")
def figures(table):
    return {f.id: f for f in summary(table, "table1.yaml").results}


def by_id(table: Table1, rid: str):
    return next(r for r in table.records if r.id == rid)


def altered(table: Table1, rid: str, **changes) -> Table1:
    """The same records with one record changed (validated again as a whole)."""
    data = table.model_dump(mode="json")
    for r in data["records"]:
        if r["id"] == rid:
            r.update(changes)
    return Table1.model_validate(data)


# --- The records --------------------------------------------------------------------------------


def test_eighteen_rows_in_order_with_distinct_ids(table):
    assert [r.row for r in table.records] == list(range(1, 19))
    assert len({r.id for r in table.records}) == 18


def test_no_data_absent_and_present_stay_distinct(table):
    # row 3 (Nonaka): O2, CMV and ECMO absent; row 1 (Tosun): all three no data; row 2: all present
    assert [by_id(table, "row03-nonaka").__getattribute__(k) for k in ("o2", "cmv", "ecmo")] == [ABSENT] * 3
    assert [by_id(table, "row01-tosun").__getattribute__(k) for k in ("o2", "cmv", "ecmo")] == [NO_DATA] * 3
    assert [by_id(table, "row02-zulian").__getattribute__(k) for k in ("o2", "cmv", "ecmo")] == [PRESENT] * 3
    ecmo = [r.ecmo for r in table.records]
    assert (ecmo.count(PRESENT), ecmo.count(ABSENT), ecmo.count(NO_DATA)) == (2, 5, 11)


def test_cells_are_parsed_as_printed(table):
    zulian = by_id(table, "row02-zulian")
    assert zulian.labs.ldh == 3640 and zulian.labs.alt == "NA" and zulian.labs.ast == 334
    kob = by_id(table, "row06-kobayashi")
    assert kob.labs.alt == "ND" and kob.labs.ck == 1435
    assert kob.interval_onset_to_ild.printed == "ND" and not kob.interval_onset_to_ild.known
    tosun = by_id(table, "row01-tosun")
    assert (tosun.interval_onset_to_ild.value, tosun.interval_onset_to_ild.unit) == (5, "weeks")
    assert tosun.time_to_death.span.printed == "7 weeks"
    sato = by_id(table, "row10-sato")
    assert sato.time_to_death.span.comparator == "<" and sato.time_to_death.span.months == 4
    present = by_id(table, "row18-present-case")
    assert present.autoantibody.antibody == "anti-MDA5"
    assert (present.autoantibody.titre.value, present.autoantibody.titre.comparator) == (7500, ">")
    assert by_id(table, "row03-nonaka").autoantibody.titre.value == 12.8
    assert by_id(table, "row05-sakurai").autoantibody.titre.status == "NA"
    assert by_id(table, "row16-hou").autoantibody.titre.status == "ND"
    assert by_id(table, "row13-kobayashi").treatments == NO_DATA
    assert by_id(table, "row06-kobayashi").reference.numbers == [3, 8, 13, 15, 16]
    assert present.reference.numbers == [] and present.timeline == "../index_case.yaml"


def test_symptom_columns_are_unreadable_with_a_reason(table):
    for r in table.records:
        assert len(r.symptoms_printed) == 3
        assert {r.fever, r.rash, r.arthralgia, r.muscle_weakness} == {"unreadable"}
        named = {f for u in r.unreadable for f in u.fields}
        assert named == {"fever", "rash", "arthralgia", "muscle_weakness"}
        assert all("four" in u.why for u in r.unreadable)
    assert by_id(table, "row18-present-case").symptoms_printed == ["+", "+", "—"]


def test_footnotes_are_encoded_with_their_marks(table):
    a, b = table.footnote("a"), table.footnote("b")
    assert a.marked_on == ["row06-kobayashi", "row07-kobayashi", "row08-kobayashi"]
    assert (a.anti_mda5_range.low, a.anti_mda5_range.high) == (357, 902) and a.anti_mda5_positive == 3
    assert b.marked_on == ["row11-sato"]
    assert b.concerns == ["row10-sato", "row11-sato", "row12-sato"]
    assert (b.anti_mda5_positive, b.not_tested) == (2, 1)
    assert (b.anti_mda5_range.low, b.anti_mda5_range.high) == (78, 172)
    assert "which two" in b.ambiguity.lower() or "does not say which" in b.ambiguity.lower()
    marked = [r.id for r in table.records if r.autoantibody.mark == "b"]
    assert marked == ["row11-sato"] and by_id(table, "row11-sato").autoantibody.antibody == NO_DATA


# --- Summary ------------------------------------------------------------------------------------

EXPECTED = {
    # id: (stated, computed, verdict)
    "patients": ("18", "18", "agrees"),
    "men": ("6", "6", "agrees"),
    "women": ("12", "12", "agrees"),
    "age-median": ("6.5", "6.5", "agrees"),
    "age-range": ("2–16", "1–16", "disagrees"),
    "asians": ("16", "16", "agrees"),
    "japanese": ("14", "14", "agrees"),
    "muscle-weakness": ("11", None, "cannot be checked"),
    "amyopathic": ("4", None, "cannot be checked"),
    "muscle-weakness-no-data": ("3", None, "cannot be checked"),
    "interval-onset-median": ("3 months", "3 months", "agrees"),
    "interval-onset-range": ("1–8 months", "1–8 months", "agrees"),
    "interval-diagnosis-median": ("1 month", "1 month", "agrees"),
    "interval-diagnosis-range": ("0–7 months", "0–7 months", "agrees"),
    "respiratory-symptoms": ("11", "11", "agrees"),
    "asymptomatic": ("3", "3", "agrees"),
    "anti-mda5": ("12", "12", "agrees"),
    "anti-jo1": ("1", "1", "agrees"),
    "not-tested": ("5", "5", "agrees"),
    "ecmo": ("2", "2", "agrees"),
    "deaths": ("12", "12", "agrees"),
    "deaths-treated": ("all 12", "9 of 12", "cannot be checked"),
    "death-within-4-months": ("all within 4 months",
                              "12 of 12 within 4 months (longest exact time 2 months; 3 given only as a bound)",
                              "agrees"),
    "survivors": ("6", "6", "agrees"),
    "survivors-no-ventilation": ("3", "3", "agrees"),
    "survivors-ventilation-not-noted": ("1", "1", "agrees"),
}


def test_every_stated_figure_is_reported(figures):
    assert list(figures) == list(EXPECTED)


@pytest.mark.parametrize("fid", EXPECTED)
def test_summary_figure_value_and_verdict(figures, fid):
    stated, computed, verdict = EXPECTED[fid]
    f = figures[fid]
    assert (f.stated, f.computed, f.verdict) == (stated, computed, verdict), f.basis
    assert f.basis


def test_summary_counts_the_right_records(figures):
    assert figures["men"].records == ["row01-tosun", "row05-sakurai", "row07-kobayashi", "row08-kobayashi",
                                      "row09-ishikawa", "row10-sato"]
    assert "row03-nonaka" in figures["age-range"].basis
    assert figures["asymptomatic"].records == ["row03-nonaka", "row08-kobayashi", "row16-hou"]
    assert figures["ecmo"].records == ["row02-zulian", "row18-present-case"]
    assert "11 records are ND" in figures["ecmo"].basis
    assert figures["survivors-no-ventilation"].records == ["row03-nonaka", "row06-kobayashi", "row17-yeung"]
    assert figures["survivors-ventilation-not-noted"].records == ["row08-kobayashi"]
    assert figures["anti-jo1"].records == ["row03-nonaka"]
    assert "footnote b" in figures["anti-mda5"].basis and "10 cells" in figures["anti-mda5"].basis
    assert "row13-kobayashi, row14-kobayashi, row15-kobayashi" in figures["deaths-treated"].basis


def test_unit_conversions_are_stated(figures):
    assert "5 weeks = 1.15 months" in figures["interval-onset-median"].basis
    assert "12 of 18 records" in figures["interval-onset-median"].basis
    assert "2 day = 0.07 months" in figures["interval-diagnosis-range"].basis
    assert "11 of 18 records" in figures["interval-diagnosis-range"].basis
    assert "7 weeks = 1.61 months" in figures["death-within-4-months"].basis
    assert "30.4375" in figures["interval-onset-range"].basis


def test_muscle_weakness_reason_names_the_printed_columns(figures):
    why = figures["muscle-weakness"].basis
    assert "unreadable in 18 of 18" in why
    assert "printed column 3: 5 '+', 4 '—', 9 'ND'" in why


def test_verdicts_follow_the_records(table):
    # Nonaka aged 2 instead of 1: the age range would then agree with the text
    fig = {f.id: f for f in summary(altered(table, "row03-nonaka", age=2)).results}
    assert (fig["age-range"].computed, fig["age-range"].verdict) == ("2–16", "agrees")
    # one more ECMO: disagrees, both values shown
    fig = {f.id: f for f in summary(altered(table, "row01-tosun", ecmo="+")).results}
    assert (fig["ecmo"].stated, fig["ecmo"].computed, fig["ecmo"].verdict) == ("2", "3", "disagrees")
    # a readable muscle-weakness column would be counted
    data = table.model_dump(mode="json")
    for r in data["records"]:
        r["muscle_weakness"] = "+"
        r["unreadable"] = [{"fields": ["fever", "rash", "arthralgia"], "why": "still three values for three headings"}]
    fig = {f.id: f for f in summary(Table1.model_validate(data)).results}
    assert (fig["muscle-weakness"].computed, fig["muscle-weakness"].verdict) == ("18", "disagrees")
    # a death after 5 months contradicts 'all within 4 months'
    fig = {f.id: f for f in summary(altered(table, "row16-hou", time_to_death="5 months")).results}
    assert fig["death-within-4-months"].verdict == "disagrees"
    # without footnote b's group the anti-MDA5 count falls to the 10 cells
    data = table.model_dump(mode="json")
    data["footnotes"] = [f for f in data["footnotes"] if f["mark"] != "b"]
    for r in data["records"]:
        if r["id"] == "row11-sato":
            r["autoantibody"] = {"cell": "ND"}
    fig = {f.id: f for f in summary(Table1.model_validate(data)).results}
    assert (fig["anti-mda5"].computed, fig["anti-mda5"].verdict) == ("10", "disagrees")
    assert (fig["not-tested"].computed, fig["not-tested"].verdict) == ("7", "disagrees")


# --- Cross-source check -----------------------------------------------------------------------------

AGREE = ["age (years)", "sex", "LDH", "CK", "aldolase", "KL-6", "anti-MDA5 antibody and titre", "O2",
         "CMV (ventilation)", "ECMO", "treatments", "outcome", "myositis on femoral MRI",
         "clinical presentation of RP-ILD", "chest CT: GGO", "chest CT: TB"]
PROBLEMS = {
    "AST": ("69", "49 U/L", "disagrees"),
    "ALT": ("49", "69 U/L", "disagrees"),
    "chest CT: CABB": ("CABB", None, "unclear"),
    "chest CT: SCS": ("SCS", "not mentioned", "unclear"),
    "interval from JDM diagnosis to ILD diagnosis": (
        "0 day", "6 to 113 days from the JDM diagnosis to the transfer with the RP-ILD diagnosis", "unclear"),
    "interval from JDM onset to ILD diagnosis": ("3 months", "onset on days -113 to -76", "unclear"),
    "clinical symptoms of JDM": ("+ + — (three values under four headings)", None, "unclear"),
}


@pytest.fixture(scope="module")
def pair(table):
    result = check(table, RECORDS)
    assert len(result.pairs) == 1
    return result.pairs[0]


def test_check_pairs_the_present_case_with_the_index_case(pair):
    assert pair.record == "row18-present-case"
    assert Path(pair.timeline_file).resolve() == INDEX_CASE.resolve()


def test_check_items_agreeing(pair):
    items = {c.item: c for c in pair.results}
    for name in AGREE:
        assert items[name].verdict == "agrees", items[name]
    assert items["age (years)"].table1 == "2" and items["KL-6"].timeline == "3420 U/mL"
    assert items["anti-MDA5 antibody and titre"].timeline == "positive; >7500 index"
    assert "TMP-SDZ" in items["treatments"].note and "Tac days 457 to 517" in items["treatments"].note
    assert "day 78" in items["chest CT: TB"].note


@pytest.mark.parametrize("item", PROBLEMS)
def test_check_findings(pair, item):
    table1, timeline, verdict = PROBLEMS[item]
    c = next(c for c in pair.problems if c.item == item)
    assert (c.table1, c.verdict) == (table1, verdict)
    if timeline is not None:
        assert c.timeline == timeline


def test_check_lists_exactly_these_findings(pair):
    assert sorted(c.item for c in pair.problems) == sorted(PROBLEMS)
    assert len(pair.results) == len(AGREE) + len(PROBLEMS)


def test_ast_alt_swap_is_found(pair):
    ast = next(c for c in pair.problems if c.item == "AST")
    assert "swapped" in ast.note and "AST 49 and ALT 69" in ast.note
    assert ast.timeline_events == ["admission-labs"]


def test_check_follows_the_timeline(table):
    """With AST and ALT exchanged in the timeline the two findings go away; a death appears."""
    data = load_scenario(INDEX_CASE).model_dump(mode="json", exclude_none=True)
    for ev in data["events"]:
        if ev["id"] == "admission-labs":
            ev["values"]["ast"]["value"], ev["values"]["alt"]["value"] = 69, 49
        if ev["kind"] == "outcome":
            ev["status"] = "dead"
    sc = Scenario.model_validate(data)
    result = check_pair(by_id(table, "row18-present-case"), sc, "changed.yaml")
    verdicts = {c.item: c.verdict for c in result.results}
    assert verdicts["AST"] == verdicts["ALT"] == "agrees"
    assert verdicts["outcome"] == "disagrees"


# --- Placement ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def placed(table):
    return placement(table, RECORDS)


def test_step_mapping():
    assert {c for c, s in STEP_OF.items() if s == 1} == {"MPT", "PSL", "mPSL", "CyA", "Tac", "IVCY", "CPM",
                                                          "IVIG", "AZP", "MTX"}
    assert (STEP_OF["PE"], STEP_OF["ECMO"], STEP_OF["RTX"], STEP_OF["MMF"]) == (2, 3, 4, 5)


def test_placement_per_case(placed):
    got = {c.record: (c.highest_step, c.may_be_higher, c.outcome) for c in placed.placements}
    assert got["row01-tosun"] == (1, True, "Death")          # ECMO ND
    assert got["row02-zulian"] == (3, False, "Alive")        # ECMO without PE
    assert got["row03-nonaka"] == (1, False, "Alive")
    assert got["row05-sakurai"] == (2, False, "Death")
    assert got["row13-kobayashi"] == (None, True, "Death")   # treatments ND
    assert got["row17-yeung"] == (5, False, "Alive")
    assert got["row18-present-case"] == (5, False, "Alive")
    yeung = next(c for c in placed.placements if c.record == "row17-yeung")
    assert yeung.steps_reached == {"1": ["PSL", "MPT", "Tac", "MTX", "IVIG", "IVCY"], "4": ["RTX"], "5": ["MMF"]}


def test_placement_table_counts(placed):
    rows = {r.step: (r.highest, r.highest_deaths, r.highest_may_be_higher, r.received, r.received_deaths)
            for r in placed.steps_table}
    assert rows == {
        "1 combination": (11, 8, 8, 15, 9),
        "2 plasma exchange": (1, 1, 0, 2, 1),
        "3 ECMO": (1, 0, 0, 2, 0),
        "4 rituximab": (0, 0, 0, 2, 0),
        "5 MMF add-on": (2, 0, 0, 2, 0),
        "unknown (treatments ND)": (3, 3, 3, 0, 0),
    }
    assert sum(r.highest for r in placed.steps_table) == 18
    assert sum(r.highest_deaths for r in placed.steps_table) == 12


def test_only_the_present_case_is_replayed(placed):
    replayed = [c for c in placed.placements if c.replay.possible]
    assert [c.record for c in replayed] == ["row18-present-case"]
    rp = replayed[0].replay
    assert rp.steps_flagged == [1, 2, 3, 4, 5]
    flagged = [(d.rule_id, d.step, d.day, d.day_latest) for d in rp.decision_points]
    assert ("step2-plasma-exchange", 2, 11, 11) in flagged
    assert ("step3-ecmo-oxygenation", 3, 24, 24) in flagged
    assert "(they differ)" not in rp.against_table
    for c in placed.placements:
        if not c.replay.possible:
            assert "no dates" in c.replay.why
    assert "treatments are not given" in next(c for c in placed.placements if c.record == "row14-kobayashi").replay.why


def test_steps_are_not_compared_under_a_rule_set_that_numbers_them_its_own_way(table):
    """Table 1 is placed on the report pathway's steps; Romero-Bueno's step 2 proposes what the
    report calls steps 1, 4 and 5, so its step numbers are not set beside Table 1's (they were,
    and "differed"). A variant of the report pathway keeps its numbering and is compared."""
    romero = placement(table, RECORDS, ROOT / "rules" / "romero-bueno-2020.yaml")
    rp = next(c for c in romero.placements if c.replay.possible).replay
    assert rp.against_table.startswith("not compared: Table 1's treatments reach the report pathway's steps")
    assert "its step 2, rb-refractory-add-on, proposes IVCY, MMF, RTX" in rp.against_table
    assert "(they differ)" not in rp.against_table
    earlier = placement(table, RECORDS, ROOT / "rules" / "rtx-earlier.yaml")
    assert next(c for c in earlier.placements if c.replay.possible).replay.against_table.startswith("the replay flags")


def test_placement_follows_the_records(table):
    reached, highest, maybe = place(altered(table, "row01-tosun", treatments=["PSL", "PE"], ecmo="—").records[0])
    assert (reached, highest, maybe) == ({"1": ["PSL"], "2": ["PE"]}, 2, False)


# --- Bad records ---------------------------------------------------------------------------------------


def line_of(text: str, marker: str) -> int:
    hits = [n for n, line in enumerate(text.splitlines(), 1) if marker in line]
    assert len(hits) == 1, f"{marker!r} is on lines {hits}"
    return hits[0]


def write_changed(tmp_path: Path, old: str, new: str) -> tuple[Path, str]:
    """A copy of the records (with the timeline it links) with one change."""
    text = RECORDS.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    text = text.replace(old, new)
    (tmp_path / "literature").mkdir(exist_ok=True)
    path = tmp_path / "literature" / "table1.yaml"
    path.write_text(text, encoding="utf-8")
    shutil.copy(INDEX_CASE, tmp_path / "index_case.yaml")
    return path, text


NAGAI_MRI = '    mri_myositis: "+"\n    o2: ND\n    cmv: ND\n    ecmo: ND\n    treatments: [PSL, MPT, CyA, IVCY, IVIG]\n'
BAD = {
    # name: (old, new, marker of the line the error must point at, words the message must hold)
    "presence": (NAGAI_MRI, NAGAI_MRI.replace('"+"', '"-"'), 'mri_myositis: "-"',
                 ["record 'row04-nagai'", "field mri_myositis", "'-'", "not a presence value"]),
    "age": ("    age: 5\n", "    age: 19\n", "age: 19",
            ["record 'row04-nagai'", "field age", "outside 0 to 18"]),
    "treatment": (NAGAI_MRI, NAGAI_MRI.replace("CyA", "CyclosporinX"), "CyclosporinX",
                  ["record 'row04-nagai'", "field treatments", "unknown treatment code 'CyclosporinX'"]),
    "reference": ('    reference: "Nagai et al. [12]"\n', "", "- id: row04-nagai",
                  ["record 'row04-nagai'", "missing field 'reference'"]),
    "reference-number": ('    reference: "Nagai et al. [12]"\n', '    reference: "Nagai et al. [27]"\n', "[27]",
                         ["record 'row04-nagai'", "field reference", "1-26"]),
    "labs": ("    labs: 256/169/649/40/32.9/3,173\n", "    labs: 256/169/649/40/32.9\n", "labs: 256",
             ["record 'row04-nagai'", "field labs", "six"]),
    "unreadable-without-why": (NAGAI_MRI, NAGAI_MRI.replace('"+"', "unreadable"), "mri_myositis: unreadable",
                               ["record 'row04-nagai'", "say why"]),
    "survivor-with-death-time": ("    outcome: Alive\n    time_to_death: \"—\"\n    unreadable:\n      - fields",
                                 "    outcome: Alive\n    time_to_death: 11 months\n    unreadable:\n      - fields",
                                 "time_to_death: 11 months", ["record 'row18-present-case'", "survivor"]),
    "footnote-mark": ("    autoantibody: {cell: ND, mark: b}\n", "    autoantibody: ND\n", "marked_on: [row11-sato]",
                      ["row11-sato", "does not carry mark b"]),
    "timeline": ("    timeline: ../index_case.yaml\n", "    timeline: ../no_such_case.yaml\n", "no_such_case",
                 ["record 'row18-present-case'", "field timeline", "no file"]),
}


@pytest.mark.parametrize("name", BAD)
def test_bad_record_names_record_field_and_line(tmp_path, name):
    old, new, marker, words = BAD[name]
    path, text = write_changed(tmp_path, old, new)
    with pytest.raises(InputError) as caught:
        load_records(path)
    err = caught.value
    assert err.file == str(path)
    assert err.line == line_of(text, marker), str(err)
    for w in words:
        assert w in err.message, str(err)


@pytest.mark.parametrize("name", ["presence", "age", "treatment", "reference"])
def test_bad_record_on_the_command_line(tmp_path, name):
    old, new, marker, words = BAD[name]
    path, text = write_changed(tmp_path, old, new)
    result = runner.invoke(app, ["cohort", "summary", "--records", str(path)])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert result.stdout == ""
    [error] = [x for x in result.stderr.splitlines() if x.strip()]
    m = re.fullmatch(rf"error: {re.escape(str(path))}:(\d+) \(records\[3\][^)]*\): (.+)", error)
    assert m, error
    assert int(m.group(1)) == line_of(text, marker)
    assert all(w in m.group(2) for w in words), error


# --- Command line ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["summary", "check", "placement"])
def test_cli_table_starts_with_the_notice(command):
    result = runner.invoke(app, ["cohort", command, "--records", str(RECORDS)])
    assert result.exit_code == 0, result.output
    words = " ".join(result.stdout.split())  # the notice folds to the width like any text
    assert words.startswith(NOTICE) and words.endswith(NOTICE)


@pytest.mark.parametrize("command", ["summary", "check", "placement"])
def test_cli_json_opens_with_the_notice(command):
    result = runner.invoke(app, ["cohort", command, "--format", "json", "--records", str(RECORDS)])
    assert result.exit_code == 0, result.output
    pairs = json.loads(result.stdout, object_pairs_hook=list)
    assert pairs[0] == ("notice", NOTICE)
    again = runner.invoke(app, ["cohort", command, "--format", "json", "--records", str(RECORDS)])
    assert again.stdout == result.stdout


def test_cli_summary_shows_each_verdict():
    out = runner.invoke(app, ["cohort", "summary", "--records", str(RECORDS)]).stdout
    assert "21 agrees, 1 disagrees, 4 cannot be checked" in out
    data = json.loads(runner.invoke(app, ["cohort", "summary", "-f", "json", "--records", str(RECORDS)]).stdout)
    assert {f["id"]: f["verdict"] for f in data["results"]} == {k: v[2] for k, v in EXPECTED.items()}


def test_cli_check_lists_the_findings():
    out = runner.invoke(app, ["cohort", "check", "--records", str(RECORDS)]).stdout
    assert "Findings (7 that do not simply agree):" in out
    assert "[disagrees] AST: Table 1 '69', timeline '49 U/L'" in out
    assert "[disagrees] ALT: Table 1 '49', timeline '69 U/L'" in out


def test_cli_placement_table():
    out = runner.invoke(app, ["cohort", "placement", "--records", str(RECORDS), "--width", "200"]).stdout
    assert "Highest step reached against outcome" in out
    assert "index_case.yaml with report-pathway v1.0.0; the replay flags steps 1, 2, 3, 4, 5" in out
    assert "not replayed (14:" in out and "not replayed (3:" in out


@pytest.mark.parametrize("command", ["summary", "check", "placement"])
def test_cli_default_records_from_any_folder(monkeypatch, tmp_path, command):
    """Without --records the shipped table is read, and named as in the repository, from any folder."""
    monkeypatch.chdir(ROOT)
    at_root = runner.invoke(app, ["cohort", command])
    monkeypatch.chdir(tmp_path)
    elsewhere = runner.invoke(app, ["cohort", command])
    assert at_root.exit_code == elsewhere.exit_code == 0, elsewhere.output
    assert "Records: scenarios/literature/table1.yaml" in at_root.stdout
    assert elsewhere.stdout == at_root.stdout


def test_cli_missing_records_file_exits_2(tmp_path):
    missing = tmp_path / "none.yaml"
    result = runner.invoke(app, ["cohort", "check", "--records", str(missing)])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {missing}: file not found"
    assert result.stdout == ""


def test_cli_bad_rules_file_exits_2(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("ruleset: [\n", encoding="utf-8")
    result = runner.invoke(app, ["cohort", "placement", "--records", str(RECORDS), "--rules", str(rules)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {rules}:")
    assert result.stdout == ""


def test_placement_says_what_it_assumes_in_text_and_json():
    """Found in a user trial: 'highest step' ranked step numbers as if they were the order the
    drugs were given, and placing mPSL, CPM, AZP and MTX under step 1 was not marked."""
    text = runner.invoke(app, ["cohort", "placement", "--width", "200"]).stdout
    data = json.loads(runner.invoke(app, ["cohort", "placement", "--format", "json"]).stdout)
    assert "MODELLING ASSUMPTION: the codes the pathway's rules do not propose (mPSL, CPM, AZP, MTX)" in text
    assert "may reach step 5 (MMF) without step 4 (RTX)" in data["placement_assumption"]


def test_summary_reads_a_copy_of_the_table_taken_out_alone(tmp_path):
    """Found in a user trial: every cohort command refused a copy of table1.yaml because the
    scenario its last record names as a timeline did not come along, though `summary` never
    reads it; `placement` still needs it, and says how to give it."""
    copy = tmp_path / "t1.yaml"
    copy.write_text(RECORDS.read_text(encoding="utf-8"), encoding="utf-8")
    assert runner.invoke(app, ["cohort", "summary", "--records", str(copy)]).exit_code == 0
    placed = runner.invoke(app, ["cohort", "placement", "--records", str(copy)])
    assert placed.exit_code == 2 and f"{tmp_path.parent / 'index_case.yaml'} (copy that scenario there" in placed.stderr

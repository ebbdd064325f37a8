"""Expected decision points checked against a replay, rule coverage, and JUnit XML.

A scenario lists the decision points it expects under a rule set, partially (only what is listed
is checked), the way the CQL Testing Framework pairs patient data with expected results. This is
the stage after matching: it reads replay results and never touches the engine.

An expectation must name something that exists: a rule set it is keyed by, and a rule id or a
step of that rule set. One that names nothing could never be met, nor fail with `present:
false`, so `escalation test` fails it and `escalation check` refuses it (`problems`), with the
nearest known id. Only ids and steps are checked.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from escalation.load.errors import Place
from escalation.load.scenario import Expectation, ExpectedUnflagged, window_text
from escalation.load.timing import DayRange, span_label
from escalation.match.results import DecisionPoint, ReplayResult, UnflaggedAction, actual_text, lag_text

if TYPE_CHECKING:
    from escalation.load.ruleset import Rule


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExpectationOutcome(_Out):
    expectation: str
    passed: bool
    found: list[str] = Field(description="the decision points of that rule or step, as 'rule@days' "
                             "(with actual day and lag when expected), or the unflagged actions, as 'code@days'")
    message: str
    unknown_target: bool = Field(False, description="the expectation names a rule id, a step or a rule set id "
                                 "that does not exist: nothing could ever check it, so it fails")


class ScenarioOutcome(_Out):
    scenario: str
    file: str
    ruleset: str
    status: str = Field(description="pass, fail, or unchecked (no expectations for this rule set)")
    outcomes: list[ExpectationOutcome]
    diff: list[str] = Field(description="expected against actual, day by day, for a failure")
    decision_points: list[str]


class RuleCoverage(_Out):
    rule_id: str
    fired: int
    scenarios: list[str]


class Coverage(_Out):
    ruleset: str
    rules: list[RuleCoverage]
    never_fired: list[str]


class TestReport(_Out):
    notice: str
    passed: int
    failed: int
    unchecked: int
    scenarios: list[ScenarioOutcome]
    coverage: list[Coverage]


# --- what an expectation names: a rule id or a step of its rule set, and the rule set's id ------
# An expectation naming nothing that exists can never be met, nor fail when it says `present:
# false`: the person who wrote it believes a rule is tested when nothing is. Only ids and steps
# are checked here, never what a rule should do.


def _hint(name: str, known: list[str], listed_as: str) -> str:
    """The known id spelled closest to `name` (difflib, its default cutoff 0.6), or the known ids."""
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f" ({listed_as}: {', '.join(known) or 'none'})"


def target_problem(exp: Expectation, ruleset_id: str, rules: Iterable[Rule]) -> str | None:
    """Why `exp` checks nothing under the rule set `ruleset_id` with these rules: it names a rule id,
    or a step, that none of them has. None when it names one, or lists unflagged actions."""
    listed = list(rules)
    if exp.rule is not None:
        ids = list(dict.fromkeys(r.id for r in listed))
        if exp.rule not in ids:
            return (f"rule set {ruleset_id} has no rule {exp.rule!r}, so this expectation checks nothing"
                    + _hint(exp.rule, ids, "its rules"))
    elif exp.step is not None:
        steps = sorted({r.step for r in listed if r.step is not None})
        if exp.step not in steps:
            return (f"rule set {ruleset_id} has no rule of step {exp.step}, so this expectation checks "
                    f"nothing (its steps: {', '.join(map(str, steps)) or 'none'})")
    return None


def ruleset_problem(key: str, known: Collection[str], known_as: str) -> str | None:
    """Why the expectations a scenario keys by `key` check nothing: no rule set `known_as` (e.g.
    "tested or shipped") has that id. None when one has."""
    if key in known:
        return None
    return (f"no rule set {key!r} is {known_as}, so the expectations under it check nothing"
            + _hint(key, sorted(known), "known rule sets"))


def problems(expected: Mapping[str, list[Expectation]], rulesets: Mapping[str, Iterable[Rule]],
             known_as: str, unreadable: Collection[str] = ()) -> list[tuple[Place, str]]:
    """Each place in a scenario's `expected` that names no rule set of `rulesets` (id -> its rules),
    or no rule or step of the rule set it is under, with why; in file order. Rule set ids in
    `unreadable` (known to exist, their rules not) are passed over."""
    out: list[tuple[Place, str]] = []
    for key, items in expected.items():
        if key in unreadable:
            continue
        if key not in rulesets:
            out.append((("expected", key), ruleset_problem(key, rulesets, known_as) or ""))
            continue
        rules = list(rulesets[key])
        for i, exp in enumerate(items):
            why = target_problem(exp, key, rules)
            if why is not None:
                out.append((("expected", key, i, "rule" if exp.rule is not None else "step"), why))
    return out


def _targets(dp: DecisionPoint, exp: Expectation) -> bool:
    return dp.rule_id == exp.rule if exp.rule is not None else dp.step == exp.step


def _within(window: DayRange | None, lo: int | None, hi: int | None) -> bool:
    """True when the whole range lo..hi lies in the window (no window: anything; no range: nothing)."""
    if window is None:
        return True
    if lo is None or hi is None:
        return False
    first = window.earliest if window.earliest is not None else -(10**9)
    last = window.latest if window.latest is not None else 10**9
    return first <= lo and hi <= last


_UNDER = {"both": ("exact", "range"), "early": ("early placement only",), "late": ("late placement only",)}


def _inside(dp: DecisionPoint, exp: Expectation) -> bool:
    """The decision point fires under the placements expected, and its day, matched action's day
    and lag all lie in the expected windows."""
    return ((exp.placements == "any" or dp.timing in _UNDER[exp.placements])
            and _within(exp.day, dp.day, dp.day_latest)
            and _within(exp.actual_day, dp.actual_day, dp.actual_day_latest)
            and _within(exp.lag, dp.lag_days, dp.lag_days_max))


def _touches(dp: DecisionPoint, exp: Expectation) -> bool:
    if exp.day is None:
        return True
    lo = exp.day.earliest if exp.day.earliest is not None else -(10**9)
    hi = exp.day.latest if exp.day.latest is not None else 10**9
    return dp.day <= hi and lo <= dp.day_latest


def _label(dp: DecisionPoint, exp: Expectation | None = None) -> str:
    """'rule@days', with the actual day and lag when the expectation asks about them."""
    text = f"{dp.rule_id}@{span_label(dp.day, dp.day_latest)}"
    if dp.timing.endswith("only"):
        text += f" ({dp.timing})"
    if exp is not None and (exp.actual_day is not None or exp.lag is not None):
        text += f" (actual {actual_text(dp)}, lag {lag_text(dp)})"
    return text


def _unflagged_label(action: UnflaggedAction) -> str:
    return f"{action.code}@{span_label(action.day, action.day_latest)}"


def _fits(want: ExpectedUnflagged, action: UnflaggedAction) -> bool:
    return want.code == action.code and _within(want.day, action.day, action.day_latest)


def _check_unflagged(exp: Expectation, result: ReplayResult) -> ExpectationOutcome:
    """The listed actions, and no others, were taken without a decision point (one to one)."""
    left = list(result.unflagged_actions)
    missing = []
    for want in exp.unflagged or []:
        hit = next((a for a in left if _fits(want, a)), None)
        if hit is None:
            missing.append(want.label())
        else:
            left.remove(hit)
    found = [_unflagged_label(a) for a in result.unflagged_actions]
    passed = not missing and not left
    message = "as expected" if passed else (
        f"expected {exp.label()}; found " + (", ".join(found) or "none")
        + (f"; missing {', '.join(missing)}" if missing else "")
        + (f"; not expected {', '.join(_unflagged_label(a) for a in left)}" if left else ""))
    return ExpectationOutcome(expectation=exp.label(), passed=passed, found=found, message=message)


def check(exp: Expectation, result: ReplayResult) -> ExpectationOutcome:
    if exp.unflagged is not None:
        return _check_unflagged(exp, result)
    same = [dp for dp in result.decision_points if _targets(dp, exp)]
    if exp.present:
        passed = any(_inside(dp, exp) for dp in same)
    else:
        passed = not any(_touches(dp, exp) for dp in same)
    found = [_label(dp, exp) for dp in same]
    if passed:
        message = "as expected"
    elif exp.present:
        message = f"expected {exp.label()}; found " + (", ".join(found) if found else "nothing")
        message += _placement_hint(exp, same)
    else:
        message = f"expected {exp.label()}; found " + ", ".join(found)
    return ExpectationOutcome(expectation=exp.label(), passed=passed, found=found, message=message)


def _placement_hint(exp: Expectation, same: list[DecisionPoint]) -> str:
    """Where a decision point would meet the expectation but for its placements, what it fires
    under and how to expect that; else nothing."""
    if exp.placements == "any":
        return ""
    near = next((dp for dp in same if _inside(dp, exp.model_copy(update={"placements": "any"}))), None)
    if near is None:
        return ""
    if near.timing.endswith("only"):
        which = near.timing.split()[0]
        return (f"; it fires under the {which} placement only, so it may not happen at all "
                f"(`placements: {which}` expects that)")
    return "; it fires under both placements (`placements: both`, the default, expects that)"


def _diff(outcomes: list[tuple[Expectation, ExpectationOutcome]], result: ReplayResult) -> list[str]:
    """Expected against actual, one row per expectation, in day order; '!!' marks a difference.
    An expected actual day or lag gets a second row, under the first, with what was found."""
    def order(item: tuple[Expectation, ExpectationOutcome]) -> tuple[int, str]:
        day = item[0].day
        if day is None:
            return (10**9, item[1].expectation)
        return (day.earliest if day.earliest is not None else day.latest, item[1].expectation)  # type: ignore[return-value]

    lines = [f"   {'day':>12}  {'rule or step':<26}  {'expected':<10} actual"]
    return lines + [row for exp, out in sorted(outcomes, key=order) for row in _rows(exp, out, result)]


def _rows(exp: Expectation, out: ExpectationOutcome, result: ReplayResult) -> list[str]:
    """The diff's rows for one expectation: day, target, expected, found; then actual day and lag."""
    mark = "  " if out.passed else "!!"
    day = "any day" if exp.day is None else span_label(*exp.day.resolve(-(10**6), 10**6))
    if exp.unflagged is not None:
        listed = ", ".join(u.label() for u in exp.unflagged) or "none"
        return [f"{mark} {day:>12}  {'unflagged actions':<26}  {listed:<10} {', '.join(out.found) or 'none'}"]
    target = exp.rule if exp.rule is not None else f"step {exp.step}"
    actual = ", ".join(f.split("@", 1)[1].split(" (actual ", 1)[0] for f in out.found) or "-"
    if out.unknown_target:
        actual = f"no such {'rule' if exp.rule is not None else 'step'} in {result.ruleset.id}"
    wanted = ("absent" if not exp.present else
              {"both": "present", "any": "any"}.get(exp.placements, f"{exp.placements} only"))
    rows = [f"{mark} {day:>12}  {target:<26}  {wanted:<10} {actual}"]
    if exp.actual_day is not None or exp.lag is not None:
        want = ", ".join(window_text(w) if w is not None else "any" for w in (exp.actual_day, exp.lag))
        got = "; ".join(f"{actual_text(dp)}, {lag_text(dp)}"
                        for dp in result.decision_points if _targets(dp, exp)) or "-"
        rows.append(f"   {'':>12}  {'  actual day, lag':<26}  {want:<10} {got}")
    return rows


def _checked(exp: Expectation, result: ReplayResult, rules: list[Rule] | None) -> ExpectationOutcome:
    """`check`, unless the expectation names no rule or step of the rule set: then a failure that
    says so, since it could never be met (or, with `present: false`, never fail)."""
    why = None if rules is None else target_problem(exp, result.ruleset.id, rules)
    if why is None:
        return check(exp, result)
    return ExpectationOutcome(expectation=exp.label(), passed=False, found=[], unknown_target=True,
                              message=f"{result.scenario.file}: expected {exp.label()}: {why}")


def outcome(result: ReplayResult, expected: list[Expectation] | None,
            rules: Iterable[Rule] | None = None) -> ScenarioOutcome:
    """The scenario's expectations under the replay's rule set, checked; given the rule set's
    `rules`, an expectation naming a rule id or step none of them has fails."""
    points = [_label(dp) for dp in result.decision_points]
    if not expected:
        return ScenarioOutcome(scenario=result.scenario.id, file=result.scenario.file,
                               ruleset=result.ruleset.id, status="unchecked", outcomes=[], diff=[],
                               decision_points=points)
    known = None if rules is None else list(rules)
    outcomes = [_checked(e, result, known) for e in expected]
    ok = all(o.passed for o in outcomes)
    return ScenarioOutcome(scenario=result.scenario.id, file=result.scenario.file,
                           ruleset=result.ruleset.id, status="pass" if ok else "fail",
                           outcomes=outcomes, diff=[] if ok else _diff(list(zip(expected, outcomes)), result),
                           decision_points=points)


def unknown_ruleset(scenario: str, file: str, key: str, expected: list[Expectation], why: str) -> ScenarioOutcome:
    """A failure for the expectations a scenario keys by a rule set id that no rule set tested or
    shipped has: no replay could ever check them, so they fail as a row of their own, under that id."""
    n = len(expected)
    return ScenarioOutcome(
        scenario=scenario, file=file, ruleset=key, status="fail", diff=[], decision_points=[],
        outcomes=[ExpectationOutcome(expectation=f"{n} expectation{'s' if n != 1 else ''} under {key}",
                                     passed=False, found=[], unknown_target=True, message=f"{file}: {why}")])


def scenario_labels(pairs: Iterable[tuple[str, str]], shared: Collection[str] = ()) -> dict[tuple[str, str], str]:
    """How coverage, JUnit and the sweep name each (scenario id, file): by its id, followed by its
    file where another file gives the same id (found among the pairs, or named in `shared`;
    imported ids are fhir-<Patient.id>: two sites' exports share them), so that two scenarios
    are never counted as one."""
    found = set(pairs)
    files = Counter(sid for sid, _ in found)
    twice = set(shared) | {sid for sid, n in files.items() if n > 1}
    return {(sid, f): f"{sid} ({f})" if sid in twice and f else sid for sid, f in found}


def coverage(results: list[ReplayResult], rule_ids: dict[str, list[str]]) -> list[Coverage]:
    """Which rules of each rule set fired, how often and where, and which never did."""
    out = []
    label = scenario_labels((r.scenario.id, r.scenario.file) for r in results)
    for ruleset_id, ids in rule_ids.items():
        fired: dict[str, int] = defaultdict(int)
        where: dict[str, set[str]] = defaultdict(set)
        for r in results:
            if r.ruleset.id != ruleset_id:
                continue
            for dp in r.decision_points:
                fired[dp.rule_id] += 1
                where[dp.rule_id].add(label[(r.scenario.id, r.scenario.file)])
        rules = [RuleCoverage(rule_id=i, fired=fired[i], scenarios=sorted(where[i])) for i in ids]
        out.append(Coverage(ruleset=ruleset_id, rules=rules,
                            never_fired=[i for i in ids if fired[i] == 0]))
    return out


def junit_xml(report: TestReport) -> str:
    """JUnit XML: one test suite per rule set, one test case per scenario."""
    from xml.etree import ElementTree as ET  # here: `check` reads this module for its expectations

    root = ET.Element("testsuites", name="escalation", tests=str(len(report.scenarios)),
                      failures=str(report.failed))
    root.append(ET.Comment(f" {report.notice} "))
    by_rs: dict[str, list[ScenarioOutcome]] = defaultdict(list)
    for s in report.scenarios:
        by_rs[s.ruleset].append(s)
    label = scenario_labels((s.scenario, s.file) for s in report.scenarios)
    for rs, items in sorted(by_rs.items()):
        suite = ET.SubElement(root, "testsuite", name=rs, tests=str(len(items)),
                              failures=str(sum(s.status == "fail" for s in items)),
                              skipped=str(sum(s.status == "unchecked" for s in items)))
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="notice", value=report.notice)
        for s in items:
            case = ET.SubElement(suite, "testcase", classname=rs, name=label[(s.scenario, s.file)], file=s.file)
            if s.status == "fail":
                failed = [o.message for o in s.outcomes if not o.passed]
                node = ET.SubElement(case, "failure", message="; ".join(failed))
                node.text = "\n".join(s.diff)
            elif s.status == "unchecked":
                ET.SubElement(case, "skipped", message=f"no expectations for rule set {rs}")
    ET.indent(root)
    return xml_safe(ET.tostring(root, encoding="unicode", xml_declaration=True)) + "\n"


# Characters XML 1.0 forbids anywhere in a document, even escaped (XML 1.0, section 2.2, "Char").
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """Characters XML 1.0 cannot carry shown as visible escapes, so the file stays well-formed
    whatever a rule id or file name contains."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def to_text(report: TestReport) -> str:
    lines = [report.notice, ""]
    for s in report.scenarios:
        lines.append(f"{s.status.upper():9} {s.ruleset:22} {s.scenario}  ({s.file})")
        for o in s.outcomes:
            if not o.passed:
                lines.append(f"          - {o.message}")
        lines += [f"          {row}" for row in s.diff]
    lines.append("")
    lines.append(f"{report.passed} passed, {report.failed} failed, {report.unchecked} without expectations")
    lines.append("")
    for cov in report.coverage:
        lines.append(f"Rule coverage, {cov.ruleset}:")
        for rc in cov.rules:
            where = ", ".join(rc.scenarios) if rc.scenarios else "-"
            lines.append(f"  {rc.rule_id:28} fired {rc.fired:3}  in {where}")
        lines.append("  never fired: " + (", ".join(cov.never_fired) or "none"))
    return "\n".join(lines) + "\n"

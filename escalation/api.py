"""The package's public face: load, replay, compare and report, for notebooks and the CLI alike.

Each function here runs the pipeline stages in order (files -> models -> derived measures ->
engine -> matched results -> outputs), so that no stage has to reach back up the pipeline for its
inputs, and a notebook and the command line get the same answer from the same code: the CLI only
parses arguments, calls these and prints.

Every file or folder path taken here is read as given, with one fallback: a repository path of a
shipped file or folder (`scenarios/index_case.yaml`, `rules/`, `scenarios/variants`) that names
nothing in the working folder reads the shipped copy (`escalation.load.shipped.resolve`), so the
README's examples work from any folder. Results name every file as the path given, the same from
every folder.

Nothing returned is advice for a patient: each result carries the research-only notice.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from escalation.evaluate.replay import replay as run_replay
from escalation.load import discover, loading, shipped
from escalation.load.errors import ArgumentError, InputError
from escalation.load.reading import is_regular_file, shown_name
from escalation.load.ruleset import Ruleset
from escalation.load.scenario import Scenario
from escalation.match.matching import build_result, ruleset_out
from escalation.match.results import NOTICE, ReplayResult

if TYPE_CHECKING:  # imported where they are used, so that `escalation replay` does not load them
    from escalation.analysis.compare import RulesetDiff
    from escalation.analysis.expectations import ScenarioOutcome, TestReport
    from escalation.match.explanation import Explanation

PathLike = str | Path
IN_MEMORY = "<in memory>"  # the file name a result shows for a scenario or rule set built in Python


def load_scenario(path: PathLike, rulesets: Sequence[Ruleset] = (), *,
                  diagnoses: Sequence[str] | None = None) -> Scenario:
    """A validated scenario, variants resolved; bad input raises InputError with file and line.

    A FHIR R4 Bundle of one patient (a .json file) is imported in memory (escalation.fhir). Its
    day 0 is the first inpatient encounter with a diagnosis the rule sets test, so the rule sets
    it will be replayed under are given here: the same Bundle then gets the same day 0 from
    `replay` and `import fhir --rules`. With none given: JDM and RP-ILD, those the shipped
    pathway tests. `diagnoses` gives the codes directly instead (a batch gives those of all its
    rule sets, so that a patient has one day 0 under every one).

    Any other .json file is read as a scenario (JSON is YAML); when it cannot be parsed, the error
    is the JSON parser's, since the name says JSON. An .ndjson file is refused, pointing a Bulk
    Data export to the commands that read one.
    """
    suffix = Path(path).suffix
    if suffix == ".ndjson" and is_regular_file(Path(path)):
        raise InputError(shown_name(path), "a FHIR Bulk Data NDJSON file is not a scenario: give one patient's "
                         "FHIR Bundle (.json) or a scenario YAML file; a Bulk Data export folder goes to "
                         "`escalation import fhir` or `escalation batch`")
    if Path(path) in _exports_in(Path(path)):  # a folder is no scenario; this one reads as an export
        raise _bulk_data(Path(path), Path(path))
    if suffix == ".json":  # only a .json file can be a Bundle (fhir.reader.is_bundle_file)
        from escalation.fhir.reader import is_bundle_file

        if is_bundle_file(shipped.resolve(path)):
            from escalation.fhir.to_scenario import Options, one_scenario, rule_diagnoses

            codes = tuple(diagnoses) if diagnoses else rule_diagnoses(rulesets)
            return one_scenario(shipped.resolve(path), Options(diagnoses=codes))
    return loading.load_scenario(path)  # a malformed .json gets the JSON parser's error there


def load_ruleset(path: PathLike | None = None, overrides: Mapping[str, float] | None = None) -> Ruleset:
    """A validated rule set (default: the shipped report pathway), with `RULE.PARAM` overrides.

    An overridden value is a what-if no source states, so it is marked as an assumption.
    """
    path = Path(path) if path is not None else shipped.default_rules_named()
    ruleset = loading.load_ruleset(path)
    return with_overrides(ruleset, overrides or {})


def with_overrides(ruleset: Ruleset, overrides: Mapping[str, float]) -> Ruleset:
    """A copy of `ruleset` with parameters replaced; unknown names and unusable values are input
    errors of the argument `overrides` (`--set` on the command line)."""
    if not overrides:
        return ruleset
    if not isinstance(overrides, Mapping):
        raise _overrides_error(f"{overrides!r} is not a mapping of RULE.PARAM to a number")
    pairs = {_split_target(k, ruleset): _finite(k, v) for k, v in overrides.items()}
    try:
        return ruleset.with_overrides(pairs)
    except KeyError as exc:
        raise _overrides_error(exc.args[0]) from None
    except ValidationError as exc:
        err = exc.errors()[0]
        raise _overrides_error(err["ctx"]["message"] if err["type"] == "located" else err["msg"]) from None


def _overrides_error(message: str) -> ArgumentError:
    return ArgumentError("overrides", message, option="--set")


def _split_target(target: str, ruleset: Ruleset) -> tuple[str, str]:
    """(rule, parameter); a parameter named without its rule is refused, naming the rules that
    have one of that name."""
    if not isinstance(target, str):
        raise _overrides_error(f"{target!r} is not of the form RULE.PARAM (a string)")
    rule_id, dot, name = target.partition(".")
    if not dot or not rule_id or not name:
        param = name if dot else target
        having = [f"{r.id}.{param}" for r in ruleset.rules if param in r.parameters]
        hint = f": did you mean {' or '.join(having)}?" if having else ""
        raise _overrides_error(f"{target!r} is not of the form RULE.PARAM{hint}")
    return rule_id, name


def _finite(target: str, value: float) -> float:
    try:
        usable = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    except OverflowError:  # an int too large for a float
        usable = False
    if not usable:
        raise _overrides_error(f"{target}={value!r}: not a finite number")
    return float(value)


def replay(
    scenario: PathLike | Scenario,
    rules: PathLike | Ruleset | None = None,
    *,
    overrides: Mapping[str, float] | None = None,
    through_day: int | None = None,
) -> ReplayResult:
    """Replay one scenario under one rule set: the result `escalation replay --format json` prints.

    Paths are read as given (or a shipped file by its repository path: see the module's notes);
    a Scenario or Ruleset built in Python is used as it is. With no rules, the shipped report
    pathway is used.
    """
    rs = with_overrides(rules, overrides or {}) if isinstance(rules, Ruleset) else load_ruleset(rules, overrides)
    if isinstance(scenario, Scenario):
        sc, file = scenario, IN_MEMORY
    else:
        sc, file = load_scenario(scenario, [rs]), scenario
    used = {k: float(v) for k, v in (overrides or {}).items()}
    return build_result(run_replay(sc, rs, through_day), file, used)


def explain(
    scenario: PathLike | Scenario,
    rules: PathLike | Ruleset | None = None,
    *,
    rule_ids: Iterable[str] | None = None,
    days: tuple[int, int] | str | None = None,
) -> Explanation:
    """For each rule (default: every rule of the set) and day, every condition: whether it held,
    the value read against the threshold; what decided each rule's day, or how near it came.

    `days` limits the days shown and summarised: `(A, B)` or `"A..B"` (both included), cut to the
    replayed days (`days_asked` then says what was asked). An unknown rule id, a bad day range or
    one wholly outside the replayed days is an InputError. Which conditions held is the engine's
    answer.
    """
    rs = rules if isinstance(rules, Ruleset) else load_ruleset(rules)
    if isinstance(scenario, Scenario):
        sc, file = scenario, IN_MEMORY
    else:
        sc, file = load_scenario(scenario, [rs]), scenario
    wanted = _rule_ids(rs, rule_ids)
    window = parse_days(days) if isinstance(days, str) else _day_window(days)
    from escalation.match.explanation import explain_replay

    return explain_replay(run_replay(sc, rs), file, wanted, window)


def _rule_ids(rs: Ruleset, rule_ids: Iterable[str] | None) -> list[str] | None:
    """The rule ids asked for, in the order given and each once; an unknown one is an input error."""
    if rule_ids is None:
        return None
    given = [rule_ids] if isinstance(rule_ids, str) else rule_ids  # one id, not its letters
    items = list(given) if isinstance(given, Iterable) and not isinstance(given, (bytes, bytearray)) else None
    if items is None or not all(isinstance(r, str) for r in items):
        raise ArgumentError("rule_ids", f"{rule_ids!r} is not a rule id or a list of them", option="--rule")
    wanted = list(dict.fromkeys(items))
    known = [r.id for r in rs.rules]
    for rule_id in wanted:
        if rule_id not in known:
            raise ArgumentError("rule_ids", f"no rule {rule_id!r} in rule set {rs.ruleset.id} (its rules: "
                                f"{', '.join(known)})", option="--rule")
    return wanted or None


def parse_days(text: str) -> tuple[int, int]:
    """`A..B` (or a single day `D`) as an inclusive day range; anything else is an input error."""
    lo, sep, hi = text.strip().partition("..")
    try:
        window = (int(lo), int(hi) if sep else int(lo))
    except ValueError:
        raise _days_error(f"{text!r} is not a day range A..B (whole days, e.g. 10..30 or -5..0)") from None
    return _day_window(window)  # type: ignore[return-value]


def _day_window(days: tuple[int, int] | None) -> tuple[int, int] | None:
    if days is None:
        return None
    if not isinstance(days, (tuple, list)) or len(days) != 2:
        raise _days_error(f"{days!r} is not a pair of whole days (A, B) or a range 'A..B'")
    lo, hi = days
    if isinstance(lo, bool) or isinstance(hi, bool) or not isinstance(lo, int) or not isinstance(hi, int):
        raise _days_error(f"{days!r} is not a pair of whole days")
    if lo > hi:
        raise _days_error(f"{lo}..{hi} is empty: the first day comes after the last")
    return lo, hi


def _days_error(message: str) -> ArgumentError:
    return ArgumentError("days", message, option="--days")


def compare(
    rules_a: PathLike | Ruleset,
    rules_b: PathLike | Ruleset,
    scenarios: Iterable[PathLike] | None = None,
) -> RulesetDiff:
    """Which decision points appear, disappear or move between two rule sets, per scenario.

    With no scenarios, the shipped index case is used.
    """
    from escalation.analysis.compare import RulesetDiff, ScenarioDiff, diff_results

    a, b = (r if isinstance(r, Ruleset) else load_ruleset(r) for r in (rules_a, rules_b))
    files = list(scenarios) if scenarios is not None else [shipped.as_written(shipped.index_case())]
    diffs: list[ScenarioDiff] = []
    for f in files:
        sc = load_scenario(f, [a, b])
        diffs.append(diff_results(build_result(run_replay(sc, a), f), build_result(run_replay(sc, b), f)))
    return RulesetDiff(notice=NOTICE, a=_label(a, rules_a), b=_label(b, rules_b), ruleset_a=ruleset_out(a),
                       ruleset_b=ruleset_out(b), scenarios=diffs)


def _label(rs: Ruleset, given: PathLike | Ruleset) -> str:
    where = IN_MEMORY if isinstance(given, Ruleset) else str(given)
    return f"{rs.ruleset.id} v{rs.ruleset.version} ({where})"


def rule_files(paths: Iterable[PathLike] | None = None) -> list[Path]:
    """Rule set files named or found under folders (default: every shipped rule set); never none."""
    given = [Path(p) for p in paths] if paths is not None else []
    if not given:
        return discover.require_some(shipped.shipped_rule_files(), [shipped.shipped("rules")], "rule set files")
    return discover.require_some(discover.each_once(discover.yaml_files(given)), given, "rule set files")


SCENARIO_FILES = "*.yaml and *.yml files and FHIR Bundle *.json files"


def scenario_files(paths: Iterable[PathLike] | None = None) -> list[Path]:
    """Scenario files named or found under folders (default: every shipped scenario); never none.

    Folders named `literature` hold published-case records, not timelines, and are passed over.
    Every path named must give a scenario file: a folder that gives none is an error naming it,
    as is a folder holding a FHIR Bulk Data export (NDJSON files), which is no scenario file and
    was once left out without a word when named beside other inputs (`import fhir` or `batch`
    reads an export). YAML files come first, then Bundles, each in the order the paths are given.
    """
    from escalation.fhir.reader import bundle_files

    given = [Path(p) for p in paths] if paths is not None else []
    roots = given or [shipped.as_written(shipped.shipped("scenarios"))]
    yaml: list[Path] = []
    bundles: list[Path] = []
    for root in roots:
        mine = discover.yaml_files([root], skip_literature=True), bundle_files([root])  # FHIR Bundles too
        if given:
            _gives_scenarios(root, *mine)
        yaml += mine[0]
        bundles += mine[1]
    return discover.require_some(discover.each_once(yaml + bundles), roots, "scenario files", SCENARIO_FILES)


def _gives_scenarios(root: Path, yaml: list[Path], bundles: list[Path]) -> None:
    """A folder named that gives no scenario file, or holds Bulk Data, is an input error naming it."""
    exports = _exports_in(root)
    if exports:
        raise _bulk_data(root, exports[0])
    if not yaml and not bundles and shipped.resolve(root).is_dir():
        skipped = any(discover.LITERATURE in p.relative_to(root).parts for p in discover.yaml_files([root]))
        raise InputError(shown_name(root), f"no scenario files found in this folder (looked for {SCENARIO_FILES}, "
                         "walking it" + ("; folders named literature hold published-case records, not "
                                         "timelines, and are passed over" if skipped else "") + ")")


def _exports_in(path: Path) -> list[Path]:
    """The FHIR Bulk Data exports (folders of NDJSON files) a folder named is or holds; [] for a file."""
    if not shipped.resolve(path).is_dir():
        return []
    return discover.export_folders(discover.files_under(path))


def _bulk_data(named: Path, export: Path) -> InputError:
    """The error for a FHIR Bulk Data export where scenarios are wanted: what reads one instead."""
    what = ("is a FHIR Bulk Data export (NDJSON files), not a scenario file" if export == named else
            f"holds a FHIR Bulk Data export (NDJSON files) in {shown_name(export)}, not scenario files")
    return InputError(shown_name(named), f"{what}: `escalation import fhir {shown_name(export)} --out DIR` "
                      "writes one scenario file per patient into DIR, to name instead; `escalation batch` "
                      "reads the export itself")


def check_expectations(
    scenarios: Iterable[PathLike] | None = None,
    rules: Iterable[PathLike] | None = None,
    progress: Callable[[int, int], None] | None = None,
    through_day: int | None = None,
) -> TestReport:
    """Replay every scenario under every rule set and compare with what each scenario expects.

    Every file is loaded and validated before the first replay, so a bad file costs nothing.
    `progress(done, total)` is called after each replay. `through_day` runs every clock at least
    to that day, so that expectations can reach past a scenario's last event.

    An expectation naming a rule id or a step its rule set does not have fails, and so do the
    expectations keyed by a rule set id that neither a rule set tested nor a shipped one has;
    those keyed by a shipped rule set left out of `rules` are not checked, as before.
    """
    from escalation.analysis.expectations import TestReport, coverage, outcome

    rulesets = [load_ruleset(p) for p in rule_files(rules)]
    loaded = [(f, load_scenario(f, rulesets)) for f in scenario_files(scenarios)]
    results, outcomes = [], []
    total = len(rulesets) * len(loaded)
    for rs in rulesets:
        for f, sc in loaded:
            result = build_result(run_replay(sc, rs, through_day), f)
            results.append(result)
            outcomes.append(outcome(result, sc.expected.get(rs.ruleset.id), rs.rules))
            if progress is not None:
                progress(len(results), total)
    outcomes += _unknown_rulesets(loaded, {rs.ruleset.id for rs in rulesets}, given=rules is not None)
    return TestReport(
        notice=NOTICE,
        passed=sum(o.status == "pass" for o in outcomes),
        failed=sum(o.status == "fail" for o in outcomes),
        unchecked=sum(o.status == "unchecked" for o in outcomes),
        scenarios=outcomes,
        coverage=coverage(results, {rs.ruleset.id: [r.id for r in rs.rules] for rs in rulesets}),
    )


def _unknown_rulesets(loaded: list[tuple[Path, Scenario]], tested: set[str], given: bool) -> list[ScenarioOutcome]:
    """A failure for each block of expectations keyed by a rule set id that no rule set tested or
    shipped has: most likely a typo, and checked by no run. A shipped rule set left out of this
    run (`--rules` names others) is legitimately not checked, and passed over as before."""
    from escalation.analysis.expectations import ruleset_problem, unknown_ruleset

    out: list[ScenarioOutcome] = []
    known: set[str] | None = None if given else tested  # without --rules, every shipped set is tested
    for f, sc in loaded:
        for key, items in sc.expected.items():
            if key in tested:
                continue
            if known is None:
                known = tested | {loading.load_ruleset(p).ruleset.id for p in shipped.shipped_rule_files()}
            why = ruleset_problem(key, known, "tested or shipped")
            if why is not None:
                out.append(unknown_ruleset(sc.scenario.id, f.as_posix(), key, items, why))
    return out


def write_report(
    scenario: PathLike,
    out: PathLike,
    rules: PathLike | Iterable[PathLike] | None = None,
) -> list[Path]:
    """Load and replay one scenario under one rule set, or two to compare, then write the report folder.

    The folder gets report.html (self-contained), report.md, course.png, course.svg and the JSON
    of each replay. Every file is read and every replay run before anything is written, so bad
    input raises InputError (or EngineError) and leaves `out` untouched.
    """
    from escalation.report.html import check_ruleset_count
    from escalation.report.html import write_report as render

    given = [rules] if isinstance(rules, (str, Path)) else list(rules or [])
    rule_paths = [Path(p) for p in given] or [shipped.default_rules_named()]
    check_ruleset_count(len(rule_paths))
    scenario_path = Path(scenario)
    rulesets = [load_ruleset(p) for p in rule_paths]
    sc = load_scenario(scenario_path, rulesets)
    results = [build_result(run_replay(sc, rs), scenario_path) for rs in rulesets]
    return render(sc, scenario_path, results, rulesets, Path(out), rule_paths=rule_paths)

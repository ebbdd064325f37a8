"""What `escalation check` does: validate input files without replaying anything.

cli/app.py declares the command and imports this module only when the command runs, as the other
commands import their modules.

YAML files (scenarios, variants, rule sets, published-case records) are loaded as every command
loads them. FHIR R4 input is imported as `escalation import fhir` and `replay` import it (the
same `import_paths`), and the check reports what that import gives: how many patients would
become scenarios, and how many codes and records it would leave out. What is a FHIR input:

- a `.json` file named that is a Bundle, or one found under a folder (other `.json` files found
  there are passed over, as `escalation test` passes them over);
- a folder, named or found, with `.ndjson` files directly inside: one Bulk Data export, all its
  FHIR files read together, as `import fhir` and `batch` read it;
- an `.ndjson` file named.

A scenario's expectations (`expected:`, or those an export carried in a Patient's
`scenario-fields`) are checked against the rule sets they are keyed by,
once every file is checked: each key must name a rule set checked in the same run or a shipped
one (a rule set checked here comes first), and each expectation a rule id or a step that rule
set has; else the file's `error:` line names the first such place, with the nearest known id,
and counts the others. Only ids and steps are checked (escalation.analysis.expectations.problems),
never what a rule should do.

A folder holding YAML files and NDJSON files is both: the export is checked as one, and each
YAML file in it on its own, so that every file is checked once, the way the command that reads
it would read it. The FHIR modules (and fhir.resources behind them) are imported only when such
an input is present, so a check of YAML files starts as fast as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import typer

from escalation.cli.common import EXIT_BAD_INPUT, errors
from escalation.load.discover import each_once, export_folders, files_under, kind_of, require_some, yaml_files
from escalation.load.errors import InputError
from escalation.load.loading import format_path, load_ruleset, load_scenario, read_yaml
from escalation.load.reading import shown_name
from escalation.load.ruleset import Rule, Ruleset
from escalation.load.scenario import Expectation, Scenario
from escalation.load.shipped import resolve, shipped_rule_files

if TYPE_CHECKING:  # the FHIR modules load only when FHIR input is checked
    from escalation.fhir.reader import Located

JSON, NDJSON = ".json", ".ndjson"
LOOKED_FOR = "*.yaml and *.yml files, FHIR Bundle *.json files and Bulk Data folders of *.ndjson files"

TargetKind = Literal["file", "bundle", "export"]


@dataclass(frozen=True)
class Target:
    """One thing to check: a file named (its kind read from it), a Bundle found, or an export folder."""

    path: Path
    kind: TargetKind


def targets(paths: Iterable[Path]) -> list[Target]:
    """What to check, in the order given and each folder sorted by path; a missing path is an error."""
    out: list[Target] = []
    for path in paths:
        real = resolve(path)  # a shipped file's repository path: the shipped one, named as given
        if real.is_dir():
            out += _walk(path)
        elif real.exists():
            out.append(Target(path, "file"))
        else:
            raise InputError(str(path), "file not found")
    return _each_once(out)


def _each_once(found: list[Target]) -> list[Target]:
    """A file named twice, or also found in a folder named, is checked once, under its first name."""
    left = set(each_once(t.path for t in found))
    out = []
    for target in found:
        if target.path in left:
            left.discard(target.path)
            out.append(target)
    return out


def _walk(root: Path) -> list[Target]:
    found = [Target(p, "file") for p in yaml_files([root])]
    fhir = [p for p in files_under(root) if p.suffix in (JSON, NDJSON)]
    exports = export_folders(fhir)
    found += [Target(folder, "export") for folder in exports]
    if any(p.suffix == JSON and not _inside(p, exports) for p in fhir):
        from escalation.fhir.reader import bundle_files  # what `escalation test` takes from a folder

        found += [Target(p, "bundle") for p in bundle_files([root]) if not _inside(p, exports)]
    return sorted(found, key=lambda t: t.path)


def _inside(path: Path, folders: Iterable[Path]) -> bool:
    return any(folder in path.parents for folder in folders)


@dataclass
class Seen:
    """What the YAML files checked so far hold that a scenario's expectations are checked against:
    the rule sets loaded, by id, and the ids of rule set files that failed to load (their rules
    unknown); and each scenario with expectations, with the lines of its `expected:`. The shipped
    rule sets are loaded once, when a scenario names a rule set not checked here."""

    rulesets: dict[str, list[Rule]] = field(default_factory=dict)
    broken: set[str] = field(default_factory=set)
    expected: dict[Path, tuple[dict[str, list[Expectation]], dict[tuple[str | int, ...], int]]] = field(
        default_factory=dict)
    # FHIR input: the expectations each imported patient carried, with the Patient to name in an error
    carried: dict[Path, list[tuple[Located, dict[str, list[Expectation]]]]] = field(default_factory=dict)
    shipped: dict[str, list[Rule]] | None = None

    def known(self, keys: Iterable[str]) -> dict[str, list[Rule]]:
        """The rule sets checked here, by id, and the shipped ones if `keys` name any other."""
        known = dict(self.rulesets)
        if all(key in known or key in self.broken for key in keys):
            return known
        if self.shipped is None:
            self.shipped = {}
            for path in shipped_rule_files():
                rs = load_ruleset(path)
                self.shipped.setdefault(rs.ruleset.id, []).extend(rs.rules)
        return {**self.shipped, **known}  # a rule set checked here comes before a shipped one


def check_target(target: Target, seen: Seen | None = None) -> tuple[str, list[str]]:
    """The kind of what was checked, for its `ok:` line, and any lines to print under it; a YAML
    file's rule set or expectations are noted in `seen`."""
    path = target.path
    seen = seen if seen is not None else Seen()
    if target.kind == "export":
        return _check_fhir(path, "FHIR Bulk Data export", seen)
    if target.kind == "bundle" or _is_bundle(path):
        return _check_fhir(path, "FHIR Bundle", seen)
    if path.suffix == NDJSON:
        return _check_fhir(path, "FHIR NDJSON file", seen)
    return _check_yaml(path, seen), []


def _is_bundle(path: Path) -> bool:
    """A .json file named whose top level is a Bundle: the test `replay` makes before reading one."""
    if path.suffix != JSON:
        return False
    from escalation.fhir.reader import is_bundle_file

    return is_bundle_file(path)


def _check_yaml(path: Path, seen: Seen) -> str:
    """Validate one file as whatever its top-level keys say it is; the kind, for the report."""
    from escalation.literature.records import load_records

    data, lines = read_yaml(path)
    kind = kind_of(data)
    if kind is None:
        if path.suffix == JSON:
            raise _not_a_bundle(path, data)
        raise InputError(str(path), "not a scenario, rule set or records file: it needs a top-level "
                         "scenario:, ruleset: or records: key", line=1)
    try:
        loaded = {"scenario": load_scenario, "rules": load_ruleset, "records": load_records}[kind](path)
    except InputError:
        info = data.get("ruleset")
        if kind == "rules" and isinstance(info, dict) and isinstance(info.get("id"), str):
            seen.broken.add(info["id"])  # its own error says what is wrong; its rules are unknown
        raise
    if isinstance(loaded, Ruleset):
        seen.rulesets.setdefault(loaded.ruleset.id, []).extend(loaded.rules)
    elif isinstance(loaded, Scenario) and loaded.expected:
        seen.expected[path] = (dict(loaded.expected), {k: v for k, v in lines.items() if k[:1] == ("expected",)})
    return kind


def expectation_error(path: Path, seen: Seen) -> InputError | None:
    """The first place in the file's expectations that names no rule set checked here nor shipped,
    or no rule or step of the rule set it is keyed by, as one error with a count of the others:
    one line for a bad file, as loading gives for any other problem (loading.validate). In FHIR
    input the place is in a Patient's `scenario-fields`, and the error names that Patient."""
    if path in seen.carried:
        for patient, expected in seen.carried[path]:
            found = _problems(expected, seen)
            if found is not None:
                place, why = found
                return InputError(patient.file, why, line=patient.line,
                                  where=f"{patient.name}, extension scenario-fields: {format_path(place)}")
        return None
    expected, lines = seen.expected[path]
    found = _problems(expected, seen)
    if found is None:
        return None
    place, why = found
    return InputError(shown_name(path), why, line=lines.get(place, lines.get(place[:2])), where=format_path(place))


def _problems(expected: dict[str, list[Expectation]], seen: Seen) -> tuple[tuple[str | int, ...], str] | None:
    """The first problem of a scenario's expectations, its message counting the others."""
    from escalation.analysis.expectations import problems

    found = problems(expected, seen.known(expected), "checked here or shipped", seen.broken)
    if not found:
        return None
    (place, why), more = found[0], len(found) - 1
    if more:
        why += f" (and {more} more problem{'s' if more > 1 else ''})"
    return place, why


def _not_a_bundle(path: Path, data: Any) -> InputError:
    """A .json named that is neither FHIR input nor one of the YAML kinds (JSON is YAML too)."""
    from escalation.fhir.reader import is_manifest

    resource = data.get("resourceType") if isinstance(data, dict) else None
    what = (f" (a {resource} resource)" if isinstance(resource, str) else
            " (a Bulk Data completion manifest: name the export's folder)" if is_manifest(data) else "")
    return InputError(str(path), f"not a FHIR Bundle{what}, nor a scenario, rule set or records file: give a "
                      "Bundle JSON file, a Bulk Data folder of NDJSON files, or a file with a top-level "
                      "scenario:, ruleset: or records: key", line=1)


def _check_fhir(path: Path, label: str, seen: Seen) -> tuple[str, list[str]]:
    """Import `path` as `import fhir` does and say what the import gives, without writing anything;
    the expectations its patients carried are noted in `seen`."""
    from escalation.fhir.to_scenario import import_paths
    from escalation.report.import_summary import check_account

    imported = import_paths([path])
    summary = imported.summary
    carried = [(imported.patients[sc.scenario.id], dict(sc.expected)) for _, sc in imported.scenarios if sc.expected]
    if carried:
        seen.carried[path] = carried
    head, lines = check_account(summary)
    if label == "FHIR Bundle" and len(summary.patients) > 1:
        head += "; `replay` and `test` take a Bundle of one patient, `import fhir` takes this one"
    return f"{label}: {head}", lines


def run_check(files: list[Path]) -> None:
    """Check every target; each bad one is one `error:` line, and the others are still checked."""
    with errors():
        found = require_some(targets(files), files, "files to check", LOOKED_FOR)
    seen = Seen()
    checked: list[tuple[Target, str, list[str], InputError | None]] = []
    for target in found:
        try:
            kind, lines = check_target(target, seen)
        except InputError as exc:
            checked.append((target, "", [], exc))
            continue
        checked.append((target, kind, lines, None))
    failed = False
    for target, kind, lines, bad in checked:
        if bad is None and (target.path in seen.expected or target.path in seen.carried):  # now that every rule set named or found is known
            bad = expectation_error(target.path, seen)
        if bad is not None:
            typer.echo(f"error: {bad.on_command_line()}", err=True)
            failed = True
            continue
        typer.echo("\n".join([f"ok: {target.path} ({kind})", *lines]))
    if failed:
        raise typer.Exit(EXIT_BAD_INPUT)


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

A folder holding YAML files and NDJSON files is both: the export is checked as one, and each
YAML file in it on its own, so that every file is checked once, the way the command that reads
it would read it. The FHIR modules (and fhir.resources behind them) are imported only when such
an input is present, so a check of YAML files starts as fast as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import typer

from escalation.cli.common import EXIT_BAD_INPUT, errors
from escalation.load.discover import files_under, kind_of, require_some, yaml_files
from escalation.load.errors import InputError
from escalation.load.loading import load_ruleset, load_scenario, read_yaml
from escalation.load.shipped import resolve

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
    return out


def _walk(root: Path) -> list[Target]:
    found = [Target(p, "file") for p in yaml_files([root])]
    fhir = [p for p in files_under(root) if p.suffix in (JSON, NDJSON)]
    exports = _outermost({p.parent for p in fhir if p.suffix == NDJSON})
    found += [Target(folder, "export") for folder in exports]
    if any(p.suffix == JSON and not _inside(p, exports) for p in fhir):
        from escalation.fhir.reader import bundle_files  # what `escalation test` takes from a folder

        found += [Target(p, "bundle") for p in bundle_files([root]) if not _inside(p, exports)]
    return sorted(found, key=lambda t: t.path)


def _outermost(folders: set[Path]) -> list[Path]:
    """Export folders not inside another: the import of a folder reads its subfolders too."""
    return sorted(f for f in folders if not any(other in f.parents for other in folders))


def _inside(path: Path, folders: Iterable[Path]) -> bool:
    return any(folder in path.parents for folder in folders)


def check_target(target: Target) -> tuple[str, list[str]]:
    """The kind of what was checked, for its `ok:` line, and any lines to print under it."""
    path = target.path
    if target.kind == "export":
        return _check_fhir(path, "FHIR Bulk Data export")
    if target.kind == "bundle" or _is_bundle(path):
        return _check_fhir(path, "FHIR Bundle")
    if path.suffix == NDJSON:
        return _check_fhir(path, "FHIR NDJSON file")
    return _check_yaml(path), []


def _is_bundle(path: Path) -> bool:
    """A .json file named whose top level is a Bundle: the test `replay` makes before reading one."""
    if path.suffix != JSON:
        return False
    from escalation.fhir.reader import is_bundle_file

    return is_bundle_file(path)


def _check_yaml(path: Path) -> str:
    """Validate one file as whatever its top-level keys say it is; the kind, for the report."""
    from escalation.literature.records import load_records

    data, _ = read_yaml(path)
    kind = kind_of(data)
    if kind is None:
        if path.suffix == JSON:
            raise _not_a_bundle(path, data)
        raise InputError(str(path), "not a scenario, rule set or records file: it needs a top-level "
                         "scenario:, ruleset: or records: key", line=1)
    {"scenario": load_scenario, "rules": load_ruleset, "records": load_records}[kind](path)
    return kind


def _not_a_bundle(path: Path, data: Any) -> InputError:
    """A .json named that is neither FHIR input nor one of the YAML kinds (JSON is YAML too)."""
    from escalation.fhir.reader import is_manifest

    resource = data.get("resourceType") if isinstance(data, dict) else None
    what = (f" (a {resource} resource)" if isinstance(resource, str) else
            " (a Bulk Data completion manifest: name the export's folder)" if is_manifest(data) else "")
    return InputError(str(path), f"not a FHIR Bundle{what}, nor a scenario, rule set or records file: give a "
                      "Bundle JSON file, a Bulk Data folder of NDJSON files, or a file with a top-level "
                      "scenario:, ruleset: or records: key", line=1)


def _check_fhir(path: Path, label: str) -> tuple[str, list[str]]:
    """Import `path` as `import fhir` does and say what the import gives, without writing anything."""
    from escalation.fhir.to_scenario import import_paths
    from escalation.report.import_summary import check_account

    summary = import_paths([path]).summary
    head, lines = check_account(summary)
    if label == "FHIR Bundle" and len(summary.patients) > 1:
        head += "; `replay` and `test` take a Bundle of one patient, `import fhir` takes this one"
    return f"{label}: {head}", lines


def run_check(files: list[Path]) -> None:
    """Check every target; each bad one is one `error:` line, and the others are still checked."""
    failed = False
    with errors():
        found = require_some(targets(files), files, "files to check", LOOKED_FOR)
    for target in found:
        try:
            kind, lines = check_target(target)
        except InputError as exc:
            typer.echo(f"error: {exc}", err=True)
            failed = True
            continue
        typer.echo("\n".join([f"ok: {target.path} ({kind})", *lines]))
    if failed:
        raise typer.Exit(EXIT_BAD_INPUT)


"""Batch inputs that are not scenario files yet: FHIR Bulk Data export folders, and FHIR
Bundles of several patients (a cohort, as a searchset or collection Bundle).

Each holds many patients in one input. The workers replay scenario files, each cached by its
content hash, so such an input is imported once, before the plan is made, into
`DIR/imported/NN-NAME/` (one scenario file per patient and the import summary, as `escalation
import fhir` writes them; NAME is the folder's name, or the Bundle's without `.json`, its path
resolved; a resume uses the folders its manifest lists), and the batch then runs on those files.
One named twice is imported once. A Bundle of one patient is no such input: it is replayed as it
is, its import done in memory by the worker (its day 0 and import note in its replay rows).

Only an input named on its own is imported. A Bulk Data folder inside a folder named is refused
(`refuse_nested_exports`) unless it is named too; then it is imported once, and the folder's
other scenario files are replayed. The YAML files inside an export folder are replayed beside its
patients, as `check` lists them (`scenario_paths`): the import reads none of them. A Bundle of several patients inside a folder named is left as a scenario
file found there, as before, and fails as its own error rows, saying to import it: telling it from
a Bundle of one patient would mean parsing every Bundle of every folder before DIR is touched, and
a folder walk finds scenario files, not inputs to import. Named on its own, it is imported.

The import writes into DIR, so it runs only once DIR is checked and locked for this run (see
`run_batch`): a run that is refused, or a second run beside a first, never touches a batch's
imported files. It is rendered into a staged folder that then replaces `DIR/imported` whole, so
no file of an earlier import stays to be replayed. The import is deterministic, so a `--resume`
imports the same files again. Each such input is recorded in the manifest by name and hash
(`FhirInput`); a resume refuses one that has changed, naming it, before importing anything, and
one whose import now gives other scenario files (under rule sets of other diagnoses, say) before
`DIR/imported` is touched.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from escalation.batch.plan import IMPORTED, FhirInput, Manifest, fhir_differences, sha256_of
from escalation.load.discover import export_folders, files_under, folder_entries, kind_of, yaml_files
from escalation.load.errors import InputError
from escalation.load.loading import read_yaml
from escalation.load.reading import shown_name

NDJSON = ".ndjson"
MARK = ".written-by-escalation-batch"  # in DIR/imported: the folder is a batch's import


def is_import_folder(path: Path) -> bool:
    """Whether an entry of DIR is a batch's imported folder (it holds the mark), or a staged
    import a killed run left: a new batch may start in a DIR that holds only these, and replaces
    them. A folder named `imported` without the mark is someone's own, never replaced."""
    if path.name == IMPORTED:
        return path.is_dir() and not path.is_symlink() and (path / MARK).is_file()
    return path.name.startswith(f".{IMPORTED}.") and path.name.endswith(".tmp")


def is_bulk_folder(path: Path) -> bool:
    """A folder with NDJSON files at its top: a Bulk Data export, as `$export` writes it."""
    return path.is_dir() and any(p.suffix == NDJSON for p in folder_entries(path))


def is_cohort_bundle(path: Path) -> bool:
    """A FHIR Bundle file of more than one patient (counted from its JSON; fhir.reader.
    bundle_patients). One that cannot be read or parsed is not: it stays an input as before, and
    fails with the same error as before."""
    from escalation.fhir.reader import bundle_patients

    return path.suffix == ".json" and (bundle_patients(path) or 0) > 1


def to_import(inputs: Sequence[Path]) -> dict[int, Path]:
    """The inputs a batch imports into DIR before planning, by their number (from 1) among the
    inputs: Bulk Data folders and Bundles of several patients, each named on its own. One named
    again (`bulk ./bulk`, or through a link) is imported once, under its first number, as a
    scenario file named twice is replayed once (discover.each_once): the same file or folder is the same
    resolved path (`_first_named`)."""
    found: dict[int, Path] = {}
    seen: set[str] = set()
    for n, p in enumerate(inputs, start=1):
        given, real = Path(p), os.path.realpath(p)
        if real not in seen and (is_bulk_folder(given) or is_cohort_bundle(given)):
            found[n] = given
            seen.add(real)
    return found


def _first_named(inputs: Sequence[Path], imports: dict[int, Path]) -> dict[int, int]:
    """Each input that is one of `imports`, by its number, with the number it is imported under:
    its own, or that of the first time it was named."""
    first = {os.path.realpath(p): n for n, p in imports.items()}
    return {n: first[real] for n, p in enumerate(inputs, start=1) if (real := os.path.realpath(p)) in first}


def refuse_nested_exports(inputs: Sequence[Path]) -> None:
    """Bulk Data named other than as its export's folder is refused, before DIR is touched.

    A folder named that holds an export below its top (a folder of NDJSON files) is refused,
    naming the export, unless that export's own folder is named too: a batch reads an export only
    when its folder is named (a folder's scenarios are found by walking, its NDJSON files are
    not), and leaving it out would be silent. Named too, it is imported once and the folder's own
    scenario files are replayed (`scenario_paths`). An NDJSON file named is refused too, naming
    its folder: one file of an export is not a scenario, and was accepted here only to fail in
    the worker, an error row per rule set and grid value. Every folder named is walked here, an
    export too, so that one with a subfolder that cannot be read is refused before DIR is touched
    (an export is read only once DIR is locked)."""
    named = {os.path.realpath(p) for p in inputs if is_bulk_folder(Path(p))}
    for given in map(Path, inputs):
        if given.suffix == NDJSON and not given.is_dir() and given.exists():
            raise InputError(str(given), "a FHIR Bulk Data NDJSON file is not a batch input: a Bulk Data export "
                             f"is given as its folder ({given.parent}), whose NDJSON files the batch imports "
                             "together")
        if given.is_dir():
            files = files_under(given)
            if is_bulk_folder(given):
                continue
            inner = [e for e in export_folders(files) if os.path.realpath(e) not in named]
            if inner:
                more = f" (and {len(inner) - 1} more export folder{'s' if len(inner) > 2 else ''})" \
                    if len(inner) > 1 else ""
                raise InputError(str(given), f"holds FHIR Bulk Data (NDJSON files) in {inner[0]}{more}, which a "
                                 "batch reads only as an export folder named on its own: name that folder too")


def scenario_paths(given: Path, exports: Sequence[Path]) -> list[Path] | None:
    """The scenario files a folder named holds besides the exports it is or holds (`exports`, the
    export folders the batch imports), or None for a folder that is none and holds none (walked as
    any other folder) and for a file.

    As `check` reads such a folder: each export imported as one, and every YAML file in the
    folder replayed on its own, inside the export too (the import reads NDJSON and Bundle files,
    never YAML: a scenario written beside an export would otherwise be left out without a word).
    Folders named `literature` are passed over, as in any folder walked (api.scenario_files). A
    Bundle inside an export is read by its import, so only those outside are replayed as files."""
    if not given.is_dir():
        return None
    real = Path(os.path.realpath(given))
    inner = [Path(os.path.realpath(e)) for e in exports]
    if not any(e == real or real in e.parents for e in inner):
        return None
    from escalation.fhir.reader import bundle_files

    def in_export(p: Path) -> bool:
        return any(e in Path(os.path.realpath(p)).parents for e in inner)

    return ([f for f in yaml_files([given], skip_literature=True) if _not_other_kind(f)]
            + [b for b in bundle_files([given]) if not in_export(b)])


def _not_other_kind(path: Path) -> bool:
    """False for a rule set or records file kept beside an export (as `check` tells them apart),
    which is no scenario to replay; a file that cannot be read stays, for its error row."""
    try:
        data, _ = read_yaml(path)
    except InputError:
        return True
    return kind_of(data) in (None, "scenario")


def expand_inputs(inputs: Sequence[Path], out: Path, diagnoses: Sequence[str],
                  planned: Manifest | None, imports: dict[int, Path]) -> tuple[list[Path], list[FhirInput]]:
    """The inputs with each Bulk Data folder and Bundle of several patients replaced by the
    folder of its imported scenarios, day 0 chosen by `diagnoses` (those of every rule set of the
    batch; plan.day_zero_diagnoses), and those inputs, hashed, for the manifest. `imports` is
    `to_import(inputs)`.

    Call it holding DIR's lock, DIR checked (`run_batch` does). To resume, `planned` is the
    batch's manifest: each input must be the one it lists, with the same hash, and must import to
    exactly the scenario files it lists, by hash; otherwise DIR/imported is left as it is.
    """
    from escalation.report.files import replace_folder, staged

    if not imports:
        return [Path(p) for p in inputs], []
    records = [fhir_input(n, given, _name(n, given)) for n, given in imports.items()]
    if planned is not None:
        if changed := fhir_differences(planned.fhir_inputs, records):
            first = changed[0]
            raise InputError(first.file, f"cannot resume: this {first.kind} {first.how}; resume with the FHIR "
                             "inputs the batch was planned with, as they were, or start a new batch in another "
                             "folder")
        # the same files and folders in the same order (checked): each is imported into the folder
        # the batch was planned with, whatever it is called now (a link, `.`, another number)
        records = [r.model_copy(update={"imported": _planned_folder(p.imported, out)})
                   for r, p in zip(records, planned.fhir_inputs, strict=True)]
    names = {r.input: r.imported for r in records}
    dest = out / IMPORTED
    found = _replayed(inputs, imports, dest, names)  # walked before DIR/imported is replaced
    for left in out.glob(f".{IMPORTED}.*.tmp"):  # by a run killed while importing; DIR is locked
        shutil.rmtree(left, ignore_errors=True)
    with staged(dest) as stage:
        new = stage / IMPORTED
        new.mkdir()
        (new / MARK).write_text("FHIR input imported by `escalation batch`; replaced whole by the next import.\n",
                                encoding="utf-8")
        for record, source in zip(records, _sources(records, planned), strict=True):
            _import(source, imports[record.input], new / record.imported, diagnoses)
        if planned is not None:
            for number, given in imports.items():
                _check_unchanged(given, new / names[number], names[number], planned)
        replace_folder(new, dest)
    return [p for n in range(1, len(inputs) + 1) for p in found[n]], records


def _replayed(inputs: Sequence[Path], imports: dict[int, Path], dest: Path,
              names: dict[int, str]) -> dict[int, list[Path]]:
    """What each input is replayed as, by its number: an import's folder in `dest`, and the
    scenario files a folder holds besides the exports it is or holds (`scenario_paths`); one
    named again (imported under an earlier number) gives nothing more."""
    firsts = _first_named(inputs, imports)
    exports = [p for p in imports.values() if p.is_dir()]
    found: dict[int, list[Path]] = {}
    for n, p in enumerate(inputs, start=1):
        if firsts.get(n, n) != n:  # one named again is imported, and replayed, once
            found[n] = []
            continue
        own = scenario_paths(Path(p), exports)
        head = [dest / names[n]] if n in names else []
        found[n] = head + (own if own is not None else [] if head else [Path(p)])
    return found


def fhir_input(number: int, given: Path, imported: str) -> FhirInput:
    """A Bundle or export named, with the hash of what its import reads (FhirInput.sha256)."""
    return FhirInput(input=number, kind=_noun(given), file=str(given), path=str(given.absolute()),
                     imported=imported, sha256=fhir_sha256(given))


def fhir_sha256(given: Path) -> str:
    """A Bundle's sha256, or an export folder's: over the name within the folder and the sha256
    of each file its import reads (fhir.reader.files_read), so that a file added, removed,
    renamed or changed changes it. A file that cannot be read is an input error naming it."""
    from escalation.fhir.reader import files_read

    try:
        if given.is_file():
            return sha256_of(given)
        h = hashlib.sha256()
        for file in files_read(given):
            h.update(file.relative_to(given).as_posix().encode("utf-8", "surrogateescape") + b"\0"
                     + sha256_of(file).encode() + b"\n")
        return h.hexdigest()
    except OSError as exc:
        raise InputError(shown_name(exc.filename or given), f"cannot read file: {exc.strerror or exc}") from None


def _name(number: int, given: Path) -> str:
    """The folder in DIR/imported a new batch imports `given` into: NN-NAME, NAME the name of the
    file (without `.json`) or folder it is, its path resolved, so that `.` is named by the folder
    it is and a link by what it links to. A resume imports into the folders its manifest lists."""
    real = Path(os.path.realpath(given))
    return f"{number:02d}-{real.stem if real.is_file() else real.name}"


def _planned_folder(name: str, out: Path) -> str:
    """A folder name the manifest gives an import: one name within DIR/imported, or the manifest
    is not one a batch wrote, and nothing is imported by it."""
    if not name or name in (".", "..") or Path(name).name != name or "\\" in name:
        raise InputError(str(out / "manifest.json"), f"cannot resume: its FHIR input folder {name!r} is not a "
                         f"name within {IMPORTED}/; this manifest was not written by escalation batch")
    return name


def _noun(given: Path) -> str:
    return "Bundle" if given.is_file() else "export"


def _sources(records: list[FhirInput], planned: Manifest | None) -> list[Path]:
    """The paths the inputs are imported from, and so named by in the scenario files and import
    summaries they give: their absolute paths when the batch was planned. Their names as given would
    make those files, and their hashes, depend on the folder the batch was run from and on how each
    input was named, and a resume named otherwise could not import them again byte for byte. A
    resume has checked that they are the files and folders the manifest lists, in its order
    (fhir_differences), and imports them from the paths it gives them."""
    return [Path(f.path) for f in (planned.fhir_inputs if planned is not None else records)]


def _import(source: Path, folder: Path, dest: Path, diagnoses: Sequence[str]) -> None:
    from escalation.fhir.scenario_file import import_files
    from escalation.fhir.to_scenario import DEFAULT_DIAGNOSES, Options, import_paths

    imported = import_paths([source], Options(diagnoses=tuple(diagnoses) or DEFAULT_DIAGNOSES))
    if not imported.scenarios:  # said of the export, not of the empty folder it would import into
        why = next((f"{p.patient}: {p.skipped}" for p in imported.summary.patients if p.skipped), "no Patient resource")
        raise InputError(str(folder), f"no patient of this {_noun(folder)} can be a scenario ({why}); "
                         "`escalation import fhir` lists every patient and why")
    dest.mkdir()
    for name, text in import_files(imported):
        (dest / name).write_text(text, encoding="utf-8")


def _check_unchanged(export: Path, staged: Path, name: str, planned: Manifest) -> None:
    """The export imports to the scenario files the batch was planned with, or resuming would
    mix two exports in one batch: refused, naming the export and what differs. The files are
    compared by their place in DIR/imported/`name` and their content, not by their absolute
    paths: DIR may have been moved, or named otherwise, since the batch was planned."""
    then = planned.imported_files(name)
    now = {p.relative_to(staged).as_posix(): sha256_of(p) for p in files_under(staged) if p.suffix in (".yaml", ".yml")}
    if now == then:
        return
    gone = sorted(then.keys() - now.keys())
    new = sorted(now.keys() - then.keys())
    changed = sorted(k for k in then.keys() & now.keys() if then[k] != now[k])
    what = "; ".join(f"{label}: {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}"
                     for label, names in (("no longer imported", gone), ("new", new), ("different", changed))
                     if names)
    raise InputError(str(export), f"cannot resume: this {_noun(export)} now imports to other scenario files "
                     f"than the batch was planned with ({what}): the {_noun(export)} has changed, or the rule sets' "
                     "diagnoses, which choose day 0; resume with both as they were, or start a new batch "
                     "in another folder")

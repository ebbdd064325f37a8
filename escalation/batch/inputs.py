"""Batch inputs that are not scenario files yet: FHIR Bulk Data export folders.

A Bulk Data folder holds many patients in one set of NDJSON files. The workers replay scenario
files, each cached by its content hash, so the folder is imported once, before the plan is made,
into `DIR/imported/NN-NAME/` (one scenario file per patient and the import summary, as
`escalation import fhir` writes them), and the batch then runs on those files. The import is
deterministic, so a `--resume` imports the same files again and the manifest's hashes still match.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

IMPORTED = "imported"  # the folder inside DIR that holds imported Bulk Data patients


def is_bulk_folder(path: Path) -> bool:
    """A folder with NDJSON files at its top: a Bulk Data export, as `$export` writes it."""
    return path.is_dir() and any(p.suffix == ".ndjson" for p in path.iterdir())


def expand_inputs(inputs: Sequence[Path], out: Path, rules: Sequence[Path]) -> list[Path]:
    """The inputs with each Bulk Data folder replaced by the folder of its imported scenarios."""
    expanded: list[Path] = []
    for number, path in enumerate(inputs, start=1):
        if is_bulk_folder(Path(path)):
            expanded.append(_import(Path(path), out / IMPORTED / f"{number:02d}-{Path(path).name}", rules))
        else:
            expanded.append(Path(path))
    return expanded


def _import(folder: Path, dest: Path, rules: Sequence[Path]) -> Path:
    from escalation.fhir.scenario_file import scenario_yaml
    from escalation.fhir.to_scenario import Options, import_paths, rule_diagnoses
    from escalation.load.loading import load_ruleset
    from escalation.report.files import publish, staged

    imported = import_paths([folder], Options(diagnoses=rule_diagnoses(load_ruleset(p) for p in rules)))
    names = [f"{data['scenario']['id']}.yaml" for data, _ in imported.scenarios]
    with staged(dest) as stage:
        for name, (data, _) in zip(names, imported.scenarios):
            (stage / name).write_text(scenario_yaml(data), encoding="utf-8")
        (stage / "import-summary.json").write_text(
            imported.summary.model_dump_json(indent=2) + "\n", encoding="utf-8")
        publish(stage, dest, [*names, "import-summary.json"])
    return dest

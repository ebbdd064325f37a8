"""FHIR R4 input files to validated resources, each remembered with its file and line.

Two shapes are read: a Bundle in one JSON file (collection, transaction, batch or searchset) and
a Bulk Data `$export` folder of NDJSON files (one resource a line). Each resource the import uses
is validated with fhir.resources (its R4B models read the R4 resources needed); other types are
counted, not read. Every error names the file, the line where the resource starts (the NDJSON
line number) and the resource, so that a broken export costs one line to find.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from escalation.load.discover import files_under
from escalation.load.errors import InputError
from escalation.load.reading import is_regular_file, parse_json, read_text, shown_name

# Resource types the import reads: events, day 0, and what events point at.
READ_TYPES = frozenset({
    "Patient", "Encounter", "Condition", "Observation", "MedicationAdministration", "MedicationRequest",
    "MedicationStatement", "Procedure", "DeviceUseStatement", "Device", "Medication",
})
BUNDLE_TYPES = ("collection", "transaction", "batch", "searchset")
NDJSON_SUFFIX = ".ndjson"
# A Bulk Data file holds one resource type for a whole export, so it may be far larger than a
# scenario file; it is still read whole (for line numbers), so it is still bounded.
MAX_FHIR_FILE_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class Located:
    """One resource as read: its model (None for types the import does not read) and its place."""

    type: str
    id: str | None
    model: Any
    file: str
    line: int | None
    full_url: str | None = None

    @property
    def name(self) -> str:
        """`Observation/abc`, the way errors and citations name a resource."""
        return f"{self.type}/{self.id}" if self.id else f"{self.type} (no id)"


def read_paths(paths: Iterable[Path]) -> list[Located]:
    """Every resource of every Bundle file and Bulk Data folder named, in a stable order."""
    out: list[Located] = []
    for path in paths:
        for file in _files(Path(path)):
            out += read_file(file)
    return out


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        found = [p for p in files_under(path) if p.suffix in (NDJSON_SUFFIX, ".json")]
        files = [p for p in found if p.suffix == NDJSON_SUFFIX or not _is_manifest(p)]
        if not files:
            raise InputError(str(path), "no FHIR input found (looked for *.ndjson and Bundle *.json files)")
        return files
    if not path.exists():
        raise InputError(str(path), "file not found")
    return [path]


def _is_manifest(path: Path) -> bool:
    """A Bulk Data completion manifest lists the export's files; it holds no resource."""
    try:
        data = json.loads(_text(path))
    except (InputError, ValueError, RecursionError):
        return False
    return is_manifest(data)


def is_manifest(data: Any) -> bool:
    """Parsed JSON that is a Bulk Data completion manifest; `check` names it when given one alone."""
    return isinstance(data, dict) and "resourceType" not in data and "output" in data and "transactionTime" in data


def read_file(path: Path) -> list[Located]:
    text = _text(path)
    if path.suffix == NDJSON_SUFFIX:
        return list(_ndjson(text, str(path)))
    return _bundle(text, str(path))


def is_bundle_file(path: Path) -> bool:
    """A JSON file whose top level is a FHIR Bundle: what `replay` and `test` take as a scenario."""
    if path.suffix != ".json" or not is_regular_file(path):
        return False
    try:
        with path.open(encoding="utf-8") as fh:
            head = fh.read(4096)
    except (OSError, UnicodeDecodeError):
        return False
    if '"resourceType"' in head and '"Bundle"' in head:
        return True
    if not head.lstrip().startswith("{"):
        return False
    try:  # a Bundle may name its type after its entries: the head cannot tell, the whole can
        data = json.loads(_text(path))
    except (InputError, ValueError, RecursionError):
        return False
    return isinstance(data, dict) and data.get("resourceType") == "Bundle"


def _text(path: Path) -> str:
    """A regular file within MAX_FHIR_FILE_BYTES, read as the YAML files are (no devices, no pipes)."""
    return read_text(path, shown_name(path), MAX_FHIR_FILE_BYTES)


def _ndjson(text: str, name: str) -> Iterator[Located]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        yield located(parse_json(line, name, number), name, number)


def _bundle(text: str, name: str) -> list[Located]:
    raw = parse_json(text, name)
    if not isinstance(raw, dict) or raw.get("resourceType") != "Bundle":
        kind = raw.get("resourceType") if isinstance(raw, dict) else None
        raise InputError(name, f"not a FHIR Bundle{f' (a {kind})' if kind else ''}: give a Bundle "
                         "JSON file or a Bulk Data folder of NDJSON files", line=1)
    if raw.get("type") not in BUNDLE_TYPES:
        raise InputError(name, f"Bundle type {raw.get('type')!r} is not read; one of "
                         f"{', '.join(BUNDLE_TYPES)} is", line=1, where=_bundle_name(raw))
    entries = raw.get("entry") or []
    if not isinstance(entries, list):
        raise InputError(name, "Bundle.entry must be a list", line=1, where=_bundle_name(raw))
    lines = entry_lines(text)
    out = []
    for i, entry in enumerate(entries):
        line = lines[i] if i < len(lines) else None
        if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
            if isinstance(entry, dict) and "request" in entry and "resource" not in entry:
                continue  # a DELETE or GET in a transaction or batch carries no resource
            raise InputError(name, "a Bundle entry without a resource", line=line, where=f"entry[{i}]")
        out.append(located(entry["resource"], name, line, entry.get("fullUrl")))
    return out


def _bundle_name(raw: dict[str, Any]) -> str:
    return f"Bundle/{raw['id']}" if raw.get("id") else "Bundle"


def located(raw: Any, name: str, line: int | None, full_url: str | None = None) -> Located:
    """One resource validated against its FHIR R4 model, or an InputError naming it."""
    if not isinstance(raw, dict) or not isinstance(raw.get("resourceType"), str):
        raise InputError(name, "not a FHIR resource: no resourceType", line=line)
    kind, rid = raw["resourceType"], raw.get("id")
    where = f"{kind}/{rid}" if rid else kind
    if kind not in READ_TYPES:
        return Located(kind, rid, None, name, line, full_url)
    from fhir.resources.R4B import (
        get_fhir_model_class,  # 0.2 s to import: only when a file is read
    )

    try:
        model = get_fhir_model_class(kind).model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or kind
        more = len(exc.errors()) - 1
        message = f"not valid FHIR R4 {kind}: {loc}: {err['msg']}" + (f" (and {more} more)" if more else "")
        raise InputError(name, message, line=line, where=where) from None
    return Located(kind, rid, model, name, line, full_url)


def entry_lines(text: str) -> list[int]:
    """The line on which each element of a Bundle's top-level `entry` array starts.

    The json module gives no positions, so the top level is walked here with its own decoder:
    every value is skipped with `raw_decode`, and the entries' offsets are kept.
    """
    decoder = json.JSONDecoder()
    i = _skip(text, 0)
    if i >= len(text) or text[i] != "{":
        return []
    i = _skip(text, i + 1)
    while i < len(text) and text[i] != "}":
        key, i = decoder.raw_decode(text, i)
        i = _skip(text, _skip(text, i) + 1)  # past the colon
        if key == "entry" and text[i] == "[":
            return _element_lines(text, i, decoder)
        _, i = decoder.raw_decode(text, i)
        i = _skip(text, i)
        if text[i] == ",":
            i = _skip(text, i + 1)
    return []


def _element_lines(text: str, i: int, decoder: json.JSONDecoder) -> list[int]:
    out: list[int] = []
    line, counted = 1, 0
    i = _skip(text, i + 1)
    while i < len(text) and text[i] != "]":
        line, counted = line + text.count("\n", counted, i), i
        out.append(line)
        _, i = decoder.raw_decode(text, i)
        i = _skip(text, i)
        if text[i] == ",":
            i = _skip(text, i + 1)
    return out


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def bundle_files(roots: Iterable[Path]) -> list[Path]:
    """FHIR Bundle JSON files under the folders named, sorted: scenarios for `escalation test`."""
    return [p for root in roots if root.is_dir() for p in files_under(root)
            if p.name.endswith(".json") and is_bundle_file(p)]

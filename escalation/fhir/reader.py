"""FHIR R4 input files to validated resources, each remembered with its file and line.

Two shapes are read: a Bundle in one JSON file (collection, transaction, batch or searchset) and
a Bulk Data `$export` folder of NDJSON files (one resource a line). Each resource the import uses
is validated with fhir.resources (its R4B models read the R4 resources needed); other types are
counted, not read. Every error names the file, the line where the resource starts (the NDJSON
line number) and the resource, so that a broken export costs one line to find.

A resource of a type the import reads that is given more than once with the same type and id (in
two files of an export, in two Bundles of one patient, or twice in one Bundle) is read once when
the copies are identical, and counted (`Read.read_once`); else it would be a second patient or a
second event, counted twice in every cohort count. Identical means the same JSON once the
`meta.lastUpdated` and `meta.versionId` a server stamps on each write are set aside, and once a
reference to an entry of the same Bundle by its `fullUrl` (a transaction's `urn:uuid:...`) is read
as the Type/id it names. Copies that differ are an input error naming both places: which one is
right is for the researcher to decide. Of a type the import does not read, identical copies are
read once and counted the same way; copies that differ are only counted (the import uses neither).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
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
# What a server changes on every write or export of a resource, not its content.
STAMPS = ("lastUpdated", "versionId")


@dataclass(frozen=True)
class Located:
    """One resource as read: its model (None for types the import does not read) and its place."""

    type: str
    id: str | None
    model: Any
    file: str
    line: int | None
    full_url: str | None = None
    content: bytes | None = None  # a digest of its JSON as compared for duplicates
    aliases: tuple[str, ...] = ()  # the fullUrls of identical copies read once, that references may use

    @property
    def name(self) -> str:
        """`Observation/abc`, the way errors and citations name a resource."""
        return f"{self.type}/{self.id}" if self.id else f"{self.type} (no id)"

    @property
    def place(self) -> str:
        """`FILE:LINE`, where it was read."""
        return f"{self.file}:{self.line}" if self.line is not None else self.file


@dataclass(frozen=True)
class Read:
    """The resources of the input, each once, and how many identical copies were read once, by type."""

    resources: list[Located]
    read_once: dict[str, int]


def read_paths(paths: Iterable[Path]) -> Read:
    """Every resource of every Bundle file and Bulk Data folder named, in a stable order; a
    resource given again, identical, is read once (and counted), a different one of the same
    type and id is an error naming both places."""
    out: list[Located] = []
    first: dict[tuple[str, str], int] = {}
    unread: set[tuple[str, str, bytes]] = set()  # types not read: each version once
    once: Counter[str] = Counter()
    for path in paths:
        for file in files_read(Path(path)):
            for r in read_file(file):
                if r.id is None:
                    out.append(r)
                    continue
                if r.model is None:  # a type not read: a copy is counted once, another version apart
                    if (r.type, r.id, r.content) in unread:
                        once[r.type] += 1
                    else:
                        unread.add((r.type, r.id, r.content))
                        out.append(r)
                    continue
                at = first.setdefault((r.type, r.id), len(out))
                if at == len(out):
                    out.append(r)
                    continue
                kept = out[at]
                if r.content != kept.content:
                    raise _differs(kept, r)
                once[r.type] += 1
                if r.full_url and r.full_url != kept.full_url and r.full_url not in kept.aliases:
                    out[at] = replace(kept, aliases=(*kept.aliases, r.full_url))
    return Read(out, dict(sorted(once.items())))


def _differs(first: Located, again: Located) -> InputError:
    """Two versions of one resource: the error names both places and the fields that differ."""
    a, b = _json_of(first), _json_of(again)
    fields = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    what = f" ({', '.join(fields)} {'differs' if len(fields) == 1 else 'differ'})" if fields and a and b else ""
    return InputError(again.file, f"given again with other content than at {first.place}{what}: which "
                      "version is right is for you to decide; remove one, or make them identical "
                      "(identical copies are read once)", line=again.line, where=again.name)


def _json_of(r: Located) -> dict[str, Any]:
    """The JSON of `r` as compared, read again from its file: only an error's message needs it."""
    try:
        text = _text(Path(r.file))
        if r.file.endswith(NDJSON_SUFFIX):
            found = [(json.loads(text.splitlines()[(r.line or 1) - 1]), {})]
        else:
            entries = [e for e in json.loads(text).get("entry") or [] if isinstance(e, dict)]
            urls = _local_urls(entries)
            found = [(e["resource"], urls) for e in entries if isinstance(e.get("resource"), dict)]
    except (InputError, ValueError, RecursionError, IndexError, AttributeError):
        return {}
    for raw, urls in found:
        if raw.get("resourceType") == r.type and raw.get("id") == r.id:
            compared = _compared(raw, urls)
            if _digest(compared) == r.content:
                return compared
    return {}


def _local_urls(entries: list[Any]) -> dict[str, str]:
    """A Bundle's fullUrls, each with the Type/id of the resource it names."""
    out = {}
    for e in entries:
        res = e.get("resource") if isinstance(e, dict) else None
        if isinstance(e, dict) and isinstance(e.get("fullUrl"), str) and isinstance(res, dict) and res.get("id"):
            out[e["fullUrl"]] = f"{res.get('resourceType')}/{res['id']}"
    return out


def _compared(raw: dict[str, Any], urls: dict[str, str]) -> dict[str, Any]:
    """A resource's JSON as two copies of it are compared: without the server's stamps in `meta`,
    and with a reference to an entry of its Bundle by fullUrl read as the Type/id it names."""
    meta = raw.get("meta")
    if isinstance(meta, dict) and any(k in meta for k in STAMPS):
        kept = {k: v for k, v in meta.items() if k not in STAMPS}
        raw = {k: v for k, v in raw.items() if k != "meta"} | ({"meta": kept} if kept else {})
    return _local_refs(raw, urls) if urls else raw


def _local_refs(value: Any, urls: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: (urls.get(v, v) if k == "reference" and isinstance(v, str) else _local_refs(v, urls))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_local_refs(v, urls) for v in value]
    return value


def _digest(compared: dict[str, Any]) -> bytes:
    text = json.dumps(compared, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def files_read(path: Path) -> list[Path]:
    """The files `read_paths` reads for a path named: the file itself, or a folder's NDJSON files
    and Bundle files (its Bulk Data completion manifest left out), in order."""
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


def bundle_patients(path: Path) -> int | None:
    """How many patients a Bundle file holds, counted as the import counts them (a Patient given
    again with the same id is one), from the JSON alone, without validating a resource; None for
    a file that is not a Bundle or cannot be read or parsed, which the import reports in its own
    words. `batch` asks it of each Bundle named, to import one of several patients as a cohort."""
    if not is_bundle_file(path):
        return None
    try:
        data = json.loads(_text(path))
    except (InputError, ValueError, RecursionError):
        return None
    entries = data.get("entry") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return None
    ids: set[str] = set()
    unnamed = 0
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") == "Patient":
            rid = resource.get("id")
            if isinstance(rid, str) and rid:
                ids.add(rid)
            else:
                unnamed += 1
    return len(ids) + unnamed


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
    urls = _local_urls(entries)
    out = []
    for i, entry in enumerate(entries):
        line = lines[i] if i < len(lines) else None
        if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
            if isinstance(entry, dict) and "request" in entry and "resource" not in entry:
                continue  # a DELETE or GET in a transaction or batch carries no resource
            raise InputError(name, "a Bundle entry without a resource", line=line, where=f"entry[{i}]")
        out.append(located(entry["resource"], name, line, entry.get("fullUrl"), urls))
    return out


def _bundle_name(raw: dict[str, Any]) -> str:
    return f"Bundle/{raw['id']}" if raw.get("id") else "Bundle"


def located(raw: Any, name: str, line: int | None, full_url: str | None = None,
            urls: dict[str, str] | None = None) -> Located:
    """One resource validated against its FHIR R4 model, or an InputError naming it; `urls` are
    the fullUrls of its Bundle (`_local_urls`), for comparing it with another copy."""
    if not isinstance(raw, dict) or not isinstance(raw.get("resourceType"), str):
        raise InputError(name, "not a FHIR resource: no resourceType", line=line)
    kind, rid = raw["resourceType"], raw.get("id")
    where = f"{kind}/{rid}" if rid else kind
    digest = _digest(_compared(raw, urls or {}))  # finds an identical copy
    if kind not in READ_TYPES:  # counted, not read
        return Located(kind, rid, None, name, line, full_url, digest)
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
    return Located(kind, rid, model, name, line, full_url, digest)


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

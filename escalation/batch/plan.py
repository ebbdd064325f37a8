"""The plan of a batch: which files (by content hash), which rule sets, which grid, which chunks.

The plan is written to DIR/manifest.json before any chunk runs, and a resumed run must plan
exactly the same batch: same file contents, rule sets, grid, chunking and tool version. That is
what makes a chunk written by one run interchangeable with the same chunk written by another.

Jobs are numbered rule set first, then scenario, then grid point, so that one chunk replays few
scenarios under many points: each worker loads a scenario once per chunk at most.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from itertools import zip_longest
from pathlib import Path
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from escalation.batch.grid import GridPoint, SweepRange, grid_points
from escalation.load.errors import InputError
from escalation.load.loading import derives_chain
from escalation.load.reading import open_regular, shown_name
from escalation.load.shipped import resolve
from escalation.match.results import NOTICE
from escalation.version import __version__

PURPOSE = ("Batch replay of patient timelines under published pathways, for research review only; "
           "no row is a recommendation or an order for any patient.")
MAX_CHUNK = 200  # replays in one chunk, at most
# what a manifest records, numbered: 2 added the FHIR inputs a batch imports (`fhir_inputs`)
MANIFEST_FORMAT = 3
FORMAT_NEWS = {2: "it records the sha256 of each FHIR Bundle or Bulk Data export the batch imports",
               3: "it records the batch folder's path, by which a batch moved to another folder finds the "
                  "scenario files it imported"}
IMPORTED = "imported"  # the folder inside DIR that holds the scenario files of imported FHIR inputs
ORDER = "rule set, then scenario, then grid point (the last varies fastest)"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileHash(_Model):
    file: str
    sha256: str


class InputFile(_Model):
    """A scenario or rule set file as named, with the files it derives from (`derives_from`)."""

    index: int
    file: str = Field(description="the path as given on the command line")
    path: str = Field(description="the absolute path the workers read")
    sha256: str
    linked: list[FileHash] = Field(default=[], description="derives_from chain, hashed too")

    def contents(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """Its hash and those of the files it derives from: everything a load of it reads."""
        return self.sha256, tuple((f.file, f.sha256) for f in self.linked)

    def where(self) -> str:
        """The file itself, however it was named: its path with every symbolic link and `..`
        resolved, now. Two plans name the same file when this is the same, from any folder."""
        return os.path.realpath(self.path)


class RulesetInput(InputFile):
    id: str
    version: str
    title: str
    content_hash: str = Field(description="the rule set as evaluated, without grid overrides")
    diagnoses: list[str] = Field(default=[], description="the diagnosis codes its rules test (FHIR day 0)")


class FhirInput(_Model):
    """A FHIR input the batch imported into DIR/imported before it was planned, a Bundle of several
    patients or a Bulk Data export folder, as named, with a hash of everything its import read."""

    input: int = Field(description="its number among the inputs named, from 1 (the NN of imported/NN-NAME)")
    kind: str = Field(description="Bundle or export")
    file: str = Field(description="the path as given on the command line")
    path: str = Field(description="its absolute path")
    imported: str = Field(description="the folder in DIR/imported that holds its scenario files")
    sha256: str = Field(description="a Bundle's: of the file; an export's: over the files its import reads "
                        "(its NDJSON files, and any Bundle in it), each by its name within the folder and "
                        "the sha256 of its content, in order")

    where = InputFile.where  # the file or folder itself, however it was named


def day_zero_diagnoses(rulesets: Iterable[RulesetInput]) -> list[str]:
    """The codes a batch's FHIR input chooses day 0 by, Bundles and Bulk Data alike: those of
    every rule set, so that a patient has one day 0, and comparable days, under all of them."""
    return sorted({d for rs in rulesets for d in rs.diagnoses})


class Chunking(_Model):
    jobs: int = Field(ge=0)
    chunk_size: int = Field(ge=1)
    chunks: int = Field(ge=0)
    order: str = ORDER

    def bounds(self, index: int) -> tuple[int, int]:
        """The jobs of chunk `index`: [start, stop)."""
        start = index * self.chunk_size
        return start, min(start + self.chunk_size, self.jobs)

    @classmethod
    def of(cls, jobs: int, chunk_size: int) -> Chunking:
        return cls(jobs=jobs, chunk_size=chunk_size, chunks=math.ceil(jobs / chunk_size) if jobs else 0)

    def described(self) -> str:
        return f"{self.jobs} replays in {self.chunks} chunks of {self.chunk_size}"

    def replays_in(self, chunks: Iterable[int]) -> int:
        """How many replays those chunks hold."""
        return sum(len(range(*self.bounds(i))) for i in chunks)


@functools.cache
def code_sha256() -> str:
    """A hash of this installation's escalation code: its modules, templates and code table, by
    path and content. The version number alone cannot tell two trees apart that both call
    themselves the same version (a development copy, a worker installed from another checkout);
    this can, so a resume or a worker on other code is refused rather than mixed in. The shipped
    rule sets and scenarios are left out: a batch hashes the ones it reads as inputs."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                       and p.relative_to(root).parts[0] != "shipped" and p.suffix not in (".pyc", ".pyo")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


class Manifest(_Model):
    """DIR/manifest.json: what the batch is, written before any result."""

    notice: str = NOTICE
    purpose: str = PURPOSE
    tool: str = "escalation"
    version: str = __version__
    manifest_format: int = Field(default=1, description="what this manifest records (MANIFEST_FORMAT); "
                                 "absent, 1: written before the FHIR inputs were recorded")
    code_sha256: str = Field(default="", description="this escalation's package files, hashed (code_sha256)")
    created_utc: str
    folder: str = Field(default="", description="the batch folder (DIR), its absolute path when the batch was "
                        "planned: the scenario files imported into DIR/imported are found by their place in it, "
                        "wherever DIR is when it is resumed")
    scenarios: list[InputFile]
    rulesets: list[RulesetInput]
    fhir_inputs: list[FhirInput] = Field(default=[], description="the FHIR inputs imported into DIR/imported, "
                                         "whose scenario files are among `scenarios`")
    grid: list[SweepRange]
    grid_points: list[GridPoint]
    chunking: Chunking
    unflagged_actions_recorded: bool = Field(
        True, description="whether this version's replay reports actions no rule flagged (always, now; "
        "kept so that a manifest still says it)")
    layout: dict[str, str] = Field(default_factory=lambda: {
        "results": "results/part-NNNNNN.parquet: one row per decision point (and unflagged action)",
        "replays": "replays/part-NNNNNN.parquet: one row per replay, ok or error",
        "errors": "errors/part-NNNNNN.parquet: one row per failed replay, with file and line",
        "done": "a chunk is done when its results file exists; it is written last, by rename",
    })

    def day_zero_diagnoses(self) -> list[str]:
        return day_zero_diagnoses(self.rulesets)

    def differences(self, other: Manifest) -> list[str]:
        """What differs between two plans of a batch, in words; empty when they are the same."""
        out = _made_by(self, other.version, other.manifest_format, other.code_sha256)
        out += [f"FHIR {d.kind} {d.file} {d.how}" for d in fhir_differences(self.fhir_inputs, other.fhir_inputs)]
        out += _file_differences("scenario", self.scenarios, other.scenarios)
        out += _file_differences("rule set", self.rulesets, other.rulesets)
        if self.grid != other.grid:
            out.append("the grid differs")
        if self.chunking != other.chunking:
            then, now = self.chunking, other.chunking
            # the same replays cut otherwise: --chunk-size given when planning and not now, or another one
            advice = f": give --chunk-size {then.chunk_size}, as the batch was planned" \
                if then.jobs == now.jobs and then.chunk_size != now.chunk_size else ""
            out.append(f"the chunking differs ({then.described()} then, {now.described()} now"
                       + ("" if then.order == now.order else "; the order of replays too") + f"){advice}")
        return out

    def imported_files(self, name: str) -> dict[str, str]:
        """The scenario files the plan lists in DIR/imported/`name`, by their place in that
        folder, with their sha256: what an import into it must give again to resume."""
        if not self.folder:
            return {}
        within = Path(self.folder) / IMPORTED / name
        return {Path(s.path).relative_to(within).as_posix(): s.sha256 for s in self.scenarios
                if Path(s.path).is_relative_to(within)}

    def moved_to(self, out: Path) -> Manifest:
        """The plan with each scenario file it imported into DIR/imported read where DIR is now,
        `out`, at the same place in it: a batch folder moved or copied elsewhere resumes (its
        imported files were listed under the folder it was planned in, which may be gone, or
        another copy). The files keep the names the plan gives them (`file`), as the chunks
        already written record them; the other inputs are outside DIR and stay as they are."""
        then, now = Path(self.folder), out.absolute()
        if not self.folder or then == now:
            return self

        def here(s: InputFile) -> InputFile:
            path = Path(s.path)
            if not path.is_relative_to(then / IMPORTED):
                return s
            return s.model_copy(update={"path": str(now / path.relative_to(then))})

        return self.model_copy(update={"folder": str(now), "scenarios": [here(s) for s in self.scenarios]})

    def made_elsewhere(self) -> list[str]:
        """Whether another version, manifest format or code of escalation than this one planned the
        batch, in words: a resume checks it first, before it imports or plans anything."""
        return _made_by(self, __version__, MANIFEST_FORMAT, code_sha256())


def _made_by(old: Manifest, version: str, manifest_format: int, code: str) -> list[str]:
    if old.version != version:
        return [f"written by escalation {old.version}, this is {version}"]
    if old.manifest_format != manifest_format:
        low, high = sorted((old.manifest_format, manifest_format))
        news = "; ".join(FORMAT_NEWS[n] for n in range(low + 1, high + 1) if n in FORMAT_NEWS)
        return [f"its manifest is of format {old.manifest_format}, this escalation's of format {manifest_format}"
                + (f" ({news})" if news else "") + ": it cannot be resumed by this escalation; start a new batch "
                "in another folder"]
    if old.code_sha256 != code:
        return [f"written by other escalation code than this, though both are {old.version} "
                "(their package files differ)"]
    return []


class Difference(NamedTuple):
    """A FHIR input that differs between two plans: `how`, said of it (`file`, a `kind`)."""

    file: str
    kind: str
    how: str


class Place(NamedTuple):
    """Where two orders of the same kind of input first part (first_difference), and how."""

    index: int  # the place, from 0, in both orders
    how: str  # replaced, removed, added, moved, "repeated then" or "repeated now"
    now: int = -1  # moved: its place now


def first_difference(then: list[str], now: list[str]) -> Place | None:
    """The first place where two orders of inputs (their resolved paths: `where()`) differ, and
    how, or None when they are the same: the input then is `removed` (not among them now), the
    one now is `added` (not among them then), both (`replaced`), or the input then is `moved`
    to a later place now. Either order may be the shorter, and one may name an input twice (a
    manifest written before inputs were made unique): that is `repeated then` or `repeated now`.
    The one helper of the scenario, rule set and FHIR comparisons, every index guarded."""
    i = next((i for i, (a, b) in enumerate(zip_longest(then, now)) if a != b), None)
    if i is None:
        return None
    was = then[i] if i < len(then) else None
    is_ = now[i] if i < len(now) else None
    gone = was is not None and was not in now
    new = is_ is not None and is_ not in then
    if gone or new:
        return Place(i, "replaced" if gone and new else "removed" if gone else "added")
    if was is not None and now.index(was) > i:
        return Place(i, "moved", now.index(was))
    # the two agree before i, so what stands at i in one stands earlier in it too
    return Place(i, "repeated then" if was is not None else "repeated now")


def fhir_differences(old: list[FhirInput], new: list[FhirInput]) -> list[Difference]:
    """The FHIR inputs are the same when they are the same files or folders, in the same order,
    each with the same content (hash); the first that is not, and how, or each that changed."""
    place = first_difference([f.where() for f in old], [f.where() for f in new])
    if place is None:
        return [Difference(b.file, b.kind, f"has changed since the batch was planned (sha256 {a.sha256[:12]}... "
                           f"then, {b.sha256[:12]}... now)") for a, b in zip(old, new) if a.sha256 != b.sha256]
    i = place.index
    if place.how == "replaced":
        return [Difference(new[i].file, new[i].kind, f"is another input than the batch was planned with in its "
                           f"place, {old[i].file} (replaced)")]
    if place.how == "removed":
        return [Difference(old[i].file, old[i].kind, "is not among the inputs now (removed)")]
    if place.how == "added":
        return [Difference(new[i].file, new[i].kind, "was not among the inputs the batch was planned with "
                           "(added)")]
    if place.how == "moved":
        return [Difference(old[i].file, old[i].kind, f"is at place {i + 1} among the FHIR inputs then and "
                           f"{place.now + 1} now (another order)")]
    if place.how == "repeated then":
        return [Difference(old[i].file, old[i].kind, f"was named more than once when the batch was planned "
                           f"(again at place {i + 1}), and fewer times now")]
    return [Difference(new[i].file, new[i].kind, f"is named more than once now (again at place {i + 1}), and fewer "
                       "times when the batch was planned")]


def _file_differences(what: str, old: list[InputFile], new: list[InputFile]) -> list[str]:
    """The files are the same when their resolved paths are, in the same order (the order numbers
    the replays), whatever names they were given; then each must have the same content."""
    place = first_difference([f.where() for f in old], [f.where() for f in new])
    if place is not None:
        return [f"the {what} files differ ({len(old)} then, {len(new)} now): the first that differs is "
                + _first_difference(old, new, place)]
    return [f"{what} {b.file} has changed since the batch was planned{_which_link(a, b)}"
            for a, b in zip(old, new) if a.contents() != b.contents()]


def _first_difference(old: list[InputFile], new: list[InputFile], place: Place) -> str:
    """The first file, in the order of the plan, that is not where it was (first_difference), and
    how: named as it was given then (removed, moved), or now (added)."""
    i = place.index
    if place.how in ("replaced", "removed"):
        return f"{old[i].file}, not among them now (removed)"
    if place.how == "added":
        return f"{new[i].file}, new among them (added)"
    if place.how == "moved":
        return f"{old[i].file}, at place {i + 1} then and {place.now + 1} now (another order)"
    if place.how == "repeated then":
        return f"{old[i].file}, named more than once then (again at place {i + 1}) and fewer times now"
    return f"{new[i].file}, named more than once now (again at place {i + 1}) and fewer times then"


def _which_link(old: InputFile, new: InputFile) -> str:
    """Which file a variant derives from changed, when the variant itself did not."""
    if old.sha256 != new.sha256:
        return ""
    changed = next(((b or a).file for a, b in zip_longest(old.linked, new.linked) if a != b), None)
    return f" ({changed}, which it derives from)" if changed else ""


def sha256_of(path: Path) -> str:
    """The file's content hash: what the manifest records and a resumed run must find again.

    Only a regular file is read: anything else is an InputError from its metadata, before it is
    opened (hashing /dev/zero would never end). An OSError is the caller's: the planner makes it
    an input error, a worker fails its chunk (the file may read fine on another try).
    """
    h = hashlib.sha256()
    with open_regular(path, shown_name(path)) as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def linked_files(path: Path) -> list[FileHash]:
    """The files a variant derives from, hashed, found as the loader finds them (derives_chain):
    every file a worker reads to load `path` besides `path` itself."""
    return [FileHash(file=str(base), sha256=sha256_of(base)) for base in derives_chain(path)]


def input_file(index: int, path: Path) -> InputFile:
    """A named input with its hash, and the hashes of the files it derives from; a file that
    cannot be read, or is not a regular file, is an input error naming it, before any work."""
    real = resolve(path)  # a shipped file's repository path: the shipped file, named as given
    try:
        return InputFile(index=index, file=str(path), path=str(real.absolute()), sha256=sha256_of(real),
                         linked=linked_files(real))
    except FileNotFoundError as exc:
        raise InputError(shown_name(exc.filename or path), "file not found") from None
    except OSError as exc:
        raise InputError(shown_name(exc.filename or path), f"cannot read file: {exc.strerror or exc}") from None


def chunk_size_for(jobs: int, requested: int | None = None) -> int:
    """Big enough that scheduling costs little, small enough that workers share the work evenly
    and an interruption loses little: about 32 chunks, each of 10 to 200 replays."""
    if requested is not None:
        return requested
    return max(1, min(MAX_CHUNK, max(10, math.ceil(jobs / 32))))


def make_manifest(scenarios: list[InputFile], rulesets: list[RulesetInput], grid: list[SweepRange],
                  chunk_size: int | None = None, fhir_inputs: Iterable[FhirInput] = (),
                  folder: Path | None = None) -> Manifest:
    """The whole plan, of a batch to be written into `folder`; nothing here replays or loads a scenario."""
    points = grid_points(grid)
    jobs = len(rulesets) * len(scenarios) * len(points)
    size = chunk_size_for(jobs, chunk_size)
    return Manifest(
        created_utc=datetime.now(UTC).isoformat(timespec="seconds"),
        manifest_format=MANIFEST_FORMAT, scenarios=scenarios, rulesets=rulesets, fhir_inputs=list(fhir_inputs),
        grid=grid, grid_points=points,
        chunking=Chunking.of(jobs, size),
        code_sha256=code_sha256(), folder=str(folder.absolute()) if folder is not None else "",
    )


class Job(_Model):
    """One replay: a scenario under a rule set at a grid point."""

    job: int
    scenario: InputFile
    ruleset: RulesetInput
    point: GridPoint


class ChunkTask(_Model):
    """What a worker gets: the jobs of one chunk, and the folder to write them to (None: return)."""

    index: int
    jobs: list[Job]
    out: str | None = None
    version: str = Field(default=__version__, description="the escalation version the batch was planned with")
    code_sha256: str = Field(default="", description="the package files it was planned with, hashed")
    diagnoses: list[str] = Field(default=[], description="what a FHIR Bundle's day 0 is chosen by")


def job(manifest: Manifest, number: int) -> Job:
    """Job `number` of the plan, computed rather than stored: the numbering is the plan."""
    g = len(manifest.grid_points)
    s = len(manifest.scenarios)
    r_index, rest = divmod(number, s * g)
    s_index, g_index = divmod(rest, g)
    return Job(job=number, scenario=manifest.scenarios[s_index], ruleset=manifest.rulesets[r_index],
               point=manifest.grid_points[g_index])


def chunk_task(manifest: Manifest, index: int, out: Path | None) -> ChunkTask:
    """The jobs of chunk `index`, for a worker; the same chunk of the same plan is the same task."""
    start, stop = manifest.chunking.bounds(index)
    return ChunkTask(index=index, jobs=[job(manifest, n) for n in range(start, stop)],
                     out=str(out.absolute()) if out is not None else None, version=manifest.version,
                     code_sha256=manifest.code_sha256, diagnoses=manifest.day_zero_diagnoses())

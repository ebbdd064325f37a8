"""Parameter sweeps: replay scenarios over a range of one rule parameter, and show how each
decision point moves.

A sweep is a batch (escalation/batch/) with one rule set and a one-parameter grid, whose rows
come back to this process instead of being written as Parquet: the same plan, chunks and worker
task, so there is one mechanism. With one worker the chunks run here; with more, on a Dask
LocalCluster of single-thread worker processes, each with its own engine.

Points are kept by scenario file as well as scenario id: two files may hold scenarios of one id
(imported ids are `fhir-<Patient.id>`, so two sites' exports share them), and they are two
scenarios, never merged into one row. `sweep.csv` has a `scenario_file` column; the table and the
figure name a scenario by its id, followed by its file where another file gives the same id.

The swept parameter is overridden at every value, so it is a modelling assumption there, as
`replay --set` marks one: `sweep.txt` closes with the rule set's assumptions and case-specific
conditions as a replay lists them, and each row of `sweep.csv` says whether its decision point
rests on either (`rests_on_assumption`, `rests_on_case_specific`, as in a batch's rows).

Every output names the rule set as replay does, by id, version and content hash: the table and
`sweep.txt` on a line `Rule set ID vVERSION sha256:HASH16`, and `sweep.csv` in the columns
`ruleset_id`, `ruleset_version` and `ruleset_content_hash` of every row. The hash is that of the rule
set as loaded, before a value of the sweep is set on it, as a batch's rows give it: the same at
every value, and the one `replay` prints for the file without `--set`.
"""

from __future__ import annotations

import csv
import io
import math
import textwrap
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from escalation.analysis.expectations import scenario_labels
from escalation.batch.grid import SweepRange, parse_range  # noqa: F401 - parse_range: the sweep's grammar
from escalation.load.timing import span_label
from escalation.report.console import FALLBACK_WIDTH, plain_text, printable
from escalation.report.text import ruleset_notes_text

if TYPE_CHECKING:
    from escalation.match.results import RulesetOut
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class Point:
    scenario: str
    value: float
    rule_id: str
    occurrence: int
    day: int
    day_latest: int
    file: str = ""  # the scenario file, as named
    rests_on_assumption: bool = False  # as the decision point says: its rule uses a value no source states
    rests_on_case_specific: bool = False  # a condition it met copies the index case
    timing: str = "exact"  # as the decision point's: exact, range, or early/late placement only
    rests_on_disputed_value: bool = False  # it read a recomputed index the source reports otherwise


Key = tuple[str, str, str, int]  # scenario id, file, rule id, occurrence: one series of a sweep


def run_sweep(scenarios: list[Path], rules: Path, rng: SweepRange, workers: int = 1,
              advance: Callable[[], None] | None = None) -> tuple[list[Point], float]:
    """All points of the sweep in a stable order, and the wall time the replays took (a cluster's
    start-up and shut-down excluded). The `sweep` command checks every file and value before it
    calls this; a replay that fails anyway (a file changed meanwhile, a value a rule cannot take
    when called from Python) raises its InputError."""
    from escalation.batch.plan import chunk_task
    from escalation.batch.run import dask_client, plan, run_here, run_on
    from escalation.batch.work import ChunkOutput, replay_chunk
    from escalation.load.errors import InputError

    jobs = len(scenarios) * len(rng.values())
    size = min(50, max(1, math.ceil(jobs / (max(1, workers) * 8))))  # small: the bar moves often
    manifest = plan(scenarios, [rules], [rng], chunk_size=size, check_values=False)  # the CLI tried them
    tasks = [chunk_task(manifest, i, None) for i in range(manifest.chunking.chunks)]
    value = {g.id: g.values[rng.target] for g in manifest.grid_points}
    points: list[Point] = []

    def collect(output: ChunkOutput) -> None:
        """Keep only the points of each chunk as it arrives, not its rows."""
        if output.errors:
            e = output.errors[0]
            raise InputError(e.file, e.message, e.line, e.where)
        points.extend(Point(r.scenario_id, value[r.grid_point], r.rule_id, r.occurrence, r.day, r.day_latest,
                            r.scenario_file, bool(r.rests_on_assumption), bool(r.rests_on_case_specific),
                            r.timing or "exact", bool(r.rests_on_disputed_value))
                      for r in output.results if r.kind == "decision_point")
        if advance is not None:
            for _ in output.replays:
                advance()

    if workers <= 1:
        t0 = time.perf_counter()
        run_here(replay_chunk, tasks, collect)
        elapsed = time.perf_counter() - t0
    else:
        with dask_client(workers, parquet=False) as client:
            t0 = time.perf_counter()
            failures = run_on(client, replay_chunk, tasks, collect)
            elapsed = time.perf_counter() - t0  # the last chunk in, before the cluster shuts down
        if failures:
            raise RuntimeError(f"sweep chunk {failures[0].index} failed: {failures[0].message}")
    points.sort(key=lambda p: (p.scenario, p.file, p.rule_id, p.occurrence, p.value))
    return points, elapsed


def _series(points: list[Point]) -> dict[Key, dict[float, Point]]:
    out: dict[Key, dict[float, Point]] = {}
    for p in points:
        out.setdefault((p.scenario, p.file, p.rule_id, p.occurrence), {})[p.value] = p
    return out


def shared_ids(files: dict[str, str]) -> set[str]:
    """The scenario ids that more than one file gives, from {file: scenario id}."""
    seen: dict[str, str] = {}
    return {sid for file, sid in files.items() if seen.setdefault(sid, file) != file}


def to_csv(points: list[Point], rng: SweepRange, notice: str, *, ruleset: RulesetOut) -> str:
    """Long format, one row per decision point and value, under '#' lines with the notice: every
    line before the header starts with '#', so a reader told to skip comment lines (pandas
    `comment="#"`) or the first line gets the header row first. Scenario and rule ids cannot hold
    '#' or a comma; a file name can, and is quoted then (a row whose file name holds '#' has every
    field quoted: a comment character inside quotes is data), so `comment="#"` cuts nothing.
    `scenario_file` tells apart two files that give one scenario id. The last three columns, `true`
    or `false`, say whether the decision point rests on an assumption (the swept parameter is one),
    a case-specific condition, or an index recomputed where the source reports another figure:
    columns, since more '#' lines would break a reader told to skip one.
    The first three name the rule set (`ruleset`: see `to_table`), as a batch's rows do."""
    buf = io.StringIO()
    buf.writelines(f"# {line}\n" for line in notice.splitlines())
    w = csv.writer(buf, lineterminator="\n")
    quoted = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)
    w.writerow(["ruleset_id", "ruleset_version", "ruleset_content_hash", "scenario", "scenario_file", "rule_id",
                "occurrence", f"{rng.rule_id}.{rng.param}", "day", "day_latest", "timing", "rests_on_assumption",
                "rests_on_case_specific", "rests_on_disputed_value"])
    named = [ruleset.id, ruleset.version, ruleset.content_hash]
    for p in points:
        (quoted if "#" in p.file else w).writerow(
            [*named, p.scenario, p.file, p.rule_id, p.occurrence, f"{p.value:g}", p.day, p.day_latest, p.timing,
             _bool(p.rests_on_assumption), _bool(p.rests_on_case_specific), _bool(p.rests_on_disputed_value)])
    return buf.getvalue()


def _bool(x: bool) -> str:
    return "true" if x else "false"


def to_table(points: list[Point], rng: SweepRange, notice: str, width: int = FALLBACK_WIDTH,
             shared: Collection[str] = (), *, ruleset: RulesetOut) -> str:
    """The day of each decision point at each value; values that do not fit the width go to
    further blocks of the same rows, so nothing is cut at any width. A scenario id that more than
    one file gives (`shared`, or found among the points) is shown with its file. The rule set is
    named first, as replay names it, and its modelling assumptions and case-specific conditions close
    the table, as a replay lists them: `ruleset` gives the id, version and content hash of the rule
    set as loaded, and the assumptions at a value of the sweep, so the swept parameter is among them."""
    values, series = rng.values(), sorted(_series(points).items())
    labels = scenario_labels(((p.scenario, p.file) for p in points), shared)
    names = {key: key[2] + (f" #{key[3]}" if key[3] > 1 else "") for key, _ in series}
    sw = max([len("scenario")] + [len(labels[k[:2]]) for k in names])
    nw = max([len("decision point")] + [len(n) for n in names.values()])
    cw = max([9] + [len(_cell(p)) + 1 for p in points])  # a marked cell ('147..226 e') keeps a gap
    per_block = max(1, (width - sw - 1 - nw) // cw)
    lines = [notice, "",
             printable(f"Rule set {ruleset.id} v{ruleset.version} sha256:{ruleset.content_hash[:16]} (the hash "
                       "before a value of the sweep is set)"),
             f"Sweep of {rng.rule_id}.{rng.param}: day of each decision point ('-': none)"]
    for start in range(0, len(values), per_block):
        block = values[start:start + per_block]
        lines += ["", f"{'scenario':<{sw}} {'decision point':<{nw}}" + "".join(f"{v:>{cw}g}" for v in block)]
        for key, by_value in series:
            cells = "".join(f"{_cell(by_value.get(v)):>{cw}}" for v in block)
            lines.append(f"{labels[key[:2]]:<{sw}} {names[key]:<{nw}}{cells}")
    if any(p.timing.endswith("only") for p in points):
        lines += ["", "e, l: the decision point fires under the early (e) or late (l) timing placement only, so it "
                  "may not happen at all (sweep.csv's timing column)"]
    if any(p.rests_on_disputed_value for p in points):
        lines += ["", "*: a condition it met read an index the rules recompute from the record where the source "
                  "reports another figure (`escalation replay` shows both; sweep.csv's rests_on_disputed_value "
                  "column)"]
    notes = ruleset_notes_text(ruleset)
    if notes:
        lines += ["", notes]
    return plain_text("\n".join(lines), width) + "\n"


def _cell(p: Point | None) -> str:
    """A decision point's days in the table, marked e or l where it fires under one placement alone,
    and * where it rests on a recomputed index the source reports otherwise."""
    if p is None:
        return "-"
    return (span_label(p.day, p.day_latest) + ("*" if p.rests_on_disputed_value else "")
            + (f" {p.timing[0]}" if p.timing.endswith("only") else ""))


def moving(points: list[Point], rng: SweepRange) -> dict[Key, dict[float, Point]]:
    """The decision points whose day or placements change, or which appear or disappear, across the sweep."""
    n = len(rng.values())
    return {k: v for k, v in _series(points).items()
            if len(v) != n or len({(p.day, p.day_latest, p.timing) for p in v.values()}) > 1}


def plot(points: list[Point], rng: SweepRange, path: Path, notice: str, shared: Collection[str] = ()) -> None:
    """Save the sweep figure; pyplot keeps no figure afterwards, so long sweeps do not pile them up."""
    import matplotlib.pyplot as plt

    fig = sweep_figure(points, rng, notice, shared)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sweep_figure(points: list[Point], rng: SweepRange, notice: str, shared: Collection[str] = ()) -> Figure:
    """One panel per scenario (per file: see `to_table`): the day of each decision point that
    moves, against the value.

    Decision points that stay put on every value are counted in the panel, not drawn, so that
    the ones that move stand out.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series, moves = _series(points), moving(points, rng)
    labels = scenario_labels(((p.scenario, p.file) for p in points), shared)
    scenarios: list[tuple[str, str]] = sorted({k[:2] for k in series}) or [("(no decision points)", "")]
    cols = min(3, len(scenarios))
    rows = math.ceil(len(scenarios) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), squeeze=False)
    for ax, scenario in zip(axes.flat, scenarios):
        _panel(ax, scenario, labels.get(scenario, scenario[0]), series, moves, rng)
    for ax in list(axes.flat)[len(scenarios):]:
        ax.set_visible(False)
    title = (f"Sweep of {rng.rule_id}.{rng.param}: where each moving decision point falls "
             f"(a line ends where it no longer fires) - {notice.split(' - ')[0]}")
    _fit_title(fig, title, fontsize=10)
    fig.tight_layout()
    return fig


def _fit_title(fig: Figure, text: str, fontsize: float) -> None:
    """The title on one line if it fits, else wrapped: a one-panel figure is narrower than it."""
    title = fig.suptitle(text, fontsize=fontsize)
    room = 0.95 * fig.bbox.width
    width = title.get_window_extent(fig.canvas.get_renderer()).width
    if width > room:
        title.set_text(textwrap.fill(text, width=int(len(text) * room / width)))


def _panel(ax: Axes, scenario: tuple[str, str], label: str, series: dict[Key, dict[float, Point]],
           moves: dict[Key, dict[float, Point]], rng: SweepRange) -> None:
    from matplotlib.ticker import MaxNLocator

    mine = {k: v for k, v in moves.items() if k[:2] == scenario}
    still = sum(1 for k in series if k[:2] == scenario and k not in moves)
    disputed: list[tuple[float, int]] = []
    for (_, _, rule_id, occ), by_value in sorted(mine.items()):
        xs = sorted(by_value)
        lo = [by_value[x].day for x in xs]
        hi = [by_value[x].day_latest for x in xs]
        line, = ax.plot(xs, lo, marker="o", ms=4, label=rule_id + (f" #{occ}" if occ > 1 else ""))
        if lo != hi:
            ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2)
        disputed += [(x, by_value[x].day) for x in xs if by_value[x].rests_on_disputed_value]
    if disputed:  # as the table's '*'
        ax.plot(*zip(*disputed), linestyle="none", marker="*", ms=11, mfc="none", mec="black",
                label="* read an index recomputed where the source reports another figure")
    if not mine:
        ax.text(0.5, 0.5, "no decision point moves", ha="center", va="center",
                transform=ax.transAxes, fontsize=9, color="grey")
    else:
        ax.legend(fontsize=7, loc="best")
    values = rng.values()
    ax.set_xlim(values[0] - rng.step / 2, values[-1] + rng.step / 2)
    ax.set_title(f"{label}  ({still} unchanged, not drawn)", fontsize=9)
    ax.set_xlabel(f"{rng.rule_id}.{rng.param}", fontsize=8)
    ax.set_ylabel("day of decision point", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


SWEEP_FILES = ("sweep.csv", "sweep.txt", "sweep.png")


def write_sweep(out: Path, points: list[Point], rng: SweepRange, notice: str,
                shared: Collection[str] = (), *, ruleset: RulesetOut) -> list[Path]:
    """sweep.csv, sweep.txt and sweep.png into `out`, all three or none (an interrupted plot
    never leaves a new CSV beside an old figure). `ruleset`: as for `to_table`."""
    from escalation.report.files import publish, staged

    with staged(out) as stage:
        (stage / "sweep.csv").write_text(to_csv(points, rng, notice, ruleset=ruleset), encoding="utf-8")
        (stage / "sweep.txt").write_text(to_table(points, rng, notice, shared=shared, ruleset=ruleset),
                                         encoding="utf-8")
        plot(points, rng, stage / "sweep.png", notice, shared)
        return publish(stage, out, list(SWEEP_FILES))

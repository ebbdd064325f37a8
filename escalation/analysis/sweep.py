"""Parameter sweeps: replay scenarios over a range of one rule parameter, and show how each
decision point moves.

A sweep is a batch (escalation/batch/) with one rule set and a one-parameter grid, whose rows
come back to this process instead of being written as Parquet: the same plan, chunks and worker
task, so there is one mechanism. With one worker the chunks run here; with more, on a Dask
LocalCluster of single-thread worker processes, each with its own engine.
"""

from __future__ import annotations

import csv
import io
import math
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from escalation.batch.grid import SweepRange, parse_range  # noqa: F401 - parse_range: the sweep's grammar
from escalation.load.timing import span_label
from escalation.report.console import FALLBACK_WIDTH, plain_text

if TYPE_CHECKING:
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
        points.extend(Point(r.scenario_id, value[r.grid_point], r.rule_id, r.occurrence, r.day, r.day_latest)
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
    points.sort(key=lambda p: (p.scenario, p.rule_id, p.occurrence, p.value))
    return points, elapsed


def _series(points: list[Point]) -> dict[tuple[str, str, int], dict[float, Point]]:
    out: dict[tuple[str, str, int], dict[float, Point]] = {}
    for p in points:
        out.setdefault((p.scenario, p.rule_id, p.occurrence), {})[p.value] = p
    return out


def to_csv(points: list[Point], rng: SweepRange, notice: str) -> str:
    """Long format, one row per decision point and value, under '#' lines with the notice: every
    line before the header starts with '#', so a reader told to skip comment lines (pandas
    `comment="#"`) or the first line gets the header row first. No field can hold '#' or a comma
    (scenario and rule ids cannot), so `comment="#"` cuts nothing."""
    buf = io.StringIO()
    buf.writelines(f"# {line}\n" for line in notice.splitlines())
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["scenario", "rule_id", "occurrence", f"{rng.rule_id}.{rng.param}", "day", "day_latest"])
    for p in points:
        w.writerow([p.scenario, p.rule_id, p.occurrence, f"{p.value:g}", p.day, p.day_latest])
    return buf.getvalue()


def to_table(points: list[Point], rng: SweepRange, notice: str, width: int = FALLBACK_WIDTH) -> str:
    """The day of each decision point at each value; values that do not fit the width go to
    further blocks of the same rows, so nothing is cut at any width."""
    values, series = rng.values(), sorted(_series(points).items())
    names = {key: key[1] + (f" #{key[2]}" if key[2] > 1 else "") for key, _ in series}
    sw = max([len("scenario")] + [len(k[0]) for k in names])
    nw = max([len("decision point")] + [len(n) for n in names.values()])
    per_block = max(1, (width - sw - 1 - nw) // 9)
    lines = [notice, "", f"Sweep of {rng.rule_id}.{rng.param}: day of each decision point ('-': none)"]
    for start in range(0, len(values), per_block):
        block = values[start:start + per_block]
        lines += ["", f"{'scenario':<{sw}} {'decision point':<{nw}}" + "".join(f"{v:>9g}" for v in block)]
        for key, by_value in series:
            cells = "".join(
                f"{(span_label(by_value[v].day, by_value[v].day_latest) if v in by_value else '-'):>9}"
                for v in block)
            lines.append(f"{key[0]:<{sw}} {names[key]:<{nw}}{cells}")
    return plain_text("\n".join(lines), width) + "\n"


def moving(points: list[Point], rng: SweepRange) -> dict[tuple[str, str, int], dict[float, Point]]:
    """The decision points whose day changes, or which appear or disappear, across the sweep."""
    n = len(rng.values())
    return {k: v for k, v in _series(points).items()
            if len(v) != n or len({(p.day, p.day_latest) for p in v.values()}) > 1}


def plot(points: list[Point], rng: SweepRange, path: Path, notice: str) -> None:
    """Save the sweep figure; pyplot keeps no figure afterwards, so long sweeps do not pile them up."""
    import matplotlib.pyplot as plt

    fig = sweep_figure(points, rng, notice)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sweep_figure(points: list[Point], rng: SweepRange, notice: str) -> Figure:
    """One panel per scenario: the day of each decision point that moves, against the value.

    Decision points that stay put on every value are counted in the panel, not drawn, so that
    the ones that move stand out.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series, moves = _series(points), moving(points, rng)
    scenarios = sorted({k[0] for k in series}) or ["(no decision points)"]
    cols = min(3, len(scenarios))
    rows = math.ceil(len(scenarios) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 3.6 * rows), squeeze=False)
    for ax, scenario in zip(axes.flat, scenarios):
        _panel(ax, scenario, series, moves, rng)
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


def _panel(ax: Axes, scenario: str, series: dict[tuple[str, str, int], dict[float, Point]],
           moves: dict[tuple[str, str, int], dict[float, Point]], rng: SweepRange) -> None:
    from matplotlib.ticker import MaxNLocator

    mine = {k: v for k, v in moves.items() if k[0] == scenario}
    still = sum(1 for k in series if k[0] == scenario and k not in moves)
    for (_, rule_id, occ), by_value in sorted(mine.items()):
        xs = sorted(by_value)
        lo = [by_value[x].day for x in xs]
        hi = [by_value[x].day_latest for x in xs]
        line, = ax.plot(xs, lo, marker="o", ms=4, label=rule_id + (f" #{occ}" if occ > 1 else ""))
        if lo != hi:
            ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2)
    if not mine:
        ax.text(0.5, 0.5, "no decision point moves", ha="center", va="center",
                transform=ax.transAxes, fontsize=9, color="grey")
    else:
        ax.legend(fontsize=7, loc="best")
    values = rng.values()
    ax.set_xlim(values[0] - rng.step / 2, values[-1] + rng.step / 2)
    ax.set_title(f"{scenario}  ({still} unchanged, not drawn)", fontsize=9)
    ax.set_xlabel(f"{rng.rule_id}.{rng.param}", fontsize=8)
    ax.set_ylabel("day of decision point", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


SWEEP_FILES = ("sweep.csv", "sweep.txt", "sweep.png")


def write_sweep(out: Path, points: list[Point], rng: SweepRange, notice: str) -> list[Path]:
    """sweep.csv, sweep.txt and sweep.png into `out`, all three or none (an interrupted plot
    never leaves a new CSV beside an old figure)."""
    from escalation.report.files import publish, staged

    with staged(out) as stage:
        (stage / "sweep.csv").write_text(to_csv(points, rng, notice), encoding="utf-8")
        (stage / "sweep.txt").write_text(to_table(points, rng, notice), encoding="utf-8")
        plot(points, rng, stage / "sweep.png", notice)
        return publish(stage, out, list(SWEEP_FILES))

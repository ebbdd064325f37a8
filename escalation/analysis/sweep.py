"""Parameter sweeps: replay scenarios over a range of one rule parameter, in worker processes.

durable_rules is not safe to call from several threads, so parallel work uses processes, each
with its own engine (started with 'spawn', so that no engine state is inherited). Every task
loads its files once per worker and replays one scenario at one parameter value.
"""

from __future__ import annotations

import csv
import io
import math
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from pydantic import BaseModel, ConfigDict

from escalation.load.timing import span_label
from escalation.report.console import FALLBACK_WIDTH, plain_text

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


class SweepRange(BaseModel):
    model_config = ConfigDict(frozen=True)

    rule_id: str
    param: str
    start: float
    stop: float
    step: float

    def values(self) -> list[float]:
        """START to STOP inclusive, in STEP increments (rounded to hide float drift)."""
        n = int(math.floor((self.stop - self.start) / self.step + 1e-9)) + 1
        return [round(self.start + i * self.step, 10) for i in range(n)]


def parse_range(text: str) -> SweepRange:
    """`RULE.PARAM=START:STOP:STEP`; ValueError with a readable reason otherwise."""
    target, sep, spec = text.partition("=")
    rule_id, dot, param = target.partition(".")
    parts = spec.split(":")
    if not sep or not dot or len(parts) != 3:
        raise ValueError(f"{text!r} is not of the form RULE.PARAM=START:STOP:STEP")
    try:
        start, stop, step = (float(p) for p in parts)
    except ValueError:
        raise ValueError(f"{text!r}: START, STOP and STEP must be numbers") from None
    if not all(math.isfinite(x) for x in (start, stop, step)) or step <= 0 or stop < start:
        raise ValueError(f"{text!r}: need finite numbers, STEP > 0 and STOP >= START")
    if (stop - start) / step > 10000:
        raise ValueError(f"{text!r}: more than 10,000 values")
    return SweepRange(rule_id=rule_id, param=param, start=start, stop=stop, step=step)


@dataclass(frozen=True)
class Point:
    scenario: str
    value: float
    rule_id: str
    occurrence: int
    day: int
    day_latest: int


_CACHE: dict[str, object] = {}


def _replay_one(task: tuple[str, str, str, str, float]) -> list[Point]:
    """One scenario at one parameter value; runs in a worker process with its own engine."""
    from escalation.evaluate.replay import replay
    from escalation.load.loading import load_ruleset, load_scenario

    scenario_path, rules_path, rule_id, param, value = task
    key_s, key_r = f"s:{scenario_path}", f"r:{rules_path}"
    if key_s not in _CACHE:
        _CACHE[key_s] = load_scenario(scenario_path)
    if key_r not in _CACHE:
        _CACHE[key_r] = load_ruleset(rules_path)
    scenario, ruleset = _CACHE[key_s], _CACHE[key_r]
    result = replay(scenario, ruleset.with_overrides({(rule_id, param): value}))  # type: ignore[union-attr]
    return [Point(scenario.scenario.id, value, pf.rule_id, pf.occurrence, *pf.days)  # type: ignore[union-attr]
            for pf in result.flags]


def run_sweep(scenarios: list[Path], rules: Path, rng: SweepRange, workers: int = 1,
              advance: Callable[[], None] | None = None) -> tuple[list[Point], float]:
    """All points of the sweep in a stable order, and the wall time the replays took."""
    tasks = [(str(s), str(rules), rng.rule_id, rng.param, v) for s in scenarios for v in rng.values()]
    t0 = time.perf_counter()
    results: list[list[Point]] = []
    if workers <= 1:
        for t in tasks:
            results.append(_replay_one(t))
            if advance:
                advance()
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            for r in pool.map(_replay_one, tasks, chunksize=max(1, len(tasks) // (workers * 8))):
                results.append(r)
                if advance:
                    advance()
    elapsed = time.perf_counter() - t0
    points = [p for r in results for p in r]
    points.sort(key=lambda p: (p.scenario, p.rule_id, p.occurrence, p.value))
    return points, elapsed


def _series(points: list[Point]) -> dict[tuple[str, str, int], dict[float, Point]]:
    out: dict[tuple[str, str, int], dict[float, Point]] = {}
    for p in points:
        out.setdefault((p.scenario, p.rule_id, p.occurrence), {})[p.value] = p
    return out


def to_csv(points: list[Point], rng: SweepRange, notice: str) -> str:
    """Long format, one row per decision point and value, under a '#' line with the notice."""
    buf = io.StringIO()
    buf.write(f"# {notice}\n")
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

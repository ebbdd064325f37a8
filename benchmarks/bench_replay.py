"""Throughput benchmark of the replay: a script to run by hand, not a test (pytest ignores it).

    python benchmarks/bench_replay.py [--repeats N] [--batches B] [--rounds R] [--cold-runs K]
                                      [--before REV] [--long-runs L] [--flat-replays M] [--no-sweep] [--json]

It prints every figure of the issue "Cohort scale" (part 2) with its target, medians throughout;
the machine may be shared, so each comparison is measured in the same run, alternating the two
sides where it can.

- replay ms (index case): `replay(...)` of scenarios/index_case.yaml under the shipped report
  pathway (engine passes only, no result building), this tree, and the tree at REV (default: the
  commit this work started from) unpacked with `git archive` into a temporary folder, each timed
  by the same child script (B batches of N/B replays after a warm-up), R rounds, alternating;
  the ratio before : after. Target: 4x or more. The same scenario and rule set objects are
  replayed each time, so what is kept per object (derive/memo.py: placements, features, the
  compiled rule set; evaluate/facts.py: each feature's values and engine texts, by binding of
  fact keys to engine fields) is made once. Beside it, for comparison: N replays of the scenario, each under a rule set
  never replayed before (a grid point: the same shape, another threshold), as in a cohort, where
  a scenario is replayed at every grid point; and N replays each of a scenario and rule set never
  replayed before (deep copies made before the clock starts), which make all of that afresh.
- engine floor: the JSON text of every fact one replay hands to durable_rules, recorded, then
  passed straight to the C functions (`assert_fact`, and for a fact that fires its actions'
  `start_action_for_state` / `update_state` / `complete_and_start_action`) in sessions of the same
  registered ruleset, nothing else. Once for the facts the replay asserts (days whose fact reads as
  the last quiet one are not asserted), once for the facts of the day-by-day replay
  (`run_pass(every_day=True)`, one fact per day and pass plus one for each day a rule fired) with
  that replay's own time beside it. Target: replay within 3x of the floor of the same facts.
- long dense timelines: `synth.dense_data` (an observation every day, another event about one day
  in ten) of 1,000 and 10,000 days, each in a fresh child process: `replay` then `build_result`
  of the freshly loaded scenario; ms per day (one fact per day in the day-by-day reading) and per
  fact asserted, median of L runs; peak RSS of the child while it replays and builds (VmHWM,
  reset after loading; the loaded scenario included). The garbage collector is set as the command
  line sets it (cli.app.YOUNG_GENERATION): with Python's default, the three full collections a
  10,000-day replay triggers walk the whole loaded record each time (about 0.4 s of 2.7 s), a
  cost that grows with the record; those figures are printed too, for comparison (the library
  called from a notebook). Targets: 10,000 days at most 1.3x per fact what 1,000 days cost;
  under 150 MB.
- cold CLI: `escalation replay scenarios/index_case.yaml` (the installed script) against
  `python -c "import pydantic, yaml, durable.lang"`, K runs each, alternating. Target: 3x at most.
  Beside them, for comparison, the libraries the command is built on with none of its own work
  (LIBRARIES: pydantic's models, typer, Rich's console and table, one pydantic model built, the
  process ended as the command ends it).
  Measured on this tree as the README installs it, in a fresh virtual environment: pip installs
  the tree (no dependencies, byte-compiled as for every install) into the new environment's
  site-packages, and a path file there names the running environment's site-packages for the
  dependencies. Both commands run with that environment's Python, from another folder. (The
  running environment itself is no fair place to time: a development install's import hook loads
  at every start, some 8 ms added to both sides, and on a machine that writes no bytecode, as
  this one does with PYTHONDONTWRITEBYTECODE, the source tree is compiled afresh on every run.)
- flat memory: M replays (default 100,000) in one child process, cycling over the shipped
  scenarios, a what-if override of one parameter every 100th replay and the result built every
  10th; RSS after the first 1,000 and at the end. Target: within 10%.
- identical JSON: every timed replay's `to_json(build_result(...))` equals the warm-up's, else exit 1.
- sweep replays/s with 1 and 2 worker processes (as before), unless --no-sweep.
Figures vary by machine and from run to run on a shared one; compare runs on one machine.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import re
import resource
import site
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

from escalation.evaluate import engine
from escalation.evaluate.engine import compile_ruleset
from escalation.evaluate.replay import pair_passes, replay, run_pass
from escalation.load.loading import load_ruleset, load_scenario
from escalation.match.matching import build_result
from escalation.report.text import to_json

ROOT = Path(__file__).resolve().parents[1]
SCENARIO, RULES = "scenarios/index_case.yaml", "rules/report-pathway.yaml"
BASE = "fecfd73"  # the commit the replay speed work (issue "Cohort scale", part 2) started from

# --- children: each prints one JSON object; the same script serves this tree and the one at REV ---

REPLAY_CHILD = """
import json, sys, time
from escalation.evaluate.replay import replay
from escalation.load.loading import load_ruleset, load_scenario
scenario, rules, n, batches = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
mode = sys.argv[5] if len(sys.argv) > 5 else "same"
sc, rs = load_scenario(scenario), load_ruleset(rules)
replay(sc, rs)
if mode == "same":  # the loaded objects, every time
    pairs = [(sc, rs)] * n
elif mode == "grid":  # the scenario under a grid point's rule set never replayed before
    pairs = [(sc, rs.with_overrides({("step3-ecmo-oi", "oi_above"): 30.0 + i / 1000})) for i in range(n)]
else:  # "fresh": a scenario and rule set never replayed before
    pairs = [(sc.model_copy(deep=True), rs.model_copy(deep=True)) for _ in range(n)]
out, k = [], 0
for size in (n // batches + (i < n % batches) for i in range(batches)):
    t0, c0 = time.perf_counter(), time.process_time()
    for s, r in pairs[k:k + size]:
        replay(s, r)
    k += size
    out.append(((time.perf_counter() - t0) / size, (time.process_time() - c0) / size))
print(json.dumps(out))
"""

LONG_CHILD = """
import gc, json, sys, time
from escalation.analysis.synth import dense_data
from escalation.evaluate import engine
from escalation.evaluate.replay import replay
from escalation.load.loading import load_ruleset
from escalation.load.scenario import Scenario
from escalation.match.matching import build_result

def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024
days, young = int(sys.argv[1]), int(sys.argv[3])
sc = Scenario.model_validate(dense_data(days, 1))
rs = load_ruleset(sys.argv[2])
gc.collect()
if young:  # the youngest generation's threshold as the command line sets it (cli.app.main)
    gc.set_threshold(young, *gc.get_threshold()[1:])
loaded = rss("VmRSS:")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets the peak (VmHWM) to the present RSS
facts = [0]
real = engine.Session.assert_members
def counting(self, *args):
    facts[0] += 1
    return real(self, *args)
engine.Session.assert_members = counting
c0, t0 = time.process_time(), time.perf_counter()
r = replay(sc, rs)
t1 = time.perf_counter()
result = build_result(r, "dense.yaml")
t2, c2 = time.perf_counter(), time.process_time()
print(json.dumps({"days": days, "facts": facts[0], "replay_s": t1 - t0, "build_s": t2 - t1, "cpu_s": c2 - c0,
                  "decision_points": len(result.decision_points), "rss_loaded_mb": loaded,
                  "peak_mb": rss("VmHWM:")}))
"""

FLAT_CHILD = """
import json, sys, time
from pathlib import Path
from escalation.evaluate.replay import replay
from escalation.load.loading import load_ruleset, load_scenario
from escalation.match.matching import build_result

def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
root, n = Path(sys.argv[1]), int(sys.argv[2])
files = [root / "scenarios" / "index_case.yaml", *sorted((root / "scenarios" / "variants").glob("*.yaml"))]
scenarios = [load_scenario(f) for f in files]
rs = load_ruleset(root / "rules" / "report-pathway.yaml")
marks, t0 = {}, time.perf_counter()
for i in range(n):
    ruleset = rs.with_overrides({("step3-ecmo-oi", "oi_above"): 30.0 + i % 50}) if i % 100 == 99 else rs
    r = replay(scenarios[i % len(scenarios)], ruleset)
    if i % 10 == 0:
        build_result(r, "x.yaml")
    if i + 1 in (1000, n) or (i + 1) % max(1, n // 10) == 0:
        marks[i + 1] = rss()
print(json.dumps({"replays": n, "seconds": time.perf_counter() - t0, "rss_mb": marks}))
"""


def child(code: str, *args: object, tree: Path = ROOT, timeout: float | None = None) -> dict | list:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=tree, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if done.returncode != 0:
        sys.exit(f"a benchmark child failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def tree_at(rev: str, into: Path) -> Path:
    """The repository's files at `rev`, unpacked (no git worktree is created)."""
    data = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


def med(xs: list[float]) -> float:
    return statistics.median(xs)


# --- the index case: before and after, and the engine's floor -----------------------------------


def before_after(before: Path | None, n: int, batches: int, rounds: int) -> dict:
    """Wall and CPU ms per replay (medians of the batches of every round), this tree and REV's."""
    scenario, rules = ROOT / SCENARIO, ROOT / RULES
    now: list[list[float]] = []
    then: list[list[float]] = []
    for _ in range(rounds):
        if before is not None:
            then += child(REPLAY_CHILD, scenario, rules, n, batches, tree=before)
        now += child(REPLAY_CHILD, scenario, rules, n, batches)
    wall, cpu = [w for w, _ in now], [c for _, c in now]
    fresh = [w for _ in range(rounds) for w, _ in child(REPLAY_CHILD, scenario, rules, n, batches, "fresh")]
    grid = [w for _ in range(rounds) for w, _ in child(REPLAY_CHILD, scenario, rules, n, batches, "grid")]
    out = {"replay_ms": 1000 * med(wall), "replay_ms_spread": [1000 * min(wall), 1000 * max(wall)],
           "replay_cpu_ms": 1000 * med(cpu), "fresh_replay_ms": 1000 * med(fresh), "grid_replay_ms": 1000 * med(grid)}
    if then:
        bwall, bcpu = [w for w, _ in then], [c for _, c in then]
        out.update(before_ms=1000 * med(bwall), before_ms_spread=[1000 * min(bwall), 1000 * max(bwall)],
                   before_cpu_ms=1000 * med(bcpu), speedup=med(bwall) / med(wall), speedup_cpu=med(bcpu) / med(cpu))
    return out


class _Recorder:
    """durable_rules' C module, with every fact text asserted recorded as (sid, text)."""

    def __init__(self, real) -> None:
        self.real, self.facts = real, []

    def __getattr__(self, name):
        return getattr(self.real, name)

    def assert_fact(self, handle, text):
        self.facts.append((re.search(r'"sid":"([^"]+)"', text).group(1), text))
        return self.real.assert_fact(handle, text)


def recorded(run) -> list[tuple[str, str]]:
    real = engine._C
    engine._C = rec = _Recorder(real)
    try:
        run()
    finally:
        engine._C = real
    return rec.facts


def floor_s(name: str, facts: list[tuple[str, str]], repeats: int) -> float:
    """Seconds to pass the recorded texts straight to the C engine, its actions completed, each
    session deleted after its facts (median of `repeats`)."""
    C, ruleset = engine._C, engine._host().get_ruleset(name)
    handle = ruleset._handle

    def delete(sid: str) -> None:
        try:
            C.delete_state(handle, sid)
        except C.error as exc:  # 309: no fact of that session reached a rule, so it has no state
            if "309" not in str(exc):
                raise

    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sid = None
        for fact_sid, text in facts:
            if fact_sid != sid and sid is not None:
                delete(sid)
            sid = fact_sid
            code, state_handle = C.assert_fact(handle, text)
            if code == 0:
                started = C.start_action_for_state(handle, state_handle)
                if started:
                    state, message = started[0], started[1]
                    while message:
                        C.update_state(handle, state)
                        message = C.complete_and_start_action(handle, state_handle)
        delete(sid)
        times.append(time.perf_counter() - t0)
    return med(times)


def every_day(sc, rs):
    compiled = compile_ruleset(rs)
    passes = {w: run_pass(sc, compiled, w, every_day=True) for w in ("early", "late")}
    return pair_passes(passes["early"], passes["late"], compiled)


def floors(sc, rs, repeats: int) -> dict:
    name = compile_ruleset(rs).name
    fast = recorded(lambda: replay(sc, rs))
    daily = recorded(lambda: every_day(sc, rs))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        every_day(sc, rs)
        times.append(time.perf_counter() - t0)
    return {"facts_asserted": len(fast), "floor_ms": 1000 * floor_s(name, fast, repeats),
            "day_by_day_facts": len(daily), "day_by_day_floor_ms": 1000 * floor_s(name, daily, repeats),
            "day_by_day_replay_ms": 1000 * med(times)}


def identical_json(sc, rs, n: int) -> int:
    reference = to_json(build_result(replay(sc, rs), SCENARIO))
    return sum(to_json(build_result(replay(sc, rs), SCENARIO)) != reference for _ in range(n))


# --- long timelines, cold start, flat memory, sweep --------------------------------------------


def long_timelines(runs: int, young: int) -> dict:
    """The dense records replayed with the garbage collector set as `young` says: the command
    line's threshold for the youngest generation, or 0 for Python's default (a notebook's)."""
    out: dict = {}
    for days in (1000, 10000):
        rows = [child(LONG_CHILD, days, ROOT / RULES, young, timeout=1800) for _ in range(runs)]
        total = [r["replay_s"] + r["build_s"] for r in rows]
        cpu = med([r["cpu_s"] for r in rows])
        out[days] = {"facts": rows[0]["facts"], "decision_points": rows[0]["decision_points"],
                     "ms_per_day": 1000 * med(total) / days,
                     "ms_per_fact": 1000 * med(total) / rows[0]["facts"],
                     "cpu_ms_per_day": 1000 * cpu / days, "cpu_ms_per_fact": 1000 * cpu / rows[0]["facts"],
                     "replay_s": med([r["replay_s"] for r in rows]), "build_s": med([r["build_s"] for r in rows]),
                     "rss_loaded_mb": med([r["rss_loaded_mb"] for r in rows]),
                     "peak_mb": max(r["peak_mb"] for r in rows)}
    for unit in ("day", "fact"):
        out[f"per_{unit}_ratio"] = out[10000][f"ms_per_{unit}"] / out[1000][f"ms_per_{unit}"]
        out[f"cpu_per_{unit}_ratio"] = out[10000][f"cpu_ms_per_{unit}"] / out[1000][f"cpu_ms_per_{unit}"]
    return out


def timed(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds of a command, and the CPU seconds (user + system) of its process, run as
    installed: no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    took, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed (exit {done.returncode}): {done.stderr.strip()}")
    return took, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def cli(python: Path) -> list[str]:
    """The command as the README and the issue name it: the installed `escalation` script."""
    return [str(python.parent / "escalation"), "replay", str(ROOT / SCENARIO)]


def imports(python: Path) -> list[str]:
    return [str(python), "-c", "import pydantic, yaml, durable.lang"]


def libraries(python: Path) -> list[str]:
    """What the libraries the command is built on cost before any of its own work.

    The baseline's imports, pydantic's models, typer, the Rich console and table, and one model
    built (pydantic's first build loads its plugin machinery, importlib.metadata included); ended
    as the command line ends (cli.app.main), with what is left frozen out of the collector's last walk.
    """
    return [str(python), "-c", "import gc, pydantic, yaml, durable.lang; from pydantic import BaseModel; "
            "import typer, rich.console, rich.table\nclass M(BaseModel):\n    x: int\nM(x=1)\ngc.freeze()"]


def installed(into: Path) -> Path:
    """This tree installed as the README does, in a fresh environment; its Python returned.

    The environment has no pip and no copy of the dependencies: a path file names the running
    environment's site-packages, appended to the path as plain folders (their own path files,
    a development install's hook among them, are not run). The running environment's pip
    installs the tree into it (`--python`), its `escalation` script included.
    """
    venv = into / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site_dir = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                   capture_output=True, text=True, check=True).stdout.strip())
    (site_dir / "_dependencies.pth").write_text("".join(f"{p}\n" for p in site.getsitepackages()))
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                           "--no-build-isolation", str(ROOT)], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"pip install --python {python} failed: {done.stderr.strip()[-500:]}")
    return python


def _ratios(cli: list[tuple[float, float]], base: list[tuple[float, float]], tag: str) -> dict:
    out = {f"cold_cli{tag}_s": [w for w, _ in cli], "cold_imports_s": [w for w, _ in base]}
    for kind, i in (("", 0), ("_cpu", 1)):
        c, b = med([x[i] for x in cli]), med([x[i] for x in base])
        out.update({f"cold_cli{tag}{kind}_s_median": c, f"cold_imports{kind}_s_median": b,
                    f"cold{tag}{kind}_ratio": c / b})
    return out


def cold_start(k: int) -> dict:
    """The installed tool against the imports, alternating; the libraries alone beside them."""
    with tempfile.TemporaryDirectory() as tmp:
        python, elsewhere = installed(Path(tmp)), Path(tmp)
        runs, base, libs = [], [], []
        for _ in range(k):
            base.append(timed(imports(python), elsewhere))
            libs.append(timed(libraries(python), elsewhere))
            runs.append(timed(cli(python), elsewhere))
    out = _ratios(runs, base, "")
    out["cold_libraries_s"] = [w for w, _ in libs]
    out["cold_libraries_s_median"] = med(out["cold_libraries_s"])
    out["cold_libraries_ratio"] = out["cold_libraries_s_median"] / out["cold_imports_s_median"]
    return out


def flat_memory(m: int) -> dict:
    got = child(FLAT_CHILD, ROOT, m, timeout=36000)
    marks = {int(k): v for k, v in got["rss_mb"].items()}
    first = marks.get(1000, marks[min(marks)])
    return {"flat_replays": m, "flat_seconds": got["seconds"], "rss_after_1000_mb": first,
            "rss_end_mb": marks[m], "rss_marks_mb": marks, "rss_growth": marks[m] / first - 1}


def sweep_figures() -> dict:
    """The sweep of the issue's part 1: one parameter over the index case and its variants."""
    from escalation.analysis.sweep import parse_range, run_sweep

    scenarios = [ROOT / SCENARIO, *sorted((ROOT / "scenarios" / "variants").glob("*.yaml"))]
    rng = parse_range("step3-ecmo-oi.oi_above=30:50:2")
    one_points, one_s = run_sweep(scenarios, ROOT / RULES, rng, workers=1)
    two_points, two_s = run_sweep(scenarios, ROOT / RULES, rng, workers=2)
    if one_points != two_points:
        sys.exit("the sweep gave different points with 1 and 2 workers")
    n = len(scenarios) * len(rng.values())
    return {"sweep_replays": n, "sweep_replays_per_s_1_worker": n / one_s,
            "sweep_replays_per_s_2_workers": n / two_s, "sweep_speedup_2_workers": one_s / two_s}


# --- report ------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "holds" if ok else "DOES NOT HOLD"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=100, help="timed replays per child run (default 100)")
    ap.add_argument("--batches", type=int, default=5, help="batches per child run (default 5)")
    ap.add_argument("--rounds", type=int, default=3, help="before/after child runs, alternating (default 3)")
    ap.add_argument("--before", default=BASE, help=f"the tree to compare with (default {BASE}); 'none' to skip")
    ap.add_argument("--cold-runs", type=int, default=7, help="cold CLI and import runs (default 7 each)")
    ap.add_argument("--long-runs", type=int, default=3, help="child runs per long timeline (default 3)")
    ap.add_argument("--flat-replays", type=int, default=100_000, help="replays in the flat-memory run (default 100,000)")
    ap.add_argument("--no-sweep", action="store_true", help="leave out the sweep figures")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = ap.parse_args()
    if min(args.repeats, args.batches, args.rounds, args.cold_runs, args.long_runs, args.flat_replays) < 1:
        ap.error("every count must be at least 1")
    os.chdir(ROOT)
    sc, rs = load_scenario(SCENARIO), load_ruleset(RULES)

    with tempfile.TemporaryDirectory() as tmp:
        before = None if args.before == "none" else tree_at(args.before, Path(tmp))
        fig: dict = before_after(before, args.repeats, min(args.batches, args.repeats), args.rounds)
    fig.update(floors(sc, rs, 21))
    mismatches = identical_json(sc, rs, 20)
    fig.update(identical_json=mismatches == 0, json_mismatches=mismatches)
    from escalation.cli.app import YOUNG_GENERATION

    long = long_timelines(args.long_runs, YOUNG_GENERATION)  # as `escalation replay` runs
    plain = long_timelines(args.long_runs, 0)  # for comparison: Python's default collector
    fig.update(long=long, long_default_gc=plain)
    fig.update(cold_start(args.cold_runs))
    fig.update(flat_memory(args.flat_replays))
    if not args.no_sweep:
        fig.update(sweep_figures())
    fig.update(platform=platform.platform(), python=platform.python_version(), cpu_count=os.cpu_count(),
               durable_rules=version("durable-rules"), before_rev=args.before)
    if args.json:
        print(json.dumps(fig, indent=2, default=str))
        return 0 if mismatches == 0 else 1

    rows: list[tuple[str, str]] = []
    if "before_ms" in fig:
        lo, hi = fig["before_ms_spread"]
        rows.append((f"index-case replay ms, before ({args.before})",
                     f"{fig['before_ms']:.2f}  ({lo:.2f}..{hi:.2f}); CPU {fig['before_cpu_ms']:.2f}"))
    lo, hi = fig["replay_ms_spread"]
    rows.append(("index-case replay ms, now", f"{fig['replay_ms']:.2f}  ({lo:.2f}..{hi:.2f}); CPU {fig['replay_cpu_ms']:.2f}"))
    if "speedup" in fig:
        rows.append(("TARGET >= 4x faster: before : now", f"{fig['speedup']:.1f}x (CPU {fig['speedup_cpu']:.1f}x)  "
                                                          f"{verdict(fig['speedup'] >= 4)}"))
    rows += [
        ("facts asserted per replay", f"{fig['facts_asserted']:,} (day by day: {fig['day_by_day_facts']:,})"),
        ("engine floor ms, those facts", f"{fig['floor_ms']:.2f}"),
        ("TARGET <= 3x floor: replay : floor", f"{fig['replay_ms'] / fig['floor_ms']:.1f}x  "
                                               f"{verdict(fig['replay_ms'] <= 3 * fig['floor_ms'])}"),
        ("  replay of a new grid point's rule set, ms", f"{fig['grid_replay_ms']:.2f}: {fig['grid_replay_ms'] / fig['floor_ms']:.1f}x "
                                                       "the floor (the scenario replayed before; compiling included)"),
        ("  replay of objects never replayed, ms", f"{fig['fresh_replay_ms']:.2f}: {fig['fresh_replay_ms'] / fig['floor_ms']:.1f}x "
                                                  "the floor (placement, features and compiling included)"),
        ("day-by-day replay ms (every_day=True)", f"{fig['day_by_day_replay_ms']:.2f}"),
        ("engine floor ms, day-by-day facts", f"{fig['day_by_day_floor_ms']:.2f}"),
        ("  day-by-day replay : its floor", f"{fig['day_by_day_replay_ms'] / fig['day_by_day_floor_ms']:.1f}x  "
                                           f"{verdict(fig['day_by_day_replay_ms'] <= 3 * fig['day_by_day_floor_ms'])}"),
        ("  replay : floor of day-by-day facts", f"{fig['replay_ms'] / fig['day_by_day_floor_ms']:.2f}x"),
    ]
    for days in (1000, 10000):
        d = long[days]
        rows.append((f"{days:,}-day dense: replay + build s", f"{d['replay_s']:.2f} + {d['build_s']:.2f}; "
                     f"{d['ms_per_day']:.3f} ms/day, {d['facts']:,} facts, {d['ms_per_fact']:.3f} ms/fact"))
        rows.append((f"{days:,}-day dense: CPU ms/day, ms/fact", f"{d['cpu_ms_per_day']:.3f}, {d['cpu_ms_per_fact']:.3f}"))
        rows.append((f"{days:,}-day dense: RSS loaded, peak MB", f"{d['rss_loaded_mb']:.0f}, {d['peak_mb']:.0f}"))
    rows += [
        ("TARGET <= 1.3x per fact: 10,000 : 1,000", f"{long['per_fact_ratio']:.2f}x per fact, "
                                                    f"{long['per_day_ratio']:.2f}x per day  "
                                                    f"{verdict(long['per_fact_ratio'] <= 1.3)}"),
        ("  the same in CPU time", f"{long['cpu_per_fact_ratio']:.2f}x per fact, {long['cpu_per_day_ratio']:.2f}x "
                                   f"per day  {verdict(long['cpu_per_fact_ratio'] <= 1.3)}"),
        ("  (comparison) Python's default collector", f"{plain['per_fact_ratio']:.2f}x per fact; 10,000 days "
         f"{plain[10000]['replay_s']:.2f} + {plain[10000]['build_s']:.2f} s, peak {plain[10000]['peak_mb']:.0f} MB "
         "(the library called from a notebook)"),
        ("TARGET < 150 MB: 10,000-day peak", f"{long[10000]['peak_mb']:.0f} MB  {verdict(long[10000]['peak_mb'] < 150)}"),
        ("cold CLI replay s, installed (each)", "  ".join(f"{t:.3f}" for t in fig["cold_cli_s"])),
        ("cold import pydantic, yaml, durable.lang s", "  ".join(f"{t:.3f}" for t in fig["cold_imports_s"])),
        ("TARGET <= 3x: cold CLI : imports", f"{fig['cold_cli_s_median']:.3f} : {fig['cold_imports_s_median']:.3f}"
                                             f" = {fig['cold_ratio']:.2f}x  {verdict(fig['cold_ratio'] <= 3)}"),
        ("  the same in CPU time", f"{fig['cold_cli_cpu_s_median']:.3f} : {fig['cold_imports_cpu_s_median']:.3f}"
                                   f" = {fig['cold_cpu_ratio']:.2f}x  {verdict(fig['cold_cpu_ratio'] <= 3)}"),
        ("  (comparison) the libraries alone : imports", f"{fig['cold_libraries_s_median']:.3f} : "
         f"{fig['cold_imports_s_median']:.3f} = {fig['cold_libraries_ratio']:.2f}x (pydantic models, typer, "
         "Rich's console and table, one model built)"),
        (f"{fig['flat_replays']:,} replays: RSS after 1,000, end MB",
         f"{fig['rss_after_1000_mb']:.1f}, {fig['rss_end_mb']:.1f} ({fig['flat_seconds']:.0f} s)"),
        ("TARGET within 10%: RSS growth", f"{fig['rss_growth']:+.1%}  {verdict(abs(fig['rss_growth']) <= 0.10)}"),
    ]
    if not args.no_sweep:
        rows += [("sweep replays/s, 1 and 2 workers", f"{fig['sweep_replays_per_s_1_worker']:,.1f}, "
                  f"{fig['sweep_replays_per_s_2_workers']:,.1f} ({fig['sweep_speedup_2_workers']:.2f}x)")]
    rows += [("machine", f"{fig['platform']}, {fig['cpu_count']} cpu"),
             ("python / durable-rules", f"{fig['python']} / {fig['durable_rules']}")]
    print(f"escalation replay benchmark: {SCENARIO} under {RULES}; medians; not a test")
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    print("identical JSON in every replay: " + ("yes" if mismatches == 0 else f"NO ({mismatches} differ)"))
    return 0 if mismatches == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

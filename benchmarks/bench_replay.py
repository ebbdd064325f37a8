"""Throughput benchmark of the replay: a script to run by hand, not a test (pytest ignores it).

    python benchmarks/bench_replay.py [--repeats N] [--batches B] [--cold-runs K] [--json]

It loads scenarios/index_case.yaml and rules/report-pathway.yaml once, replays the index case
once to warm up (host creation, rule-set registration), then N times, each `replay(...)` opening
and deleting its own engine sessions. Facts are counted by wrapping `Session.evaluate` here.

- replays/s: `replay(...)` alone (no result building), median over B batches, (slowest..fastest);
- facts/replay, facts/s: facts asserted to the engine (one per day per timing pass, plus one
  more on each day a rule fired), and the same batches measured in facts;
- report ms: `to_json(build_result(...))` per replay, kept out of replays/s;
- raw assert_fact/s: `escalation.evaluate.engine.raw_assert_rate()`, bare durable_rules `assert_fact` on
  a one-rule set (median of 3); the ratio says what share of that rate the replay reaches;
- cold CLI s: wall time of `escalation replay scenarios/index_case.yaml` as a fresh subprocess
  (interpreter, imports, loading, replay, table), each run and the median;
- identical JSON: every replay's `to_json(build_result(...))` equals the warm-up's, else exit 1;
- sweep replays/s, 1 and 2 workers: `escalation.analysis.sweep.run_sweep` of step3-ecmo-oi.oi_above over
  30..50 on the index case and its variants (spawned worker processes, each with its own engine),
  the 2:1 ratio, and sweep facts/s against the raw assert_fact rate (facts counted in the
  1-worker run; the 2-worker run asserts the same facts).
Figures vary by machine and from run to run on a shared one; compare runs on one machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

from escalation.evaluate import engine
from escalation.evaluate.replay import replay
from escalation.load.loading import load_ruleset, load_scenario
from escalation.match.matching import build_result
from escalation.report.text import to_json

ROOT = Path(__file__).resolve().parents[1]
SCENARIO, RULES = "scenarios/index_case.yaml", "rules/report-pathway.yaml"
FACTS = [0]
_evaluate = engine.Session.evaluate


def _counting_evaluate(self, fields):
    FACTS[0] += 1
    return _evaluate(self, fields)


def cli_command() -> list[str]:
    script = Path(sys.executable).parent / "escalation"
    return [str(script)] if script.exists() else [sys.executable, "-m", "escalation"]


def cold_runs(k: int) -> list[float]:
    times = []
    for _ in range(k):
        t0 = time.perf_counter()
        proc = subprocess.run([*cli_command(), "replay", SCENARIO], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            sys.exit(f"cold run failed (exit {proc.returncode}): {proc.stderr.strip()}")
    return times


def sweep_figures() -> dict:
    """The sweep of the issue: one parameter over the index case and its variants."""
    from escalation.analysis.sweep import parse_range, run_sweep

    scenarios = [ROOT / SCENARIO, *sorted((ROOT / "scenarios" / "variants").glob("*.yaml"))]
    rng = parse_range("step3-ecmo-oi.oi_above=30:50:2")
    engine.Session.evaluate = _counting_evaluate
    FACTS[0] = 0
    one_points, one_s = run_sweep(scenarios, ROOT / RULES, rng, workers=1)
    facts = FACTS[0]
    engine.Session.evaluate = _evaluate
    two_points, two_s = run_sweep(scenarios, ROOT / RULES, rng, workers=2)
    if one_points != two_points:
        sys.exit("the sweep gave different points with 1 and 2 workers")
    n = len(scenarios) * len(rng.values())
    return {
        "sweep_replays": n,
        "sweep_replays_per_s_1_worker": n / one_s, "sweep_replays_per_s_2_workers": n / two_s,
        "sweep_speedup_2_workers": one_s / two_s,
        "sweep_facts_per_s_1_worker": facts / one_s, "sweep_facts_per_s_2_workers": facts / two_s,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=50, help="timed replays (default 50)")
    ap.add_argument("--batches", type=int, default=5, help="batches to split them into (default 5)")
    ap.add_argument("--cold-runs", type=int, default=3, help="cold CLI runs (default 3)")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = ap.parse_args()
    if min(args.repeats, args.batches, args.cold_runs) < 1:
        ap.error("--repeats, --batches and --cold-runs must be at least 1")
    n, batches = args.repeats, min(args.batches, args.repeats)

    os.chdir(ROOT)
    scenario, ruleset = load_scenario(SCENARIO), load_ruleset(RULES)
    engine.Session.evaluate = _counting_evaluate
    reference = to_json(build_result(replay(scenario, ruleset), SCENARIO))  # warm-up
    FACTS[0] = 0
    replay_rates, fact_rates, report_s, mismatches = [], [], 0.0, 0
    for size in (n // batches + (i < n % batches) for i in range(batches)):
        busy, facts0 = 0.0, FACTS[0]
        for _ in range(size):
            t0 = time.perf_counter()
            r = replay(scenario, ruleset)
            t1 = time.perf_counter()
            mismatches += to_json(build_result(r, SCENARIO)) != reference
            report_s += time.perf_counter() - t1
            busy += t1 - t0
        replay_rates.append(size / busy)
        fact_rates.append((FACTS[0] - facts0) / busy)
    engine.Session.evaluate = _evaluate

    replay_facts = FACTS[0]
    raw = statistics.median(engine.raw_assert_rate() for _ in range(3))
    sweep = sweep_figures()
    cold = cold_runs(args.cold_runs)
    rps, fps = statistics.median(replay_rates), statistics.median(fact_rates)
    fig = {
        "repeats": n, "batches": batches,
        "replays_per_s": rps, "replays_per_s_spread": [min(replay_rates), max(replay_rates)],
        "ms_per_replay": 1000 / rps, "facts_per_replay": replay_facts / n,
        "facts_per_s": fps, "facts_per_s_spread": [min(fact_rates), max(fact_rates)],
        "report_ms_per_replay": 1000 * report_s / n,
        "raw_assert_fact_per_s": raw, "ratio_replay_to_raw": fps / raw,
        "cold_cli_s": cold, "cold_cli_s_median": statistics.median(cold),
        "cold_cli_command": " ".join([*cli_command(), "replay", SCENARIO]),
        "identical_json": mismatches == 0, "json_mismatches": mismatches,
        **sweep, "sweep_facts_per_s_to_raw_1_worker": sweep["sweep_facts_per_s_1_worker"] / raw,
        "platform": platform.platform(), "python": platform.python_version(),
        "cpu_count": os.cpu_count(), "durable_rules": version("durable-rules"),
    }
    if args.json:
        print(json.dumps(fig, indent=2))
        return 0 if mismatches == 0 else 1
    (rlo, rhi), (flo, fhi) = fig["replays_per_s_spread"], fig["facts_per_s_spread"]
    rows = [
        ("replays/s (median of batches)", f"{rps:,.1f}  ({rlo:,.1f}..{rhi:,.1f})"),
        ("ms per replay", f"{fig['ms_per_replay']:.1f}"),
        ("facts per replay", f"{fig['facts_per_replay']:,.0f}"),
        ("facts/s (median of batches)", f"{fps:,.0f}  ({flo:,.0f}..{fhi:,.0f})"),
        ("build_result + to_json ms/replay", f"{fig['report_ms_per_replay']:.1f}"),
        ("raw assert_fact/s (median of 3)", f"{raw:,.0f}"),
        ("replay facts/s : raw assert_fact/s", f"1 : {raw / fps:.1f}  ({fps / raw:.1%})"),
        ("sweep replays (scenarios x values)", f"{sweep['sweep_replays']}"),
        ("sweep replays/s, 1 worker", f"{sweep['sweep_replays_per_s_1_worker']:,.1f}"),
        ("sweep replays/s, 2 workers", f"{sweep['sweep_replays_per_s_2_workers']:,.1f}"),
        ("sweep 2 workers : 1 worker", f"{sweep['sweep_speedup_2_workers']:.2f}x"),
        ("sweep facts/s (1 worker) : raw", f"{fig['sweep_facts_per_s_to_raw_1_worker']:.1%}"),
        ("cold CLI replay s (each)", "  ".join(f"{t:.3f}" for t in cold)),
        ("cold CLI replay s (median)", f"{fig['cold_cli_s_median']:.3f}"),
        ("machine", f"{fig['platform']}, {fig['cpu_count']} cpu"),
        ("python / durable-rules", f"{fig['python']} / {fig['durable_rules']}"),
    ]
    print(f"escalation replay benchmark: {SCENARIO} x {n} ({batches} batches); not a test")
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    print(f"identical JSON in all {n} replays: "
          + ("yes" if mismatches == 0 else f"NO ({mismatches} differ from the warm-up's)"))
    return 0 if mismatches == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

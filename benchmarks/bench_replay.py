"""Throughput benchmark of the replay; a script to run by hand, not a test (pytest ignores it).

    python benchmarks/bench_replay.py [--repeats N] [--batches B] [--cold-runs K] [--json]

In one process it loads scenarios/index_case.yaml and rules/report-pathway.yaml once, replays
the index case once to warm up (host creation, rule-set registration) and then N more times,
each `replay(...)` opening and deleting its own engine sessions (one per timing placement).
Facts are counted by wrapping `escalation.engine.Session.evaluate`; production code is untouched.

Figures:
- replays/s: replays per second of `replay(...)` alone (no result building or JSON), median
  over B batches of the N replays, with the slowest..fastest batch as the spread;
- facts/replay: facts asserted to the engine by one replay (days x passes, plus re-assertions
  on days when a rule fired); facts/s: the same batches counted in facts;
- report ms: mean time of `to_json(build_result(...))` per replay, which is not in replays/s;
- raw assert_fact/s: `escalation.engine.raw_assert_rate()`, bare durable_rules `assert_fact`
  on a one-rule set (median of 3 in this process); the ratio facts/s : raw says what share of
  the engine's bare rate the replay reaches (the rest is Python: features, fact building, checks);
- cold CLI s: wall time of `escalation replay scenarios/index_case.yaml` as a fresh subprocess
  (interpreter start, imports, loading, replay, table), each run and the median;
- identical JSON: every replay's `to_json(build_result(...))` equals the warm-up's; if not, the
  script says so and exits 1. The numbers depend on the machine; compare runs on one machine.
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

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = "scenarios/index_case.yaml"
RULES = "rules/report-pathway.yaml"

from escalation import engine  # noqa: E402
from escalation.loading import load_ruleset, load_scenario  # noqa: E402
from escalation.matching import build_result  # noqa: E402
from escalation.replay import replay  # noqa: E402
from escalation.report import to_json  # noqa: E402

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
            sys.exit(f"cold run failed ({proc.returncode}): {proc.stderr.strip()}")
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=50, help="timed replays (default 50)")
    ap.add_argument("--batches", type=int, default=5, help="batches the replays are split into")
    ap.add_argument("--cold-runs", type=int, default=3, help="cold CLI runs (default 3)")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = ap.parse_args()
    if args.repeats < 1 or args.batches < 1 or args.cold_runs < 1:
        ap.error("--repeats, --batches and --cold-runs must be at least 1")
    batches = min(args.batches, args.repeats)

    os.chdir(ROOT)
    scenario, ruleset = load_scenario(SCENARIO), load_ruleset(RULES)
    engine.Session.evaluate = _counting_evaluate
    reference = to_json(build_result(replay(scenario, ruleset), SCENARIO))  # warm-up
    FACTS[0] = 0

    sizes = [args.repeats // batches + (i < args.repeats % batches) for i in range(batches)]
    replay_rates, fact_rates, report_s, mismatches = [], [], 0.0, 0
    for size in sizes:
        busy, facts0 = 0.0, FACTS[0]
        for _ in range(size):
            t0 = time.perf_counter()
            r = replay(scenario, ruleset)
            t1 = time.perf_counter()
            text = to_json(build_result(r, SCENARIO))
            report_s += time.perf_counter() - t1
            busy += t1 - t0
            mismatches += text != reference
        replay_rates.append(size / busy)
        fact_rates.append((FACTS[0] - facts0) / busy)
    engine.Session.evaluate = _evaluate
    facts_per_replay = FACTS[0] / args.repeats

    raw = statistics.median(engine.raw_assert_rate() for _ in range(3))
    cold = cold_runs(args.cold_runs)

    fig = {
        "repeats": args.repeats, "batches": batches,
        "replays_per_s": statistics.median(replay_rates),
        "replays_per_s_spread": [min(replay_rates), max(replay_rates)],
        "facts_per_replay": facts_per_replay,
        "facts_per_s": statistics.median(fact_rates),
        "facts_per_s_spread": [min(fact_rates), max(fact_rates)],
        "report_ms_per_replay": 1000 * report_s / args.repeats,
        "raw_assert_fact_per_s": raw,
        "ratio_replay_to_raw": statistics.median(fact_rates) / raw,
        "cold_cli_s": cold, "cold_cli_s_median": statistics.median(cold),
        "cold_cli_command": " ".join([Path(cli_command()[0]).name, *cli_command()[1:], "replay", SCENARIO]),
        "identical_json": mismatches == 0, "json_mismatches": mismatches,
        "platform": platform.platform(), "python": platform.python_version(),
        "cpu_count": os.cpu_count(), "durable_rules": version("durable-rules"),
    }
    if args.json:
        print(json.dumps(fig, indent=2))
    else:
        lo, hi = fig["replays_per_s_spread"]
        flo, fhi = fig["facts_per_s_spread"]
        rows = [
            ("replays/s (median of batches)", f"{fig['replays_per_s']:,.1f}  ({lo:,.1f}..{hi:,.1f})"),
            ("ms per replay", f"{1000 / fig['replays_per_s']:.2f}"),
            ("facts per replay", f"{facts_per_replay:,.1f}"),
            ("facts/s (median of batches)", f"{fig['facts_per_s']:,.0f}  ({flo:,.0f}..{fhi:,.0f})"),
            ("build_result+to_json ms/replay", f"{fig['report_ms_per_replay']:.2f}"),
            ("raw assert_fact/s (median of 3)", f"{raw:,.0f}"),
            ("replay facts/s : raw assert_fact/s", f"1 : {1 / fig['ratio_replay_to_raw']:.1f}"
                                                   f"  ({fig['ratio_replay_to_raw']:.1%})"),
            ("cold CLI replay s (each)", "  ".join(f"{t:.3f}" for t in cold)),
            ("cold CLI replay s (median)", f"{fig['cold_cli_s_median']:.3f}"),
            ("machine", f"{fig['platform']}, {os.cpu_count()} cpu"),
            ("python / durable-rules", f"{fig['python']} / {fig['durable_rules']}"),
        ]
        print(f"escalation replay benchmark: {SCENARIO} x {args.repeats} ({batches} batches)")
        width = max(len(k) for k, _ in rows)
        for k, v in rows:
            print(f"  {k:<{width}}  {v}")
        print(f"identical JSON in all {args.repeats} replays: "
              + ("yes" if mismatches == 0 else f"NO ({mismatches} differ from the first)"))
    return 0 if mismatches == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

"""Many replays in one process keep its memory flat (benchmarks/bench_replay.py runs 100,000).

What the replay keeps between calls (engine programs by shape, readings by observation, views by
placement) must not grow with the number of replays, nor outlive the scenarios it was built for.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys

from conftest import ROOT

from escalation.analysis.synth import scenario_data
from escalation.derive import readings
from escalation.evaluate.replay import replay
from escalation.load.loading import load_ruleset
from escalation.load.scenario import Scenario
from escalation.match.matching import build_result

CHILD = """
import json, sys
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
marks = {}
for i in range(n):
    ruleset = rs.with_overrides({("step3-ecmo-oi", "oi_above"): 30.0 + i % 50}) if i % 100 == 99 else rs
    r = replay(scenarios[i % len(scenarios)], ruleset)
    if i % 10 == 0:
        build_result(r, "x.yaml")
    if i + 1 in (1000, n):
        marks[i + 1] = rss()
print(json.dumps(marks))
"""


def test_3000_replays_keep_rss_within_10_percent_of_the_first_1000():
    done = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), "3000"], capture_output=True, text=True,
                          cwd=ROOT, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    marks = json.loads(done.stdout)
    first, last = marks["1000"], marks["3000"]
    assert last <= 1.10 * first, f"RSS grew from {first:.1f} MB after 1,000 replays to {last:.1f} MB after 3,000"


def test_what_a_replay_keeps_goes_with_its_scenario():
    rs = load_ruleset(ROOT / "rules" / "report-pathway.yaml")
    gc.collect()
    before = len(readings._MEMO)
    for i in range(50):
        scenario = Scenario.model_validate(scenario_data(i, seed=7))
        build_result(replay(scenario, rs), "x.yaml")
    del scenario
    gc.collect()
    assert len(readings._MEMO) == before

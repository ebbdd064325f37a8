"""Fuzz the file formats: mutate shipped scenarios and rule sets, and demand a clean answer.

Every mutated file must either load (and then replay) cleanly, or give the one-line error with
exit status 2. A traceback, any other exit status, a case slower than the time limit, or memory
beyond the limit is a failure. Mutations work at two levels:
- YAML text: lines deleted, duplicated, re-indented, or spliced with odd tokens (aliases, tags,
  huge numbers, control characters);
- values: one value of the parsed file replaced by an edge value (NaN, infinity, zero, a negative,
  a huge number, a string, an empty list, deep nesting) and the file written back.

Run it at scale from the repository root (the README gives this line):

    .venv/bin/python tests/fuzz/fuzz_files.py --cases 10000

It prints each failure with the mutated file kept under --keep, and exits 1 if there was any.
tests/test_fuzz.py runs it at a modest size in CI.
"""

from __future__ import annotations

import argparse
import copy
import io
import resource
import signal
import sys
import tempfile
import time
import traceback
from contextlib import redirect_stderr, redirect_stdout
from collections.abc import Callable
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

Draw = Callable[[st.SearchStrategy], object]

ROOT = Path(__file__).resolve().parents[2]
SEEDS = [ROOT / "scenarios" / "index_case.yaml", *sorted((ROOT / "scenarios" / "variants").glob("*.yaml")),
         *sorted((ROOT / "rules").glob("*.yaml"))]
EDGE_VALUES: list[object] = [
    None, 0, -1, 1, 0.0, -0.0, 1e308, -1e308, 1e-308, 2**63, -(2**63), float("nan"), float("inf"),
    float("-inf"), "", "x", "0", "1:30", "010", "1e308", ".nan", "yes", [], {}, [[[[[]]]]],
    {"between": [10, 5]}, {"value": 5, "comparator": "~"}, "a" * 5000, "\x1b]0;t\x07", "\x00",
]
TEXT_TOKENS = ["&a ", "*a", "!!python/object:os.system ", "!!binary ", "? [1, 2]\n: x", "[[[[[[[[", "{{",
               "- ", ": ", "\t", "\x00", "\ufeff", "'", '"', "1e309", ".inf", "-.nan", "0x1F", "0o17",
               "~", "null", "<<: *a", "%YAML 1.1\n---\n", "\n---\n"]
TIME_LIMIT_S = 20
MEMORY_LIMIT_BYTES = 3 * 1024**3


def _paths(data: object, here: tuple = ()) -> list[tuple]:
    """Every path to a value in parsed YAML (to a depth of 30), so a value mutation can pick any."""
    out = [here]
    if len(here) > 30:
        return out
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, (*here, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, (*here, i))
    return out


def _set(data: object, path: tuple, value: object) -> object:
    if not path:
        return value
    node = data
    for part in path[:-1]:
        node = node[part]  # type: ignore[index]
    node[path[-1]] = value  # type: ignore[index]
    return data


def mutate_values(text: str, draw: Draw) -> str:
    data = yaml.safe_load(text)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(data)))
        data = _set(data, path, copy.deepcopy(draw(st.sampled_from(EDGE_VALUES))))  # never share one
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def mutate_text(text: str, draw: Draw) -> str:
    lines = text.split("\n")
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.integers(0, 4))
        if op == 0 and len(lines) > 1:
            del lines[i]
        elif op == 1:
            lines.insert(i, lines[i])
        elif op == 2:
            lines[i] = " " * draw(st.integers(0, 6)) + lines[i].lstrip()
        elif op == 3:
            cut = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:cut] + draw(st.sampled_from(TEXT_TOKENS)) + lines[i][cut:]
        else:
            lines[i] = lines[i].replace(":", draw(st.sampled_from([": ", ":", " : ", ": !!str "])), 1)
    return "\n".join(lines)


def mutant(draw: Draw) -> tuple[Path, str]:
    """A shipped file and a mutation of it, at the YAML-text or at the value level."""
    seed = draw(st.sampled_from(SEEDS))
    text = seed.read_text(encoding="utf-8")
    if draw(st.booleans()):
        try:
            return seed, mutate_values(text, draw)
        except (yaml.YAMLError, RecursionError, ValueError):  # the harness's own parse, not the tool's
            pass
    return seed, mutate_text(text, draw)


class TimeLimit(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise TimeLimit()


def run_case(path: Path) -> tuple[bool, str]:
    """`check` then, when it passes, `replay` (or `test` for a rule set): (ok, what happened)."""
    from typer.testing import CliRunner

    from escalation.cli import app

    runner = CliRunner()
    is_rules = "rules" in path.name
    commands = [["check", str(path)],
                ["test", str(ROOT / "scenarios" / "index_case.yaml"), "--rules", str(path)] if is_rules
                else ["replay", str(path), "--format", "json"]]
    for args in commands:
        signal.alarm(TIME_LIMIT_S)
        try:
            result = runner.invoke(app, args, catch_exceptions=True)
        except TimeLimit:
            return False, f"{args[0]}: slower than {TIME_LIMIT_S} s"
        finally:
            signal.alarm(0)
        if isinstance(result.exception, TimeLimit):
            return False, f"{args[0]}: slower than {TIME_LIMIT_S} s"
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            tb = "".join(traceback.format_exception(result.exception))
            return False, f"{args[0]}: traceback\n{tb}"
        if result.exit_code == 2:
            lines = result.stderr.strip().splitlines()
            if len(lines) != 1 or not lines[0].startswith("error: "):
                return False, f"{args[0]}: exit 2 without the one-line error: {result.stderr!r}"
            return True, "refused"
        if result.exit_code not in (0, 1 if args[0] == "test" else 0):
            return False, f"{args[0]}: exit {result.exit_code}: {result.output[-2000:]!r}"
    return True, "accepted"


class Tally:
    """What the run saw, for the closing line; failing files are kept for a person to read."""

    def __init__(self, keep: Path) -> None:
        self.keep, self.counts, self.n = keep, {"accepted": 0, "refused": 0, "failed": 0}, 0

    def record(self, seed: Path, path: Path, ok: bool, what: str) -> None:
        self.n += 1
        if ok:
            self.counts[what] += 1
            return
        self.counts["failed"] += 1
        kept = self.keep / f"case{self.n}-{path.name}"
        kept.write_bytes(path.read_bytes())
        print(f"FAIL case {self.n} ({seed.name} -> {kept}): {what}", flush=True)


def one_case(draw: Draw, tally: Tally) -> tuple[bool, str]:
    """Write one mutant beside copies of its bases, run it, and record what happened."""
    seed, text = mutant(draw)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "index_case.yaml").write_bytes((ROOT / "scenarios" / "index_case.yaml").read_bytes())
        (folder / "report-pathway.yaml").write_bytes((ROOT / "rules" / "report-pathway.yaml").read_bytes())
        path = folder / (("rules-" if seed.parent.name == "rules" else "scenario-") + seed.name)
        path.write_text(text.replace("../index_case.yaml", "index_case.yaml"), encoding="utf-8",
                        errors="surrogateescape")
        with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
            ok, what = run_case(path)
        tally.record(seed, path, ok, what)
    return ok, what


def run(cases: int, keep: Path) -> Tally:
    """`cases` hypothesis examples; every failing example is recorded, not only the first."""
    tally = Tally(keep)

    @settings(max_examples=cases, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(st.data())
    def case(data: st.DataObject) -> None:
        one_case(data.draw, tally)

    case()
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--keep", type=Path, default=None, help="folder to keep failing files in")
    args = parser.parse_args(argv)
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
    signal.signal(signal.SIGALRM, _alarm)
    keep = args.keep or Path(tempfile.mkdtemp(prefix="escalation-fuzz-"))
    keep.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    tally = run(args.cases, keep)
    c = tally.counts
    print(f"fuzz: {tally.n} cases in {time.monotonic() - started:.0f} s: {c['accepted']} accepted, "
          f"{c['refused']} refused with the one-line error, {c['failed']} failed")
    return 1 if c["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())

"""The file fuzzer at a modest size: every mutated file loads, or is refused in one line.

The full run (10,000 cases, about half an hour) is `.venv/bin/python tests/fuzz/fuzz_files.py
--cases 10000`; see the README. This run uses the same harness, in a child process with its own
memory limit and a time limit per case, so that a regression fails the test rather than the machine.
"""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import ROOT

CASES = 150


def test_mutated_files_load_or_are_refused_in_one_line(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "tests" / "fuzz" / "fuzz_files.py"), "--cases", str(CASES),
                          "--keep", str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=1800)
    assert out.returncode == 0, out.stdout[-5000:] + out.stderr[-3000:]
    closing = re.search(r"fuzz: (\d+) cases .*: (\d+) accepted, (\d+) refused with the one-line error, 0 failed",
                        out.stdout)
    assert closing, out.stdout[-2000:]
    assert int(closing.group(1)) == CASES
    assert int(closing.group(3)) > 0  # the mutations do reach the error paths

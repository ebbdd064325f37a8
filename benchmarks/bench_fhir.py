"""FHIR import benchmark: a script to run by hand, not a test (pytest ignores it).

    python benchmarks/bench_fhir.py [--patients N] [--repeats R]

Builds a Bulk Data folder of N patients in a temporary folder (default 100): each is the index
case exported by `escalation export fhir` under its own ids (about 70 resources a patient, one
NDJSON file per resource type), then times the import of the whole folder, median of R runs,
and the share of that spent validating resources with fhir.resources. Also times export of the
index case. Figures vary by machine; compare runs on one machine. Research review only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from escalation.fhir import reader
from escalation.fhir.export import to_bundle
from escalation.fhir.to_scenario import import_paths
from escalation.load.loading import load_scenario

ROOT = Path(__file__).resolve().parents[1]


def bulk_folder(folder: Path, patients: int) -> int:
    """N copies of the exported index case, each under its own ids; the number of resources."""
    bundle = to_bundle(load_scenario(ROOT / "scenarios" / "index_case.yaml"))
    by_type: dict[str, list[str]] = defaultdict(list)
    for n in range(patients):
        text = json.dumps([e["resource"] for e in bundle["entry"]])
        text = text.replace('"patient-index-case"', f'"p{n}"').replace('Patient/patient-index-case', f"Patient/p{n}")
        text = text.replace('"value": "index-case"', f'"value": "case-{n}"')
        for res in json.loads(text):
            res["id"] = f"{res['id']}-{n}" if res["resourceType"] != "Patient" else res["id"]
            by_type[res["resourceType"]].append(json.dumps(res))
    for kind, lines in by_type.items():
        (folder / f"{kind}.000.ndjson").write_text("\n".join(lines) + "\n")
    return sum(len(v) for v in by_type.values())


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def validation_share(folder: Path) -> float:
    """Seconds spent in fhir.resources validation over one import, measured by wrapping it."""
    spent = [0.0]
    original = reader.located

    def counting(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - t0

    reader.located = counting
    try:
        import_paths([folder])
    finally:
        reader.located = original
    return spent[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patients", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        resources = bulk_folder(folder, args.patients)
        import_paths([folder])  # warm: imports fhir.resources and builds its validators
        times = timed(lambda: import_paths([folder]), args.repeats)
        scenarios = len(import_paths([folder]).scenarios)
        validating = validation_share(folder)
    sc = load_scenario(ROOT / "scenarios" / "index_case.yaml")
    export_ms = statistics.median(timed(lambda: to_bundle(sc), 5)) * 1000
    median = statistics.median(times)
    print("FHIR import benchmark (research review only)")
    print(f"  patients: {args.patients}, resources: {resources}, scenarios written: {scenarios}")
    print(f"  import s: {median:.2f} median of {args.repeats} ({min(times):.2f}..{max(times):.2f})"
          f" = {resources / median:,.0f} resources/s, {median / args.patients * 1000:.1f} ms/patient")
    print(f"  reading and validating with fhir.resources: {validating:.2f} s of one import")
    print(f"  export of the index case: {export_ms:.1f} ms")


if __name__ == "__main__":
    main()

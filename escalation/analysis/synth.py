"""Hypothetical timelines for load and robustness testing only: never patients, never evidence.

The timelines are those of the tests' Hypothesis strategy (tests/strategies.py): the same event
kinds, codes, readings on and a millionth either side of the rules' thresholds, and day ranges.
Here every choice goes through the small `Draw` interface, answered by a seeded `random.Random`
for `escalation synth` (the installed tool, without the tests folder) or by Hypothesis in the
tests (tests/test_synth.py), so that a failure there shrinks.

Every file written marks the scenario and each of its events `hypothetical: true`, and says in
its title and first line what it is for.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import yaml

T = TypeVar("T")
PURPOSE = "for load and robustness testing only; not a patient, not evidence, not advice"
SOURCE = {"section": "Case presentation", "detail": "hypothetical: generated for load testing"}
FIRST_DAY, LAST_DAY = -3, 40


class Draw(Protocol):
    """The choices the generator makes; Hypothesis or a seeded random generator answers them."""

    def integer(self, lo: int, hi: int) -> int: ...

    def real(self, lo: float, hi: float) -> float: ...

    def pick(self, options: Sequence[T]) -> T: ...


class RandomDraw:
    """Draws from a seeded `random.Random`: the same seed gives the same timelines."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def real(self, lo: float, hi: float) -> float:
        return self.rng.uniform(lo, hi)

    def pick(self, options: Sequence[T]) -> T:
        return options[self.rng.randrange(len(options))]


def _day(d: Draw, exact_only: bool) -> int | dict[str, list[int]]:
    day = d.integer(FIRST_DAY, LAST_DAY)
    if exact_only or d.integer(0, 2) < 2:
        return day
    return {"between": [day, day + d.integer(0, 6)]}


def _value(d: Draw, lo: float, hi: float, places: int = 1, edges: tuple[float, ...] = ()) -> Any:
    """A reading in range, often exactly on a rule's threshold or a millionth either side
    (readings are kept to 6 decimals), sometimes only bounded."""
    near = tuple(round(e + x, 6) for e in edges for x in (-1e-6, 1e-6) if lo <= e + x <= hi)
    where = d.integer(0, 2) if edges else 0
    if where == 1:
        num: float = d.pick(edges)
    elif where == 2 and near:
        num = d.pick(near)
    else:
        num = round(d.real(lo, hi), places)
    if d.integer(0, 3) < 3:
        return num
    return {"value": num, "comparator": d.pick(["<", ">", "<=", ">="])}


_READINGS: list[tuple[str, Any]] = [
    ("spo2", lambda d: _value(d, 70, 100, 0, edges=(90, 97))),
    ("fio2", lambda d: d.pick([0.21, 0.4, 0.6, 0.8, 0.9, 1.0])),
    ("map", lambda d: _value(d, 5, 30, 0, edges=(18,))),
    ("pip", lambda d: _value(d, 10, 40, 0, edges=(30,))),
    ("ino", lambda d: d.pick([0, 5, 10])),
    ("pao2", lambda d: _value(d, 30, 200, 1, edges=(25, 50, 100))),
    ("anti_mda5", lambda d: _value(d, 50, 9000, 0, edges=(500,))),
]


def _readings(d: Draw) -> dict[str, Any]:
    """At least one reading; each of the others present or not."""
    first = d.integer(0, len(_READINGS) - 1)
    return {name: make(d) for i, (name, make) in enumerate(_READINGS) if i == first or d.integer(0, 1)}


_KINDS = ["observation", "observation", "observation", "therapy", "support", "procedure", "finding",
          "trend_report"]


def _event(d: Draw, i: int, exact_only: bool, source: dict[str, Any]) -> dict[str, Any]:
    kind = d.pick(_KINDS)
    base: dict[str, Any] = {"id": f"e{i}", "kind": kind, "day": _day(d, exact_only), "source": source}
    if kind == "observation":
        base["values"] = _readings(d)
    elif kind == "therapy":
        base["code"] = d.pick(["MPT", "PSL", "CyA", "IVCY", "IVIG", "RTX", "MMF", "TMP-SDZ"])
    elif kind == "support":
        base["code"] = d.pick(["invasive_ventilation", "VV-ECMO", "oxygen_mask"])
        if d.integer(0, 1):
            start = base["day"] if isinstance(base["day"], int) else base["day"]["between"][1]
            base["until"] = start + d.integer(0, 20)
    elif kind == "procedure":
        base["code"] = "PE"
    elif kind == "finding":
        base["code"] = d.pick(["respiratory_not_improving", "b_cell_recovery"])
    else:
        base["marker"] = "anti_mda5"
        base["direction"] = d.pick(["decreasing", "not_decreasing", "stable", "rising"])
    return base


def events(d: Draw, source: dict[str, Any], exact_only: bool = False, max_events: int = 14) -> list[dict[str, Any]]:
    """1 to `max_events` events with random days, readings and interventions."""
    return [_event(d, i, exact_only, source) for i in range(d.integer(1, max_events))]


def diagnoses(d: Draw) -> tuple[tuple[str, int], ...]:
    return d.pick([(), (("JDM", 0),), (("JDM", -2), ("RP-ILD", 1))])


def scenario_data(index: int, seed: int, max_events: int = 14) -> dict[str, Any]:
    """One hypothetical timeline as a scenario file's content; the same (index, seed), the same file."""
    d = RandomDraw(random.Random(f"escalation-synth:{seed}:{index}"))
    evs = [{**e, "hypothetical": True} for e in events(d, SOURCE, max_events=max_events)]
    dx = diagnoses(d)
    return {
        "scenario": {"id": f"synth-{seed}-{index:06d}",
                     "title": f"Hypothetical timeline {index} (seed {seed}): load and robustness testing only",
                     "source": SOURCE, "hypothetical": True},
        "patient": {"age_years": 5, "sex": "female", "source": SOURCE,
                    "diagnoses": [{"code": c, "day": day, "source": SOURCE} for c, day in dx]},
        "events": evs,
    }


def _shifted(event: dict[str, Any], to: int) -> dict[str, Any]:
    """The event moved so that it starts (at the earliest) on day `to`, its until moved with it."""
    day = event["day"]
    by = to - (day if isinstance(day, int) else day["between"][0])
    event["day"] = day + by if isinstance(day, int) else {"between": [x + by for x in day["between"]]}
    if "until" in event:
        event["until"] += by
    return event


def dense_data(days: int, seed: int, events_every: int = 10, observe_every: int = 1) -> dict[str, Any]:
    """One long hypothetical timeline as a scenario file's content: an observation on every day
    0..days-1 (or every `observe_every` days; readings drawn as for `scenario_data`, often on a
    threshold), and on about one day in `events_every` another event (therapy, support,
    procedure, finding or trend report, with uncertain days as in `scenario_data`). For load
    testing of long, dense (or long, sparse) records only."""
    d = RandomDraw(random.Random(f"escalation-dense:{seed}:{days}:{events_every}:{observe_every}"))
    evs: list[dict[str, Any]] = []
    for day in range(days):
        if day % observe_every == 0:
            evs.append({"id": f"o{day}", "kind": "observation", "day": day, "values": _readings(d),
                        "source": SOURCE, "hypothetical": True})
        if d.integer(1, events_every) == 1:
            evs.append({**_shifted(_event(d, day, False, SOURCE), day), "id": f"e{day}", "hypothetical": True})
    dx = diagnoses(d)
    return {
        "scenario": {"id": f"dense-{seed}-{days}",
                     "title": f"Hypothetical dense timeline of {days} days (seed {seed}): load testing only",
                     "source": SOURCE, "hypothetical": True},
        "patient": {"age_years": 5, "sex": "female", "source": SOURCE,
                    "diagnoses": [{"code": c, "day": day, "source": SOURCE} for c, day in dx]},
        "events": evs,
    }


class _Dumper(yaml.SafeDumper):
    """No anchors or aliases: the loader refuses them (they can expand a small file without bound)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def file_text(index: int, seed: int) -> str:
    head = (f"# Hypothetical timeline {index} generated by `escalation synth` (seed {seed}):\n"
            f"# {PURPOSE}.\n# The scenario and every event are marked hypothetical.\n")
    body = yaml.dump(scenario_data(index, seed), Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=None, width=100)
    return head + body


def file_name(index: int) -> str:
    return f"synth-{index:06d}.yaml"


def _refuse_used_folder(out: Path) -> None:
    """`out` must be new or empty: files of another run left beside these (another seed, or a
    larger N) would be read as part of this set by `batch`."""
    from escalation.load.errors import InputError

    try:
        used = out.is_dir() and any(out.iterdir())
    except OSError as exc:
        raise InputError(str(out), f"cannot read folder: {exc.strerror or exc}") from None
    if used:
        raise InputError(str(out), "is not empty; synth needs a new or empty folder")


def write_synth(n: int, seed: int, out: Path) -> list[Path]:
    """N hypothetical timelines into `out`, a new or empty folder, all or none (rendered in a
    staging folder first, and published only when every file exists)."""
    from escalation.report.files import publish, staged

    _refuse_used_folder(out)
    names = [file_name(i) for i in range(1, n + 1)]
    with staged(out) as stage:
        for i, name in enumerate(names, start=1):
            (stage / name).write_text(file_text(i, seed), encoding="utf-8")
        _refuse_used_folder(out)  # again: another run may have written there meanwhile
        return publish(stage, out, names)

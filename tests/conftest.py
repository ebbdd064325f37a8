"""Shared helpers: small scenarios written inline, the shipped files, and replays of them."""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from escalation.evaluate.replay import replay
from escalation.load.loading import load_ruleset, load_scenario
from escalation.load.ruleset import Ruleset
from escalation.load.scenario import Scenario
from escalation.match.matching import build_result
from escalation.match.results import ReplayResult


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C acts in the commands the tests start, as at a terminal, however pytest was started.

    A shell running pytest in the background (`cmd &`, CI scripts) starts it with SIGINT ignored,
    and an ignored signal stays ignored in every process started from it: the tests that press
    Ctrl-C on a batch would then see it run to the end. A handler, unlike SIG_IGN, is reset to the
    default when a child starts, so restoring Python's own handler here restores it there too.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


ROOT = Path(__file__).resolve().parents[1]
INDEX_CASE = ROOT / "scenarios" / "index_case.yaml"
PATHWAY = ROOT / "rules" / "report-pathway.yaml"
SRC = {"section": "Case presentation"}


def ev(kind: str, day: Any, id: str | None = None, **fields: Any) -> dict[str, Any]:
    """One timeline event with a citation filled in; the id defaults to kind and day."""
    return {"id": id or f"{kind}-{day}-{fields.get('code', fields.get('marker', ''))}", "kind": kind,
            "day": day, "source": SRC, **fields}


def obs(day: Any, id: str | None = None, reported: dict | None = None, **values: Any) -> dict[str, Any]:
    return ev("observation", day, id=id or f"obs-{day}-{'-'.join(values)}", values=values,
              **({"reported": reported} if reported else {}))


def make_scenario(*events: dict[str, Any], diagnoses: tuple[tuple[str, Any], ...] = (),
                  sid: str = "small") -> Scenario:
    data = {
        "scenario": {"id": sid, "title": "a small test timeline", "source": SRC},
        "patient": {
            "age_years": 5, "sex": "female", "source": SRC,
            "diagnoses": [{"code": c, "day": d, "source": SRC} for c, d in diagnoses],
        },
        "events": list(events),
    }
    return Scenario.model_validate(data)


@pytest.fixture(scope="session")
def pathway() -> Ruleset:
    return load_ruleset(PATHWAY)


@pytest.fixture(scope="session")
def index_case() -> Scenario:
    return load_scenario(INDEX_CASE)


@pytest.fixture(scope="session")
def index_result(index_case: Scenario, pathway: Ruleset) -> ReplayResult:
    return build_result(replay(index_case, pathway), "scenarios/index_case.yaml")


def run(scenario: Scenario, ruleset: Ruleset, through_day: int | None = None) -> ReplayResult:
    return build_result(replay(scenario, ruleset, through_day), "test.yaml")


def points(result: ReplayResult, rule_id: str) -> list:
    return [dp for dp in result.decision_points if dp.rule_id == rule_id]


@pytest.fixture
def unreadable(monkeypatch) -> Callable[..., None]:
    """`unreadable(folder)` makes listing that folder fail as it would without permission (the
    tests run as root, which a chmod does not stop): os.scandir and os.listdir of it raise
    PermissionError, every other folder lists as usual. `unreadable(folder, FileNotFoundError)`
    fails it as a folder removed during a walk."""
    blocked: dict[str, type[OSError]] = {}
    real_scandir, real_listdir = os.scandir, os.listdir
    codes = {PermissionError: errno.EACCES, FileNotFoundError: errno.ENOENT}

    def refuse(path) -> None:
        if not isinstance(path, int) and (error := blocked.get(os.path.abspath(os.fspath(path)))):
            raise error(codes[error], os.strerror(codes[error]), os.fspath(path))

    def scandir(path="."):
        refuse(path)
        return real_scandir(path)

    def listdir(path="."):
        refuse(path)
        return real_listdir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "listdir", listdir)

    def block(folder: Path, error: type[OSError] = PermissionError) -> None:
        blocked[os.path.abspath(folder)] = error

    return block

"""`escalation synth`: hypothetical timelines for load and robustness testing, marked as such."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import yaml
from conftest import SRC, make_scenario
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from escalation import api
from escalation.analysis import synth
from escalation.cli.app import app

T = TypeVar("T")
runner = CliRunner()


class HypothesisDraw:
    """synth.Draw answered by Hypothesis, so that a failing timeline shrinks."""

    def __init__(self, draw: Any) -> None:
        self.draw = draw

    def integer(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))

    def real(self, lo: float, hi: float) -> float:
        return self.draw(st.floats(min_value=lo, max_value=hi, allow_nan=False))

    def pick(self, options: Sequence[T]) -> T:
        return self.draw(st.sampled_from(options))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_generated_timeline_is_a_valid_scenario(data):
    d = HypothesisDraw(data.draw)
    events = synth.events(d, SRC, exact_only=data.draw(st.booleans()))
    make_scenario(*events, diagnoses=synth.diagnoses(d), sid="generated")  # raises if invalid


def test_synth_writes_n_hypothetical_timelines_the_same_for_the_same_seed(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed in ((a, "7"), (b, "7"), (c, "8")):
        result = runner.invoke(app, ["synth", "5", "--seed", seed, "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert "load and robustness testing only" in result.stderr
    names = sorted(p.name for p in a.iterdir())
    assert names == [f"synth-00000{i}.yaml" for i in range(1, 6)]
    assert all((a / n).read_bytes() == (b / n).read_bytes() for n in names)
    assert any((a / n).read_bytes() != (c / n).read_bytes() for n in names)
    for n in names:
        text = (a / n).read_text()
        assert text.startswith("# Hypothetical timeline") and "load and robustness testing only" in text
        data = yaml.safe_load(text)
        assert data["scenario"]["hypothetical"] is True
        assert "load and robustness testing only" in data["scenario"]["title"]
        assert data["events"] and all(e["hypothetical"] is True for e in data["events"])
        scenario = api.load_scenario(a / n)  # what the loader accepts, anchors and all
        assert scenario.scenario.hypothetical and all(e.hypothetical for e in scenario.events)


def test_synth_help_says_what_the_timelines_are_for():
    result = runner.invoke(app, ["synth", "--help"])
    assert result.exit_code == 0
    assert "load and robustness testing only" in " ".join(result.stdout.split())


def test_synth_refuses_a_folder_that_is_not_empty_and_writes_nothing(tmp_path):
    out = tmp_path / "d"
    assert runner.invoke(app, ["synth", "8", "--seed", "1", "--out", str(out)]).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = runner.invoke(app, ["synth", "3", "--seed", "2", "--out", str(out)])
    assert result.exit_code == 2
    assert result.stderr == f"error: {out}: is not empty; synth needs a new or empty folder\n"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no seed-2 file among seed 1's
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]  # no staging folder left behind
    empty = tmp_path / "empty"
    empty.mkdir()
    assert runner.invoke(app, ["synth", "2", "--seed", "1", "--out", str(empty)]).exit_code == 0
    assert sorted(p.name for p in empty.iterdir()) == ["synth-000001.yaml", "synth-000002.yaml"]


def test_synth_interrupted_while_rendering_leaves_nothing(tmp_path, monkeypatch):
    render = synth.file_text

    def stop_at_third(i: int, seed: int) -> str:
        if i == 3:
            raise KeyboardInterrupt
        return render(i, seed)

    monkeypatch.setattr(synth, "file_text", stop_at_third)
    out = tmp_path / "d"
    try:
        synth.write_synth(5, 1, out)
    except KeyboardInterrupt:
        pass
    assert list(tmp_path.iterdir()) == []

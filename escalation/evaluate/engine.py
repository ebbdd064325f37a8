"""Rule evaluation in durable_rules: the only module that knows the engine exists.

A rule set compiles into (a) the features each day's fact must carry and (b) a durable_rules
ruleset in its JSON form, one rule per rule of the file, each a conjunction of comparisons on a
single fact. The engine makes every decision: Python builds the day's numbers and reads back
which rules fired.

Why it is built the way it is (see shared/notes/durable-rules.md for each trap):
- one fact per evaluation, asserted (not posted) so that every matching rule fires (#15);
- every rule tests a `kind` field first, so nothing fires on presence alone (#17);
- actions only append to a list, with one parameter (#4, #18), and the returned state is
  checked for a swallowed exception after every call;
- a ruleset is registered once per process under a name carrying its content hash (#7);
- the host's background threads are never started: the replay has its own virtual clock (#9, #20);
- one session lives at a time, and it is deleted before the next begins (#11-#14);
- fact ids are checked for unique 32-bit hashes within a session (#13), and numbers are
  normalised before they reach the engine's JSON parser (#8, #16).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from itertools import count
from typing import Any

from durable import engine as _dr

from escalation.derive.features import (
    ActiveFeature,
    DiagnosisFeature,
    Feature,
    FindingFeature,
    MeasureFeature,
    SinceFeature,
    TrendFeature,
)
from escalation.load.ruleset import (
    ActiveCondition,
    DiagnosisCondition,
    FindingCondition,
    GivenCondition,
    MeasureCondition,
    Repeat,
    Rule,
    Ruleset,
    SinceCondition,
    StepCondition,
    TrendCondition,
)

FACT_KIND = "day"
_OPS = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}


class EngineError(RuntimeError):
    """The engine did something the replay cannot trust; never silently ignored."""


@dataclass(frozen=True)
class CompiledCondition:
    """One condition as the engine tests it, and how to show the values that met it."""

    text: str
    fields: tuple[str, ...]
    test: dict[str, Any]


@dataclass(frozen=True)
class CompiledRule:
    rule_id: str
    step: int | None
    conditions: tuple[CompiledCondition, ...]
    every_days: int | None

    @property
    def fired_key(self) -> str:
        return f"fired__{self.rule_id}"

    @property
    def since_key(self) -> str:
        return f"since_fired__{self.rule_id}"


@dataclass(frozen=True)
class CompiledRuleset:
    name: str
    rules: tuple[CompiledRule, ...]
    features: tuple[Feature, ...]
    steps: tuple[int, ...]
    definition: dict[str, Any]


def step_key(step: int) -> str:
    return f"step_flagged__{step}"


def step_days_key(step: int) -> str:
    """Days since the step was first flagged; absent until it has been."""
    return f"step_days__{step}"


def _param(rule: Rule, name: str) -> float:
    return rule.parameters[name].value


def _window(rule: Rule, name: str | None) -> int | None:
    """A look-back window in whole days; None means 'any time before'."""
    if name == "any":
        return None
    if name is None:
        return 0
    return int(math.floor(_param(rule, name)))


def _cmp(op: str, key: str, value: float) -> dict[str, Any]:
    return {_OPS[op]: {key: _number(value)}}


def _bounded(op: str, key: str, t: float) -> dict[str, Any]:
    """A comparison that also holds for censored readings known to satisfy it.

    A reading may be exact (key), or only bounded: key__lt (< x), key__le (<= x), key__gt (> x),
    key__ge (>= x). The condition holds when the reading is certainly on the right side.
    """
    if op in ("<", "<="):
        alts = [_cmp(op, key, t), _cmp("<=", key + "__lt", t), _cmp(op, key + "__le", t)]
    else:
        alts = [_cmp(op, key, t), _cmp(">=", key + "__gt", t), _cmp(op, key + "__ge", t)]
    return {"$or": alts}


def _compile_condition(rule: Rule, cond: Any) -> tuple[CompiledCondition, list[Feature]]:
    if isinstance(cond, MeasureCondition):
        f = MeasureFeature(cond.measure, _window(rule, cond.within_days))
        t = _param(rule, cond.threshold)
        when = "that day" if f.window == 0 else ("ever" if f.window is None else f"within {f.window} d")
        text = f"{cond.measure} {cond.op} {t:g} ({cond.threshold}; reading {when})"
        keys = tuple(f.key + s for s in ("", "__lt", "__le", "__gt", "__ge"))
        return CompiledCondition(text, keys, _bounded(cond.op, f.key, t)), [f]
    if isinstance(cond, TrendCondition):
        w = _window(rule, cond.window_days)
        f = TrendFeature(cond.trend, w or 0)
        test = {"not_decreasing": _cmp(">=", f.key, 0), "rising": _cmp(">=", f.key, 1),
                "decreasing": _cmp("<=", f.key, -1)}[cond.direction]
        return CompiledCondition(f"{cond.trend} {cond.direction.replace('_', ' ')} over {w} d",
                                 (f.key,), test), [f]
    if isinstance(cond, GivenCondition):
        f = SinceFeature(tuple(cond.given), "first")
        return CompiledCondition(f"any of {', '.join(cond.given)} started (days since)", (f.key,),
                                 _cmp(">=", f.key, 0)), [f]
    if isinstance(cond, SinceCondition):
        f = SinceFeature(tuple(cond.since), cond.of)
        t = _param(rule, cond.days)
        return CompiledCondition(
            f"days since {cond.of} {'/'.join(cond.since)} {cond.op} {t:g} ({cond.days})",
            (f.key,), _cmp(cond.op, f.key, t)), [f]
    if isinstance(cond, ActiveCondition):
        f = ActiveFeature(cond.active)
        return CompiledCondition(
            f"{cond.active} {'in place' if cond.in_place else 'not in place'}", (f.key,),
            {f.key: int(cond.in_place)}), [f]
    if isinstance(cond, FindingCondition):
        w = _window(rule, cond.within_days) or 0
        f = FindingFeature(cond.finding, w)
        return CompiledCondition(f"{cond.finding} reported within {w} d", (f.key,), {f.key: 1}), [f]
    if isinstance(cond, DiagnosisCondition):
        f = DiagnosisFeature(cond.diagnosis)
        return CompiledCondition(f"diagnosis {cond.diagnosis} made", (f.key,), {f.key: 1}), [f]
    if isinstance(cond, StepCondition):
        if cond.for_days is None:
            key = step_key(cond.step_flagged)
            return CompiledCondition(f"step {cond.step_flagged} already flagged", (key,), {key: 1}), []
        key = step_days_key(cond.step_flagged)
        t = _param(rule, cond.for_days)
        return CompiledCondition(f"step {cond.step_flagged} flagged at least {t:g} d ago ({cond.for_days})",
                                 (key,), _cmp(">=", key, t)), []
    raise TypeError(f"no compilation for {type(cond).__name__}")  # pragma: no cover


def compile_ruleset(ruleset: Ruleset) -> CompiledRuleset:
    """Translate a validated rule set into features and a durable_rules definition."""
    rules: list[CompiledRule] = []
    features: dict[str, Feature] = {}
    definition: dict[str, Any] = {}
    for pri, rule in enumerate(ruleset.rules):
        compiled: list[CompiledCondition] = []
        for cond in rule.conditions:
            cc, fs = _compile_condition(rule, cond)
            compiled.append(cc)
            for f in fs:
                features.setdefault(f.key, f)
        every = 1 if rule.repeat == "each_day" else None
        if isinstance(rule.repeat, Repeat):
            every = int(_param(rule, rule.repeat.every_days))
            if every < 1:
                raise ValueError(f"rule {rule.id!r}: repeat every_days must be at least 1 day")
        cr = CompiledRule(rule.id, rule.step, tuple(compiled), every)
        # the rule may fire if it never has, or (when it repeats) enough days have passed
        gate: dict[str, Any] = {cr.fired_key: 0}
        if every is not None:
            gate = {"$or": [gate, _cmp(">=", cr.since_key, every)]}
        tests = [{"kind": FACT_KIND}, gate, *(c.test for c in compiled)]
        definition[rule.id] = {"all": [{"m": {"$and": tests}}], "pri": pri + 1}
        rules.append(cr)
    steps = tuple(sorted({r.step for r in ruleset.rules if r.step is not None}))
    name = f"{ruleset.ruleset.id}-{ruleset.content_hash()[:16]}"
    return CompiledRuleset(name, tuple(rules), tuple(features.values()), steps, definition)


def _number(x: float | int) -> float | int:
    """A number the engine's JSON parser reads as written (no NaN, infinity or exponent)."""
    if isinstance(x, bool):
        return int(x)
    if isinstance(x, int):
        return x
    if not math.isfinite(x):
        raise EngineError(f"non-finite number {x!r} cannot go to the engine")
    r = round(x, 6)
    if "e" in repr(r).lower():
        raise EngineError(f"number {x!r} would be written in exponent form, which the engine refuses")
    return r


def djb2(text: str) -> int:
    """The 32-bit string hash durable_rules identifies facts and sessions by."""
    h = 5381
    for b in text.encode():
        h = (h * 33 + b) & 0xFFFFFFFF
    return h


class _QuietHost(_dr.Host):
    """A host whose timer threads are never started: the replay's clock is virtual."""

    def _run(self) -> None:  # noqa: D401 - overrides the thread start-up
        return None


_HOST: _QuietHost | None = None
_REGISTERED: dict[str, list[str]] = {}
_LIVE = threading.Lock()
_SIDS = count(1)


def _host() -> _QuietHost:
    global _HOST
    if _HOST is None:
        _HOST = _QuietHost()
    return _HOST


_PRIME_KIND = "__prime__"


def _noop(c) -> None:  # one parameter, see #18
    return None


def _register_primed(name: str, definition: dict[str, Any]) -> None:
    """Register a ruleset and run one action in it before any real session exists.

    Measured here: in durable_rules 2.0.28, `delete_state` aborts the whole process (a C-level
    "free(): invalid pointer", which Python cannot catch) when no action has ever run in that
    ruleset. A private rule fired once on a throwaway session, then deleted, avoids it.
    """
    primed = dict(definition)
    primed[_PRIME_KIND] = {"all": [{"m": {"kind": _PRIME_KIND}}], "run": _noop}
    _host().register_rulesets({name: primed})
    state = _host().assert_fact(name, {"id": "prime", "sid": _PRIME_KIND, "kind": _PRIME_KIND})
    if isinstance(state, dict) and "exception" in state:
        raise EngineError(f"priming the engine failed: {state['exception']}")
    _host().delete_state(name, _PRIME_KIND)


def _register(compiled: CompiledRuleset) -> list[str]:
    """Register a compiled rule set once per process; return the list its actions write to."""
    if compiled.name in _REGISTERED:
        return _REGISTERED[compiled.name]
    sink: list[str] = []

    def action_for(rule_id: str):
        def action(c):  # one parameter: two would make durable_rules treat it as asynchronous
            sink.append(rule_id)

        return action

    definition = {
        rule_id: dict(body, run=action_for(rule_id)) for rule_id, body in compiled.definition.items()
    }
    _register_primed(compiled.name, definition)
    _REGISTERED[compiled.name] = sink
    return sink


class Session:
    """One patient's pass through the engine: opened, fed facts in day order, then deleted.

    Only one session may be live in a process at a time; this is what keeps patients apart.
    """

    def __init__(self, compiled: CompiledRuleset) -> None:
        self._compiled = compiled
        self._sink = _register(compiled)
        if not _LIVE.acquire(blocking=False):
            raise EngineError("another engine session is live in this process; close it first")
        self.sid = f"s{next(_SIDS)}"
        self._hashes: set[int] = {djb2(self.sid)}
        self._facts = 0
        self._closed = False

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def evaluate(self, fields: dict[str, Any]) -> list[str]:
        """Assert one day's fact; return the ids of the rules that fired on it, in rule order."""
        fact_id = f"{self.sid}.{self._facts}"
        self._facts += 1
        h = djb2(fact_id)
        if h in self._hashes:
            raise EngineError(f"fact id {fact_id!r} shares its engine hash with an earlier id")
        self._hashes.add(h)
        fact = {"id": fact_id, "sid": self.sid, "kind": FACT_KIND}
        fact.update({k: v if type(v) is int else _number(v) for k, v in fields.items()})
        if len(fact) > 255:
            raise EngineError(f"a fact has {len(fact)} fields; the engine takes at most 255")
        self._sink.clear()
        try:
            state = _host().assert_fact(self._compiled.name, fact)
        except _dr.MessageNotHandledException:
            return []
        except _dr.MessageObservedException as exc:
            raise EngineError(f"the engine took fact {fact_id!r} for one it had seen: {exc}") from None
        if isinstance(state, dict) and "exception" in state:
            raise EngineError(f"a rule action failed inside the engine: {state['exception']}")
        order = {r.rule_id: i for i, r in enumerate(self._compiled.rules)}
        return sorted(set(self._sink), key=order.__getitem__)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            _host().delete_state(self._compiled.name, self.sid)
        except Exception as exc:  # the C module's own error type
            # 309: the engine never created state for this sid (no fact reached a rule); nothing
            # to delete. Any other failure is a real one.
            if "309" not in str(exc):
                raise EngineError(f"could not delete session {self.sid}: {exc}") from None
        finally:
            _LIVE.release()


def raw_assert_rate(n: int = 20000) -> float:
    """Facts per second of bare `assert_fact` on a one-rule set, for benchmarks to compare with."""
    import time

    name = f"raw-assert-{next(_SIDS)}"
    _register_primed(
        name, {"r": {"all": [{"m": {"$and": [{"kind": "raw"}, {"$gt": {"x": 1000000}}]}}], "run": _noop}}
    )
    sid = f"raw{next(_SIDS)}"
    t0 = time.perf_counter()
    for i in range(n):
        try:
            _host().assert_fact(name, {"id": f"r{i}", "sid": sid, "kind": "raw", "x": i})
        except _dr.MessageNotHandledException:
            pass
    elapsed = time.perf_counter() - t0
    _host().delete_state(name, sid)
    return n / elapsed

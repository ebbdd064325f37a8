"""Rule evaluation in durable_rules: the only module that knows the engine exists.

A rule set compiles in two parts. The *program* is a durable_rules ruleset in its JSON form, one
rule per rule of the file, each a conjunction of comparisons on a single fact; it is built from
the rule set's shape (ids, order, conditions, operators, parameter names) and never from a
parameter's value, so it is compiled and registered once per shape and serves every value a
sweep or a `--set` gives. The values travel as data: every parameter a condition compares with
is a field of each day's fact, and the program compares one field of the fact with another
(`{"$gte": {"f3": {"$m": "f9"}}}`). The *binding* (per rule set, cheap) says which Python
feature fills which engine field, and holds the parameter values. Python builds the day's
numbers; the engine makes every decision and Python reads back which rules fired.

Why it is built the way it is (see shared/notes/durable-rules.md for each trap):
- one fact per evaluation, asserted (not posted) so that every matching rule fires (#15);
- every rule tests a `kind` field first, so nothing fires on presence alone (#17);
- no Python runs inside the engine: the registered actions are no-ops with one parameter (#18)
  that are never called; a session takes the names of the rules whose actions a fact made due
  from the engine itself, completing each as durable_rules' wrapper does (Session._due), and
  checks the state for a swallowed exception (#4);
- a fact goes to the C function as JSON text built here (no json.dumps, and no exception object
  built for the many facts that match nothing, #2): the members of each fact key come from
  precomputed field heads (CompiledRuleset.members);
- a program is registered once per process under a name carrying its shape's hash (#7), so a
  sweep of 10,000 values registers one ruleset, not 10,000 that are never freed;
- the host's background threads are never started: the replay has its own virtual clock (#9, #20);
- one session lives at a time, and it is deleted before the next begins (#11-#14); a long pass
  goes on in a new session every SESSION_FACTS facts, since the engine keeps each matched fact
  until its session is deleted and every rule here reads one fact;
- days-since counts may be written at a bound past which every test on them answers the same
  (saturation), so that the replay can leave out a day whose fact reads as the last quiet one;
- engine field names are short, generated names (f0, f1, ...) checked to share no 32-bit FNV-1a
  hash with each other or with id, sid, kind and $s (the engine's own hash, see limits.py): two
  rule ids whose names would collide can no longer merge into one field;
- fact ids are checked for unique FNV-1a hashes within a session, the session's `sid-` state id
  included (#13);
- every number is written into the fact's JSON by this module, in positional form that the
  engine's parser reads back as exactly the same double (its parser refuses `1e-05`, #16), so
  the engine compares the very value the user gave; only a non-finite number is refused;
- a rule set past the engine's fixed limits (limits.py) is refused when it is validated, so
  `escalation check` refuses it too, instead of hanging in create_ruleset or failing mid-replay;
- every error names the rule set file, the rule and the value where they are known.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property, lru_cache
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
from escalation.derive.memo import ByIdentity
from escalation.evaluate.limits import (
    FNV_PRIME,
    MAX_FACT_FIELDS,
    Problem,
    check_definition,
    fnv1a,
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
from escalation.load.wording import condition_text

FACT_KIND = "day"
_OPS = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}
_SUFFIXES = ("", "__lt", "__le", "__gt", "__ge")  # an exact reading, or one known only by a bound
_RESERVED = ("id", "sid", "kind", "$s")  # fields of every fact, and of the engine's state fact
_EXACT_INT = 2**53  # beyond this an int compared with a double is no longer exact
# A session holds every fact that matched a rule (about 8 KB each in the engine, measured), until it
# is deleted. Every rule compiled here reads one fact, so a pass may close its session and go on in
# a new one without changing any answer; the replay and the explain program do so after this many.
SESSION_FACTS = 500


class EngineError(RuntimeError):
    """The engine refused something, or did something the replay cannot trust; never ignored.

    It says where the cause lives, as far as it is known: the rule set file and line, the rule,
    and the offending value, so `str(exc)` reads `FILE:LINE (rule 'x'): message`.
    """

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 rule: str | None = None, value: Any = None) -> None:
        super().__init__(message)
        self.message, self.file, self.line, self.rule, self.value = message, file, line, rule, value

    def __str__(self) -> str:
        place = (self.file or "") + (f":{self.line}" if self.file and self.line else "")
        if self.rule:
            place += f" (rule {self.rule!r})" if place else f"rule {self.rule!r}"
        return f"{place}: {self.message}" if place else self.message


@dataclass(frozen=True)
class CompiledCondition:
    """One condition as the engine tests it, and how to show the values that met it."""

    text: str
    fields: tuple[str, ...]  # the Python fact's keys, as shown in results
    test: dict[str, Any]  # the engine's test, on engine field names
    feature: Feature | None = None  # what the condition reads, for a report to trace a value back


@dataclass(frozen=True)
class CompiledRule:
    rule_id: str
    step: int | None
    conditions: tuple[CompiledCondition, ...]
    every_days: int | None

    @cached_property  # one string, shared by every fact's dict (a long record keeps thousands)
    def fired_key(self) -> str:
        return f"fired__{self.rule_id}"

    @cached_property
    def since_key(self) -> str:
        return f"since_fired__{self.rule_id}"


Slot = tuple[Any, ...]  # what an engine field holds, in terms of the rule set's shape


@dataclass(frozen=True)
class Program:
    """One durable_rules ruleset: the shape of a rule set, with every parameter value left out."""

    name: str
    definition: dict[str, Any]  # rule id -> JSON rule (no action)
    tests: dict[tuple[str, int], dict[str, Any]]  # (rule id, condition index) -> engine test
    slots: dict[Slot, tuple[str, ...]]  # feature slot -> engine field names
    params: dict[tuple[str, str], str]  # (rule id, parameter) -> engine field name
    rule_of: dict[str, str]  # engine field -> the first rule that reads it, for messages
    problem: Problem | None  # a limit of the engine this shape goes past


@dataclass(frozen=True)
class CompiledRuleset:
    """A rule set with its values: the program, and how a day's features fill its fields."""

    name: str
    rules: tuple[CompiledRule, ...]
    features: tuple[Feature, ...]
    steps: tuple[int, ...]
    definition: dict[str, Any]
    program: Program
    binding: dict[str, tuple[str, ...]]  # Python fact key -> engine fields it fills
    constants: str  # the kind and parameter fields, as JSON members, the same on every fact
    origin: Any = None  # the Ruleset's origin method: where it (or a rule) was read from
    order: dict[str, int] = field(default_factory=dict)
    heads: dict[str, tuple[str, ...]] = field(default_factory=dict)  # Python fact key -> '"fN":' of each field

    def members(self, key: str, value: Any, day: Any = None) -> str:
        """The JSON members one fact key fills (`"f3":12.5` or `"f13":1,"f50":1`); "" when the
        program reads no field of it. Every number exact (json_number), a bad one an EngineError."""
        heads = self.heads.get(key)
        if not heads:
            return ""
        try:
            text = json_number(value)
        except (ValueError, TypeError) as exc:
            rule = self.program.rule_of.get(self.binding[key][0])
            raise EngineError(f"{key} = {value!r} on day {day}: {exc}", value=value, **self.where(rule)) from None
        return heads[0] + text if len(heads) == 1 else ",".join(h + text for h in heads)

    def where(self, rule_id: str | None) -> dict[str, Any]:
        """file, line and rule for an EngineError about this rule set (or one of its rules)."""
        return _where(self.origin, rule_id)


class _Origin:
    """Where a rule set and each of its rules were read from, as its origin method said when it
    was compiled: a compiled rule set is kept while its rule set lives (derive/memo.py), and must
    not keep it alive itself, yet its errors must still name the file after the rule set is gone."""

    __slots__ = ("_where",)

    def __init__(self, ruleset: Ruleset) -> None:
        self._where = {r: ruleset.origin(r) for r in (None, *(rule.id for rule in ruleset.rules))}

    def __call__(self, rule_id: str | None) -> tuple[str | None, int | None]:
        return self._where.get(rule_id) or self._where[None]


def _where(origin: Any, rule_id: str | None) -> dict[str, Any]:
    file, line = origin(rule_id) if origin is not None else (None, None)
    return {"file": file, "line": line, "rule": rule_id}


@lru_cache(maxsize=None)
def step_key(step: int) -> str:
    return f"step_flagged__{step}"


@lru_cache(maxsize=None)
def step_days_key(step: int) -> str:
    """Days since the step was first flagged; absent until it has been."""
    return f"step_days__{step}"


# --- the program: built from the shape alone ---------------------------------------------------


class _Names:
    """Short engine field names, none sharing an FNV-1a hash with another or with a reserved one."""

    def __init__(self) -> None:
        self.taken = {fnv1a(n) for n in _RESERVED}
        self.slots: dict[Slot, tuple[str, ...]] = {}
        self.rule_of: dict[str, str] = {}
        self._n = count()

    def of(self, slot: Slot, rule_id: str, width: int = 1) -> tuple[str, ...]:
        if slot not in self.slots:
            self.slots[slot] = tuple(self._next() for _ in range(width))
            for name in self.slots[slot]:
                self.rule_of[name] = rule_id
        return self.slots[slot]

    def _next(self) -> str:
        while True:
            name = f"f{next(self._n)}"
            if fnv1a(name) not in self.taken:
                self.taken.add(fnv1a(name))
                return name


def _window_ref(rule: Rule, name: str | None) -> Any:
    """A look-back window as the shape knows it: 'that day', 'any', or which parameter."""
    return name if name in (None, "any") else (rule.id, name)


def _slot(rule: Rule, cond: Any) -> tuple[Slot, int]:
    """The feature a condition reads, independent of parameter values, and how many fields it takes."""
    if isinstance(cond, MeasureCondition):
        return ("measure", cond.measure, _window_ref(rule, cond.within_days)), len(_SUFFIXES)
    if isinstance(cond, TrendCondition):
        return ("trend", cond.trend, _window_ref(rule, cond.window_days)), 1
    if isinstance(cond, GivenCondition):
        return ("since", "first", tuple(cond.given)), 1
    if isinstance(cond, SinceCondition):
        return ("since", cond.of, tuple(cond.since)), 1
    if isinstance(cond, ActiveCondition):
        return ("active", cond.active), 1
    if isinstance(cond, FindingCondition):
        return ("finding", cond.finding, _window_ref(rule, cond.within_days)), 1
    if isinstance(cond, DiagnosisCondition):
        return ("dx", cond.diagnosis), 1
    if isinstance(cond, StepCondition):
        return ("step" if cond.for_days is None else "step_days", cond.step_flagged), 1
    raise TypeError(f"no compilation for {type(cond).__name__}")  # pragma: no cover


def _cmp(op: str, key: str, right: Any) -> dict[str, Any]:
    return {_OPS[op]: {key: right}}


def _bounded(op: str, keys: tuple[str, ...], t: Any) -> dict[str, Any]:
    """A comparison that also holds for censored readings known to satisfy it.

    A reading may be exact (keys[0]), or only bounded: __lt (< x), __le (<= x), __gt (> x),
    __ge (>= x). The condition holds when the reading is certainly on the right side. Only one
    of the alternatives can hold on a fact: a reading is exact, or bounded (limits.py counts on it).
    """
    exact, lt, le, gt, ge = keys
    if op in ("<", "<="):
        alts = [_cmp(op, exact, t), _cmp("<=", lt, t), _cmp(op, le, t)]
    else:
        alts = [_cmp(op, exact, t), _cmp(">=", gt, t), _cmp(op, ge, t)]
    return {"$or": alts}


def _engine_test(rule: Rule, cond: Any, names: _Names, params: dict[tuple[str, str], str]) -> dict[str, Any]:
    """One condition as the engine tests it; every parameter is a reference to a fact field."""

    def param(name: str) -> dict[str, str]:
        if (rule.id, name) not in params:
            params[(rule.id, name)] = names.of(("param", rule.id, name), rule.id)[0]
        return {"$m": params[(rule.id, name)]}

    slot, width = _slot(rule, cond)
    keys = names.of(slot, rule.id, width)
    if isinstance(cond, MeasureCondition):
        return _bounded(cond.op, keys, param(cond.threshold))
    if isinstance(cond, TrendCondition):
        return {"not_decreasing": _cmp(">=", keys[0], 0), "rising": _cmp(">=", keys[0], 1),
                "decreasing": _cmp("<=", keys[0], -1)}[cond.direction]
    if isinstance(cond, GivenCondition):
        return _cmp(">=", keys[0], 0)
    if isinstance(cond, SinceCondition):
        return _cmp(cond.op, keys[0], param(cond.days))
    if isinstance(cond, ActiveCondition):
        return {keys[0]: int(cond.in_place)}
    if isinstance(cond, StepCondition) and cond.for_days is not None:
        return _cmp(">=", keys[0], param(cond.for_days))
    return {keys[0]: 1}  # finding, diagnosis, step flagged


def _gate(rule: Rule, names: _Names, params: dict[tuple[str, str], str]) -> dict[str, Any]:
    """The rule may fire if it never has, or (when it repeats) enough days have passed.

    The days-since field exists only once the rule has fired, so the two never hold together.
    """
    gate: dict[str, Any] = {names.of(("fired", rule.id), rule.id)[0]: 0}
    if rule.repeat == "once":
        return gate
    since = names.of(("since_fired", rule.id), rule.id)[0]
    if isinstance(rule.repeat, Repeat):
        name = rule.repeat.every_days
        params[(rule.id, name)] = names.of(("param", rule.id, name), rule.id)[0]
        return {"$or": [gate, _cmp(">=", since, {"$m": params[(rule.id, name)]})]}
    return {"$or": [gate, _cmp(">=", since, 1)]}


def _shape(ruleset: Ruleset) -> str:
    """The rule set as the engine sees it: ids, order, conditions and repeats, no values.

    Dumped whole, by the rule set's own serializer: dumping each condition by itself would build
    a serializer for each kind of condition, about 1.3 ms of a cold replay."""
    dumped = ruleset.model_dump(mode="json", include={"ruleset": {"id"},
                                                      "rules": {"__all__": {"id", "repeat", "conditions"}}})
    rules = [[r["id"], r["repeat"], r["conditions"]] for r in dumped["rules"]]
    return json.dumps([dumped["ruleset"]["id"], rules], sort_keys=True, separators=(",", ":"))


def _fields_problem(ruleset: Ruleset, per_rule: list[int]) -> Problem | None:
    """The first rule from which a day's fact could carry more fields than the engine takes."""
    total = 3  # id, sid, kind
    for rule, n in zip(ruleset.rules, per_rule):
        total += n
        if total > MAX_FACT_FIELDS:
            return Problem(rule.id, (
                f"with rule {rule.id!r} a day's fact could carry {total} fields; the engine takes "
                f"at most {MAX_FACT_FIELDS} (MAX_OBJECT_PROPERTIES 255, state.h:20, error 302 "
                "on reaching it, state.c:1393-1396): use fewer distinct features or parameters"),
                where=("conditions",))
    return None


def _build(ruleset: Ruleset, shape: str) -> Program:
    """The engine program of a shape, and the first engine limit it goes past, if any.

    Rules keep their file order as priority; each is `kind`, its gate, then its conditions, so
    that an engine rule has exactly the conditions of the rule as written.
    """
    names, params = _Names(), {}
    definition: dict[str, Any] = {}
    tests: dict[tuple[str, int], dict[str, Any]] = {}
    per_rule: list[int] = []
    for pri, rule in enumerate(ruleset.rules):
        before = len(names.slots)
        gate = _gate(rule, names, params)
        for j, cond in enumerate(rule.conditions):
            tests[(rule.id, j)] = _engine_test(rule, cond, names, params)
        # the most fields of its new slots a fact can carry: a measure reading is exact, or one
        # bound, or a range (__ge and __le); every other slot is one field
        per_rule.append(sum(min(2, len(w)) for w in list(names.slots.values())[before:]))
        conds = [tests[(rule.id, j)] for j in range(len(rule.conditions))]
        definition[rule.id] = {"all": [{"m": {"$and": [{"kind": FACT_KIND}, gate, *conds]}}], "pri": pri + 1}
    name = f"{ruleset.ruleset.id}-{hashlib.sha256(shape.encode()).hexdigest()[:16]}"
    problem = check_definition(_primed(definition)) or _fields_problem(ruleset, per_rule)
    return Program(name, definition, tests, names.slots, params, names.rule_of, problem)


_PROGRAMS: dict[str, Program] = {}


def program_for(ruleset: Ruleset) -> Program:
    """The engine program for a rule set's shape, built once per shape in a process."""
    shape = _shape(ruleset)
    if shape not in _PROGRAMS:
        _PROGRAMS[shape] = _build(ruleset, shape)
    return _PROGRAMS[shape]


def engine_problem(ruleset: Ruleset) -> Problem | None:
    """What the engine cannot take in this rule set, if anything (for the rule set's validation):
    a value it cannot compare exactly, or a limit its shape goes past."""
    for rule in ruleset.rules:
        for name, p in rule.parameters.items():
            if not math.isfinite(p.value):
                return Problem(rule.id, f"parameter {name!r} must be a finite number for the engine to "
                               f"compare it, not {p.value!r}", where=("parameters", name, "value"))
    return program_for(ruleset).problem


# --- the binding: the values of one rule set ---------------------------------------------------


def _param(rule: Rule, name: str) -> float:
    return rule.parameters[name].value


def _window(rule: Rule, name: str | None) -> int | None:
    """A look-back window in whole days; None means 'any time before'."""
    if name == "any":
        return None
    if name is None:
        return 0
    return int(math.floor(_param(rule, name)))


def _feature(rule: Rule, cond: Any) -> tuple[Feature | None, tuple[str, ...], str]:
    """The Python feature a condition reads, its fact keys, and the condition as text."""
    text = condition_text(cond, rule, "full")
    if isinstance(cond, MeasureCondition):
        f = MeasureFeature(cond.measure, _window(rule, cond.within_days))
        return f, tuple(f.key + s for s in _SUFFIXES), text
    if isinstance(cond, TrendCondition):
        f = TrendFeature(cond.trend, _window(rule, cond.window_days) or 0)
    elif isinstance(cond, GivenCondition):
        f = SinceFeature(tuple(cond.given), "first")
    elif isinstance(cond, SinceCondition):
        f = SinceFeature(tuple(cond.since), cond.of)
    elif isinstance(cond, ActiveCondition):
        f = ActiveFeature(cond.active)
    elif isinstance(cond, FindingCondition):
        f = FindingFeature(cond.finding, _window(rule, cond.within_days) or 0)
    elif isinstance(cond, DiagnosisCondition):
        f = DiagnosisFeature(cond.diagnosis)
    else:
        return None, (step_key(cond.step_flagged) if cond.for_days is None else step_days_key(cond.step_flagged),), text
    return f, (f.key,), text


def _every(rule: Rule) -> int | None:
    if rule.repeat == "each_day":
        return 1
    if isinstance(rule.repeat, Repeat):
        return int(_param(rule, rule.repeat.every_days))
    return None


def _bind(binding: dict[str, tuple[str, ...]], keys: tuple[str, ...], fields: tuple[str, ...]) -> None:
    for k, f in zip(keys, fields):
        if f not in binding.get(k, ()):
            binding[k] = (*binding.get(k, ()), f)


def _constants(ruleset: Ruleset, program: Program, origin: Any) -> str:
    """The members every fact of this rule set carries: its kind and each parameter's value."""
    members = [f'"kind":"{FACT_KIND}"']
    for (rule_id, name), f in program.params.items():
        value = ruleset.rule(rule_id).parameters[name].value
        try:
            members.append(f'"{f}":{json_number(value)}')
        except ValueError as exc:
            raise EngineError(f"parameter {name} = {value!r}: {exc}", value=value, **_where(origin, rule_id)) from None
    return ",".join(members)


_COMPILED: ByIdentity[CompiledRuleset] = ByIdentity(64)  # a grid of rule sets, replayed over a chunk


def compile_ruleset(ruleset: Ruleset) -> CompiledRuleset:
    """A validated rule set as its (shared, cached) engine program plus its own values; made once
    for a rule set object and kept while it is in use (derive/memo.py), as a batch chunk replays
    each grid point's rule set against scenario after scenario."""
    return _COMPILED.get((ruleset,), (), lambda: _compile(ruleset))


def _compile(ruleset: Ruleset) -> CompiledRuleset:
    program = program_for(ruleset)
    origin = getattr(ruleset, "origin", None)
    if program.problem is not None:
        raise EngineError(program.problem.message, **_where(origin, program.problem.rule_id))
    rules: list[CompiledRule] = []
    features: dict[str, Feature] = {}
    binding: dict[str, tuple[str, ...]] = {}
    for rule in ruleset.rules:
        compiled = []
        for j, cond in enumerate(rule.conditions):
            f, keys, text = _feature(rule, cond)
            _bind(binding, keys, program.slots[_slot(rule, cond)[0]])
            compiled.append(CompiledCondition(text, keys, program.tests[(rule.id, j)], f))
            if f is not None:
                features.setdefault(f.key, f)
        cr = CompiledRule(rule.id, rule.step, tuple(compiled), _every(rule))
        _bind(binding, (cr.fired_key,), program.slots[("fired", rule.id)])
        if ("since_fired", rule.id) in program.slots:
            _bind(binding, (cr.since_key,), program.slots[("since_fired", rule.id)])
        rules.append(cr)
    steps = tuple(sorted({r.step for r in ruleset.rules if r.step is not None}))
    return CompiledRuleset(program.name, tuple(rules), tuple(features.values()), steps, program.definition,
                           program, binding, _constants(ruleset, program, origin),
                           None if origin is None else _Origin(ruleset),
                           {r.rule_id: i for i, r in enumerate(rules)},
                           {k: tuple(f'"{f}":' for f in fields) for k, fields in binding.items()})


_ORDER = frozenset(_OPS.values())
_TESTS: dict[str, dict[str, list[Any]]] = {}  # program name -> engine field -> what it is ordered against


def _tests_on(node: Any, out: dict[str, list[Any]]) -> None:
    """Every test of the program on each engine field: a number it is ordered against, ("$m",
    field) when that number is a parameter's field, or None for a test of any other kind (an
    equality, say)."""
    if isinstance(node, list):
        for item in node:
            _tests_on(item, out)
        return
    for op, arg in node.items():
        if op in ("$and", "$or"):
            _tests_on(arg, out)
        elif op in _ORDER:
            for name, right in arg.items():
                if isinstance(right, dict):
                    right = ("$m", right["$m"]) if set(right) == {"$m"} else None
                elif isinstance(right, bool) or not isinstance(right, (int, float)):
                    right = None
                out.setdefault(name, []).append(right)
        else:
            out.setdefault(op, []).append(None)


def saturation(compiled: CompiledRuleset, keys: Iterable[str] | None = None) -> dict[str, int | None]:
    """Python fact key -> a bound at and above which its value compares like the bound itself.

    Days-since counts grow by one a day for as long as a record lasts, but the program only ever
    orders them against numbers (a parameter's value, or 0 and 1): once a count passes the largest
    of them (floor + 1), every test on it gives the same answer for any larger count. The replay
    writes min(count, bound) into the engine's fact, so that a day whose only change is a count
    past its bound gives the same fact text as the day before, whose answer the engine has given
    (the values shown in results stay exact). None: some test on a field of the key is not such an
    ordering, so the value is always written as it is. `keys`: only these (default: every key).
    """
    if compiled.name not in _TESTS:  # once per program (a shape), whatever its values
        tests: dict[str, list[Any]] = {}
        for rule in compiled.definition.values():
            for pattern in rule["all"]:
                _tests_on(pattern["m"], tests)
        _TESTS[compiled.name] = tests
    tests = _TESTS[compiled.name]
    params = json.loads("{" + compiled.constants + "}")
    bounds: dict[str, int | None] = {}
    for key in compiled.binding if keys is None else keys:
        fields = compiled.binding.get(key, ())
        rights = [params.get(r[1]) if isinstance(r, tuple) else r for f in fields for r in tests.get(f, [])]
        ok = all(isinstance(r, (int, float)) and not isinstance(r, bool) for r in rights)
        bounds[key] = math.floor(max(rights, default=0)) + 1 if ok else None
    return bounds


# --- numbers -----------------------------------------------------------------------------------


def json_number(x: float) -> str:
    """x as JSON text the engine's parser reads back as exactly the same number.

    Python's shortest round-trip digits (repr), in positional form: the engine's parser takes
    `0.00001` but not `1e-05` (json.c:316-363 reads an exponent only after a fraction), and
    its atof/atoll then give back the very double or integer. A double always keeps a '.', so
    that the engine does not read a large whole double into a 64-bit integer.
    """
    if type(x) is int:
        if -_EXACT_INT <= x <= _EXACT_INT:
            return str(x)
        raise ValueError(f"whole number {x} is too large to compare exactly with a decimal")
    if isinstance(x, bool):
        return str(int(x))
    text = repr(float(x))
    if "e" in text or "n" in text:  # an exponent, inf or nan
        if not math.isfinite(x):
            raise ValueError(f"{x!r} is not a finite number")
        text = format(Decimal(text), "f")
        text += "" if "." in text else ".0"
    return text


# --- the host and the sessions -----------------------------------------------------------------


class _QuietHost(_dr.Host):
    """A host whose timer threads are never started: the replay's clock is virtual."""

    def _run(self) -> None:  # noqa: D401 - overrides the thread start-up
        return None


_HOST: _QuietHost | None = None
_REGISTERED: set[str] = set()
_LIVE = threading.Lock()
_SIDS = count(1)
_C = _dr.durable_rules_engine
_ERRORS = {  # rules.h:1-41, the codes this module can meet
    1: "the fact matched no rule", 2: "a fact with this id was already asserted",
    101: "out of memory", 106: "too many rules or tests on one field (rete.c:833)",
    113: "too many $and/$or groups in one rule (MAX_SEQUENCE_EXPRESSIONS)",
    201: "unreadable value", 203: "unreadable number", 204: "unreadable object",
    302: "too many fields in one fact (MAX_OBJECT_PROPERTIES)",
    303: "too many rules tested at once (MAX_STACK_SIZE)", 309: "no such session",
}


def _host() -> _QuietHost:
    global _HOST
    if _HOST is None:
        _HOST = _QuietHost()
    return _HOST


def _explain(exc: Exception) -> str:
    """The engine's error text with what its code means."""
    text = str(exc)
    code = text.rsplit(":", 1)[-1].strip()
    meaning = _ERRORS.get(int(code)) if code.isdigit() else None
    return f"{text} ({meaning})" if meaning else text


_PRIME_KIND = "__prime__"


def _noop(c) -> None:  # one parameter, see #18
    return None


def _primed(definition: dict[str, Any]) -> dict[str, Any]:
    """The definition as registered: with the private rule that primes it (see _register_primed)."""
    return {**definition, _PRIME_KIND: {"all": [{"m": {"kind": _PRIME_KIND}}]}}


def _register_primed(name: str, definition: dict[str, Any]) -> None:
    """Register a ruleset and run one action in it before any real session exists.

    Measured here: in durable_rules 2.0.28, `delete_state` aborts the whole process (a C-level
    "free(): invalid pointer", which Python cannot catch) when no action has ever run in that
    ruleset. A private rule fired once on a throwaway session, then deleted, avoids it.
    """
    primed = _primed(definition)
    primed[_PRIME_KIND] = dict(primed[_PRIME_KIND], run=_noop)
    _host().register_rulesets({name: primed})
    state = _host().assert_fact(name, {"id": "prime", "sid": _PRIME_KIND, "kind": _PRIME_KIND})
    if isinstance(state, dict) and "exception" in state:
        raise EngineError(f"priming the engine failed: {state['exception']}")
    _host().delete_state(name, _PRIME_KIND)


def _register(compiled: CompiledRuleset) -> None:
    """Register a program once per process.

    Each rule gets an action that does nothing and is never called: a session takes the names of
    the rules whose actions are due from the engine itself (Session.assert_members), which is all
    the replay needs to know. durable_rules wants a function for every rule all the same.
    """
    if compiled.name in _REGISTERED:
        return
    definition = {rule_id: dict(body, run=_noop) for rule_id, body in compiled.definition.items()}
    try:
        _register_primed(compiled.name, definition)
    except _C.error as exc:
        raise EngineError(f"the engine refused the rule set: {_explain(exc)}", **compiled.where(None)) from None
    _REGISTERED.add(compiled.name)


class Session:
    """One patient's pass through the engine: opened, fed facts in day order, then deleted.

    Only one session may be live in a process at a time; this is what keeps patients apart.
    """

    def __init__(self, compiled: CompiledRuleset) -> None:
        self._compiled = compiled
        _register(compiled)
        self._rules = _host().get_ruleset(compiled.name)
        if not _LIVE.acquire(blocking=False):
            raise EngineError("another engine session is live in this process; close it first")
        self.sid = f"s{next(_SIDS)}"
        self._hashes: set[int] = {fnv1a(self.sid), fnv1a(f"sid-{self.sid}")}
        self._facts = 0
        self._closed = False
        self._prefix = f"{self.sid}."
        self._prefix_hash = fnv1a(self._prefix)  # fact ids are the sid, a dot and a counter
        self._tail_hashes: list[int] = []  # the hash of each fact id so far, by counter
        self._open = f'{{"id":"{self._prefix}'
        self._sid_member = f'","sid":"{self.sid}",'
        self._constants = compiled.constants.count(",") + 1  # kind and the parameters
        self._handle = self._rules._handle

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fact_id(self) -> str:
        """The next fact id (sid, dot, counter), checked for an engine hash of its own.

        The counter's text is the text of counter // 10 and one more digit, so its hash is that
        one's hash continued by one digit (limits.fnv1a continues a hash): one step per fact."""
        n = self._facts
        self._facts += 1
        base = self._prefix_hash if n < 10 else self._tail_hashes[n // 10]
        h = ((base ^ (48 + n % 10)) * FNV_PRIME) & 0xFFFFFFFF  # the digit's ASCII code
        self._tail_hashes.append(h)
        if h in self._hashes:
            raise EngineError(f"fact id {self._prefix}{n!r} shares its engine hash with an earlier id")
        self._hashes.add(h)
        return str(n)

    def members(self, fields: dict[str, Any]) -> tuple[str, int]:
        """The fact's JSON members after id and sid (its constants first), engine field names and
        every number exact, and how many fields the whole fact has."""
        c = self._compiled
        day = fields.get("day")
        parts, n = [c.constants], 2 + self._constants  # id, sid, kind and the parameters
        for key, value in fields.items():
            text = c.members(key, value, day)
            if text:
                parts.append(text)
                n += len(c.heads[key])
        return ",".join(parts), n

    def evaluate(self, fields: dict[str, Any]) -> list[str]:
        """Assert one day's fact; return the ids of the rules that fired on it, in rule order."""
        return self.assert_members(*self.members(fields), fields.get("day"))

    def assert_members(self, body: str, n_fields: int, day: Any = None) -> list[str]:
        """Assert one fact given as its members after id and sid (`Session.members`, or built the
        same way from `CompiledRuleset.members`); the ids of the rules that fired, in rule order.

        This is the whole of the engine call: the C function with the fact's JSON text (no
        json.dumps, no exception built for a fact that matches nothing), its return code checked as
        durable_rules' own wrapper checks it, then the actions the fact made due, taken from the
        engine one by one as the wrapper takes them (Ruleset.do_actions, _flush_actions), without
        its closures: the state written back unchanged, each action completed, an action abandoned
        if the engine fails on it.
        """
        if n_fields > MAX_FACT_FIELDS:
            raise EngineError(f"a fact has {n_fields} fields; the engine takes at most {MAX_FACT_FIELDS}",
                              **self._compiled.where(None))
        tail = self._fact_id()
        try:
            code, handle = _C.assert_fact(self._handle, self._open + tail + self._sid_member + body + "}")
        except _C.error as exc:
            raise EngineError(f"the engine refused the fact of day {day}: {_explain(exc)}",
                              **self._compiled.where(None)) from None
        if code == 1:  # matched no rule
            return []
        if code == 2:
            raise EngineError(f"the engine took fact {self._prefix + tail!r} for one it had seen")
        return self._due(handle if code == 0 else 0)

    def _due(self, state_handle: int) -> list[str]:
        """The rules whose actions the last fact made due, each action completed in the engine."""
        fired: set[str] = set()
        try:
            started = _C.start_action_for_state(self._handle, state_handle)
            if started:
                state, message = started[0], started[1]
                if '"exception"' in state:  # never set here: nothing runs inside the engine
                    raise EngineError(f"a rule action failed inside the engine: {state}")
                while message:
                    fired.add(self._action_name(message))
                    _C.update_state(self._handle, state)
                    message = _C.complete_and_start_action(self._handle, state_handle)
        except _C.error as exc:
            with suppress(_C.error):
                _C.abandon_action(self._handle, state_handle)
            raise EngineError(f"the engine failed while completing an action: {_explain(exc)}",
                              **self._compiled.where(None)) from None
        return sorted(fired, key=self._compiled.order.__getitem__)

    def _action_name(self, message: str) -> str:
        """The rule an action message is for: its one key, `{"rule-id": {"m": fact}}`."""
        end = message.find('"', 2)
        name = message[2:end] if message.startswith('{"') and end > 2 else None
        if name not in self._compiled.order or message[end:end + 2] != '":':
            name = next(iter(json.loads(message)))
        if name not in self._compiled.order:
            raise EngineError(f"the engine named an action for an unknown rule {name!r}", **self._compiled.where(None))
        return name

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

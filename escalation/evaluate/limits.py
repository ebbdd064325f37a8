"""durable_rules' fixed limits, and a dry run of how it builds a ruleset, to check them first.

durable_rules 2.0.28 sizes its Rete network with compile-time constants and reports an overflow
late, badly, or never: as an uncaught error code when a fact arrives, or by looping for ever
inside `create_ruleset` (where Ctrl-C is not seen). This module repeats, in Python, what the C
code does with a ruleset's JSON (src/rules/rete.c, createTree -> createBeta -> createAlpha ->
findAlpha / linkAlpha) and counts what the engine counts, so that a rule set that would not fit
is refused when it is loaded, with the rule that crosses the line.

The limits, as in the unpacked source (durable_rules-2.0.28/src/rules/):

- MAX_STACK_SIZE 64 (events.c:18). handleAlpha (events.c:1716-1778) walks the alpha network
  depth first from one fixed stack: popping a node pushes every child that the fact matches,
  and one push too many ends the fact with error 303 (ERR_MAX_STACK_SIZE, rules.h:26). Every
  rule of a rule set begins with the same `kind` test, so each rule whose first test can hold
  is one entry on that stack; the rules engine.py compiles add nothing deeper down (one
  condition follows another, and at most one alternative of an `$or` holds), so a rule set
  takes at most 64 rules, and 65 fail on the first day they are all open.
- MAX_SEQUENCE_EXPRESSIONS 32 (rete.h:41). Each `$and` and `$or` of a rule writes two entries
  (start, end) into the rule's expression sequence (rete.c:43-57, GET_EXPRESSION /
  APPEND_EXPRESSION), and reaching 32 is error 113 (ERR_EXPRESSION_LIMIT_EXCEEDED) in
  create_ruleset: 31 entries per rule, that is 15 `$and`/`$or` groups.
- NEXT_BUCKET_LENGTH 512, HASH_MASK 0x1F (rules.h:47, 50). A node's tests on other fields sit
  in an open-addressed table of 512 slots. linkAlpha reports a full table (rete.c:833-835,
  error 106), but findAlpha (rete.c:1001) and handleAlpha (events.c:1749) probe it until they
  meet an empty slot, and a full table has none: the 513th child hangs create_ruleset, and 512
  hang every fact. At most 511 children per node.
- NEXT_LIST_LENGTH 128, BETA_LIST_LENGTH 256 (rules.h:48-49). Zero-terminated lists whose
  overflow checks (rete.c:790, 812) only fire after reading past the end: at most 127 and 255.
- MAX_ACTIONS 4096 (rete.c:41, checked at rete.c:1748): rules per ruleset.
- MAX_OBJECT_PROPERTIES 255 (state.h:20). setObjectProperty counts a fact's fields and fails
  with error 302 when the count *reaches* 255 (state.c:1393-1396): 254 fields, id and sid
  included. Fields are found by hash alone (getObjectProperty, state.c:1360-1375).
- Names are hashed with 32-bit FNV-1a (json.c:401-436 for names read from JSON, state.c:157
  fnv1Hash32 for fact ids, `sid-` state ids and session ids; basis and prime in json.h:20-21)
  and compared by hash only: two field names with one hash are one field to the engine, and
  two fact ids with one hash in a session are one fact. Ruleset and rule names are kept as
  strings (the Python layer finds rulesets in a dict), so they are not hashed.

Counting the stack assumes what the compiler in engine.py guarantees: of the alternatives of
one `$or`, at most one can hold on any fact it builds (a reading is exact or bounded, never
both; a rule's days-since-fired field exists only once it has fired). If that were ever false,
the engine would stop with error 303 and the replay with an EngineError, never silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MAX_STACK = 64  # events.c:18 MAX_STACK_SIZE
MAX_EXPRESSIONS = 31  # rete.h:41 MAX_SEQUENCE_EXPRESSIONS 32; error on reaching it
MAX_CHILDREN = 511  # rules.h:47 NEXT_BUCKET_LENGTH 512; a full table is never left
MAX_NEXT_LIST = 127  # rules.h:48 NEXT_LIST_LENGTH 128, zero-terminated
MAX_BETA_LIST = 255  # rules.h:49 BETA_LIST_LENGTH 256, zero-terminated
MAX_RULES = 4096  # rete.c:41 MAX_ACTIONS
MAX_FACT_FIELDS = 254  # state.h:20 MAX_OBJECT_PROPERTIES 255; error on reaching it

_FNV_BASIS, FNV_PRIME = 0x811C9DC5, 16777619  # json.h:20-21
_OPS = frozenset({"$lt", "$lte", "$gt", "$gte", "$eq", "$neq"})
_FORWARD = "$forward"  # rete.c:1110 createForwardAlpha: an always-pushed joint after an $or


def fnv1a(text: str, start: int = _FNV_BASIS) -> int:
    """The engine's 32-bit hash of a name or id (`hash ^= *str` on a signed char, as on x86).

    `start` continues a hash: fnv1a(b, fnv1a(a)) == fnv1a(a + b), so ids sharing a prefix hash
    only their tail."""
    h = start
    for b in text.encode():
        h = ((h ^ (b if b < 0x80 else b | 0xFFFFFF00)) * FNV_PRIME) & 0xFFFFFFFF
    return h


@dataclass
class _Node:
    """One alpha node: its test, the children it can push, and the rules it ends."""

    test: tuple[Any, ...]
    children: list[int] = field(default_factory=list)  # the 512-slot table
    shared: dict[tuple[Any, ...], int] = field(default_factory=dict)  # children findAlpha reuses
    groups: set[tuple[Any, ...]] = field(default_factory=set)  # children that can hold together
    forwards: list[int] = field(default_factory=list)  # next list: $or joints, always pushed
    betas: int = 0


@dataclass(frozen=True)
class Problem:
    """A limit the rule set goes past: the rule where it does, and what to tell its author."""

    rule_id: str
    message: str
    where: tuple[str, ...] = ("id",)  # the place in the rule to point at


class _DryRun:
    """createTree without the C: the same node sharing, the same counts."""

    def __init__(self) -> None:
        self.nodes = [_Node(("root",))]
        self.expressions = 0

    def rule(self, body: dict[str, Any]) -> int:
        """Add one rule's `all` (one alias each); return its expression-sequence length."""
        longest = 0
        for item in body["all"]:
            (_, expr), = item.items()
            self.expressions = 0
            self._alpha(expr, 0, end=True, group=None)
            longest = max(longest, self.expressions)
        return longest

    def _alpha(self, expr: dict[str, Any], parent: int, end: bool, group: tuple[str, int] | None) -> int:
        name, value = next(iter(expr.items()))
        if name == "$and":
            self.expressions += 2  # OP_AND ... OP_END (rete.c:1188-1222)
            node = parent
            for item in value:
                node = self._alpha(item, node, end=False, group=None)
        elif name == "$or":
            self.expressions += 2  # OP_OR ... OP_END (rete.c:1232-1264)
            node = self._new((_FORWARD, len(self.nodes)))
            for item in value:
                alt = self._alpha(item, parent, end=False, group=("or", node))
                self.nodes[alt].forwards.append(node)
        else:
            node = self._find_or_add(parent, *self._test(name, value), group)
        if end:
            self.nodes[node].betas += 1
        return node

    @staticmethod
    def _test(name: str, value: Any) -> tuple[str, str, Any]:
        """(field, operator, right side) as findAlpha reads them; `{f: v}` means `$eq`."""
        if name in _OPS:
            (prop, right), = value.items()
            return prop, name, right
        return name, "$eq", value

    def _find_or_add(self, parent: int, prop: str, op: str, right: Any, group: tuple[str, int] | None) -> int:
        """findAlpha: reuse a sibling with the same field hash, operator and constant.

        A `{"$m": field}` right side is never reused: compareValue compares string-pool offsets,
        which differ for every rule (rete.c:359-366).
        """
        key = (fnv1a(prop), op, _constant(right))
        here = self.nodes[parent]
        node = here.shared.get(key)
        if node is None:
            node = self._new(key)
            here.children.append(node)
            if key[2] is not None:
                here.shared[key] = node
        here.groups.add(group or _plain_group(key, node))
        return node

    def _new(self, test: tuple[Any, ...]) -> int:
        self.nodes.append(_Node(test))
        return len(self.nodes) - 1

    def stack_peak(self) -> int:
        """The deepest handleAlpha's stack can get on a fact (see the module docstring)."""
        peak: dict[int, int] = {}
        todo = [0]
        while todo:  # children before parents, without recursion (a rule may be long)
            i = todo[-1]
            n = self.nodes[i]
            below = [c for c in (*n.children, *n.forwards) if c not in peak]
            if below:
                todo.extend(below)
                continue
            todo.pop()
            pushes = len(n.groups) + len(n.forwards)
            deepest = max((peak[c] for c in (*n.children, *n.forwards)), default=0)
            peak[i] = 0 if pushes == 0 else max(pushes, pushes - 1 + deepest)
        return peak[0]

    def widest(self) -> tuple[int, int, int]:
        """The longest children table, next list and beta list of any node."""
        return (max(len(n.children) for n in self.nodes), max(len(n.forwards) for n in self.nodes),
                max(n.betas for n in self.nodes))


def _plain_group(test: tuple[Any, ...], node: int) -> tuple[Any, ...]:
    """Children that cannot hold together: `{f: a}` and `{f: b}` test one field for two values."""
    prop, op, constant = test
    return ("eq", prop) if op == "$eq" and constant is not None else ("node", node)


def _constant(right: Any) -> Any:
    """A right side as compareValue sees it: typed constants compare, field references never do."""
    if isinstance(right, dict):
        return None
    return (type(right).__name__, right)


def _dry_run(rules: list[tuple[str, dict[str, Any]]]) -> tuple[_DryRun, dict[str, int]]:
    run = _DryRun()
    lengths = {rule_id: run.rule(body) for rule_id, body in rules}
    return run, lengths


def _network_problem(run: _DryRun) -> str | None:
    """What about the shared network is too big, if anything."""
    children, forwards, betas = run.widest()
    peak = run.stack_peak()
    if peak > MAX_STACK:
        return (f"the engine tests rules from one stack of {MAX_STACK} entries (MAX_STACK_SIZE, "
                f"events.c:18), one for each rule that can be tested on a day, and this rule set "
                f"would need {peak}: at most {MAX_STACK} rules per rule set")
    if children > MAX_CHILDREN or forwards > MAX_NEXT_LIST or betas > MAX_BETA_LIST:
        return (f"a node of the engine's network would have {children} tests, {forwards} joints and "
                f"{betas} rule ends; the engine holds {MAX_CHILDREN}, {MAX_NEXT_LIST} and "
                f"{MAX_BETA_LIST} (rules.h:47-49)")
    return None


def _first_crossing(rules: list[tuple[str, dict[str, Any]]]) -> str:
    """The first rule whose addition makes the shared network too big (it only ever grows)."""
    lo, hi = 1, len(rules)
    while lo < hi:
        mid = (lo + hi) // 2
        if _network_problem(_dry_run(rules[:mid])[0]):
            hi = mid
        else:
            lo = mid + 1
    return rules[lo - 1][0]


def check_definition(definition: dict[str, dict[str, Any]]) -> Problem | None:
    """The first limit a ruleset definition (rule id -> JSON rule, in order) goes past, if any."""
    rules = list(definition.items())
    if len(rules) > MAX_RULES:
        return Problem(rules[MAX_RULES][0], f"the engine takes at most {MAX_RULES} rules per "
                       f"ruleset (MAX_ACTIONS, rete.c:41); this one has {len(rules)}")
    run, lengths = _dry_run(rules)
    for rule_id, n in lengths.items():
        if n > MAX_EXPRESSIONS:
            return Problem(rule_id, f"rule {rule_id!r} needs {n} entries in the engine's expression "
                           f"sequence, which holds {MAX_EXPRESSIONS} (MAX_SEQUENCE_EXPRESSIONS 32, "
                           "rete.h:41): 2 for the rule, 2 for each measure condition, 2 when it "
                           "repeats; split it into two rules", where=("conditions",))
    message = _network_problem(run)
    if message is None:
        return None
    rule_id = _first_crossing(rules)
    return Problem(rule_id, f"rule {rule_id!r} is one rule too many: {message}")

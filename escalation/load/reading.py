"""Input files read without being led astray: which files, how much of them, and how YAML is parsed.

Every command reads its files through here, so a hostile or odd file costs one error line
(file, line, what is wrong) rather than a traceback, a hang or gigabytes of memory.

What is read: regular files of at most MAX_FILE_BYTES (10 MiB). Folders, devices, pipes and
sockets are refused from their metadata, before they are opened for reading (a pipe would block,
/dev/zero never ends); the size is checked before reading and the cap held while reading, since
a file can grow and /proc files say they are empty. A path with a NUL character is refused too.

How YAML is parsed: once per file, with libyaml's C parser where PyYAML was built with it and
PyYAML's own parser otherwise; one node tree gives both the data and the line index. A text with
no `&`, `*` or `!` anywhere (so no anchor, alias or tag) is composed by libyaml in C, from libyaml
0.2.6 on, and its depth measured on the tree; any other text, and any text libyaml fails on, has
its events checked before any node is built from them:
- an anchor on a list or mapping is refused, at its line: aliases of one are how a 300-byte file
  expands to gigabytes. Anchors on single values stay (the shipped literature table repeats a
  sentence so); each alias of one becomes its own node, so the tree is never bigger than the file;
- lists and mappings nested more than MAX_NESTING (100) levels deep are refused, well before
  Python's recursion limit;
- tags (`!!int`, `!name`) are refused: no file needs one, and they would bring back the YAML 1.1
  forms below;
- a key must be a single value, not a list or mapping; duplicate keys are refused (PyYAML would
  silently keep the last).
Plain values follow YAML 1.2's core schema instead of PyYAML's YAML 1.1 one: integers are decimal
(`010` is 10, not 8 in octal), `1:30` is text (not 90 in base 60), `1e308` is a number (not text),
only true/false are booleans (`yes`, `no`, `on`, `off` are text), and there are no timestamps,
`=` values or `<<` merge keys.

JSON (FHIR input, and a scenario or rule set in a `.json` file) is parsed by `parse_json`, its
errors one line as the YAML ones are; a `.json` file the YAML parser cannot read either is told
the JSON parser's error (`json_problem`), since its name says JSON.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import yaml
from yaml.composer import Composer, ComposerError
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.resolver import BaseResolver

from escalation.load.errors import InputError, UnreadableFile

try:
    from yaml._yaml import get_version as _libyaml_version
    from yaml.cyaml import CParser
except ImportError:  # PyYAML built without libyaml
    CParser = None


def composes_in_c(libyaml: tuple[int, int, int] | None) -> bool:
    """Whether a text may be composed by libyaml's own composer: only from libyaml 0.2.6 on, which
    stops at 1,000 levels of nesting itself. PyYAML's C composer recurses once per level, and on
    an older libyaml (PyYAML 6.0.2's wheels bring 0.2.5) a file some 30,000 levels deep would
    crash the interpreter; the guarded composer refuses it at level 101."""
    return libyaml is not None and libyaml >= (0, 2, 6)


_C_COMPOSES = composes_in_c(_libyaml_version() if CParser is not None else None)
# Anchors (&), aliases (*) and tags (!) are what the event guards are for. A text with none of
# these characters anywhere (comments and quoted text included) has none of them; any other text
# takes the guarded composer, even where the character is only in a comment.
_MAY_NEED_EVENT_GUARDS = re.compile(r"[&*!]")

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_NESTING = 100

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
_NOT_REGULAR: tuple[tuple[Callable[[int], bool], str], ...] = (
    (stat.S_ISDIR, "is a folder, not a file"),
    (stat.S_ISCHR, "is a device, not a regular file"),
    (stat.S_ISBLK, "is a device, not a regular file"),
    (stat.S_ISFIFO, "is a pipe (FIFO), not a regular file"),
    (stat.S_ISSOCK, "is a socket, not a regular file"),
)


# --- Files ----------------------------------------------------------------------------------------


def shown_name(path: Path | str) -> str:
    """The path as given, control characters escaped, so that an error message stays one line."""
    text = str(path)
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def read_text(path: Path, name: str, limit: int | None = None) -> str:
    """The text of a regular file of at most `limit` bytes (default MAX_FILE_BYTES), as UTF-8
    with universal newlines. A file that cannot be read at all is an UnreadableFile."""
    limit = MAX_FILE_BYTES if limit is None else limit
    try:
        with open_regular(path, name, limit) as f:
            raw = f.read(limit + 1)
    except FileNotFoundError:
        raise UnreadableFile(name, "file not found") from None
    except OSError as exc:
        raise UnreadableFile(name, f"cannot read file: {exc.strerror or exc}") from None
    if len(raw) > limit:
        raise InputError(name, f"the file turned out longer than the limit of {_limit(limit)} while being read")
    return _decode(raw, name)


def open_regular(path: Path, name: str, limit: int | None = None) -> BinaryIO:
    """A regular file (of at most `limit` bytes, when given) opened for reading in binary.

    Folders, devices, pipes and sockets are refused (InputError) from their metadata before the
    file is opened, since opening a device can have effects and /dev/zero never ends, and again
    once it is open, non-blocking, so that a pipe swapped in meanwhile cannot hang the reader.
    An OSError is the caller's to judge: whoever reads the file knows what a missing one means.
    """
    if "\x00" in str(path):
        raise InputError(name, "the file name contains a NUL character")
    _check_file(os.stat(path), name, limit)
    f = open(os.open(path, _OPEN_FLAGS), "rb")  # noqa: SIM115 - the caller's to close
    try:
        _check_file(os.fstat(f.fileno()), name, limit)
    except BaseException:
        f.close()
        raise
    return f


def is_regular_file(path: Path) -> bool:
    """True only for an existing regular file: a probe that never opens a device or a pipe."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def _check_file(st: os.stat_result, name: str, limit: int | None) -> None:
    """Refuse anything but a regular file within the size limit (None: any size)."""
    for test, problem in _NOT_REGULAR:
        if test(st.st_mode):
            raise InputError(name, problem)
    if not stat.S_ISREG(st.st_mode):
        raise InputError(name, "is not a regular file")
    if limit is not None and st.st_size > limit:
        raise InputError(name, f"the file is {st.st_size} bytes, over the limit of {_limit(limit)} for an input file")


def _limit(limit: int) -> str:
    return f"{limit / 2**20:g} MiB"


def _decode(raw: bytes, name: str) -> str:
    """UTF-8 with the newlines Path.read_text gives, so line numbers match what editors show."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(name, f"cannot read file: {exc}") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


# --- YAML -----------------------------------------------------------------------------------------


class Refused(yaml.MarkedYAMLError):
    """Well-formed YAML that this tool does not accept; the message says why."""


def _refuse(problem: str, mark: Any) -> Refused:
    return Refused(problem=problem, problem_mark=mark)


class _GuardedComposer(Composer):
    """PyYAML's composer, checking each event before a node is built from it."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            return self._alias(self.get_event())
        if getattr(event, "tag", None) is not None:
            raise _refuse(f"tags such as {event.tag} are not accepted: write the plain value", event.start_mark)
        if isinstance(event, yaml.ScalarEvent):
            self._refuse_duplicate_anchor(event)
            return super().compose_node(parent, index)
        self._enter_collection(event)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def _enter_collection(self, event: yaml.CollectionStartEvent) -> None:
        if event.anchor is not None:
            raise _refuse(f"an anchor (&{event.anchor}) on a list or mapping is not accepted, since aliases "
                          "of one can expand a small file without bound: write the values out", event.start_mark)
        if self._depth >= MAX_NESTING:
            raise _refuse(f"lists and mappings nested more than {MAX_NESTING} levels deep are not accepted",
                          event.start_mark)
        self._depth += 1

    def _refuse_duplicate_anchor(self, event: yaml.ScalarEvent) -> None:
        first = self.anchors.get(event.anchor) if event.anchor is not None else None
        if first is not None:
            raise ComposerError(None, None, f"duplicate anchor &{event.anchor} (first on line "
                                f"{first.start_mark.line + 1})", event.start_mark)

    def _alias(self, event: yaml.AliasEvent) -> yaml.ScalarNode:
        """A copy of the anchored single value, placed at the alias (only single values have anchors)."""
        node = self.anchors.get(event.anchor)
        if node is None:
            raise ComposerError(None, None, f"found undefined alias {event.anchor!r}", event.start_mark)
        return yaml.ScalarNode(node.tag, node.value, event.start_mark, event.end_mark, node.style)


class _CoreResolver(BaseResolver):
    """Plain values typed by YAML 1.2's core schema, not PyYAML's YAML 1.1 one."""

    yaml_implicit_resolvers: ClassVar[dict] = {}  # its own, not PyYAML's YAML 1.1 set


_CORE_SCHEMA = (
    ("bool", r"(?:true|True|TRUE|false|False|FALSE)", "tTfF"),
    ("int", r"[-+]?[0-9]+", "-+0123456789"),
    ("float", r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)",
     "-+.0123456789"),
    ("null", r"(?:~|null|Null|NULL|)", ["~", "n", "N", ""]),
)
for _kind, _pattern, _first in _CORE_SCHEMA:  # int before float: a plain 12 is an int
    _CoreResolver.add_implicit_resolver(f"tag:yaml.org,2002:{_kind}", re.compile(rf"^(?:{_pattern})\Z"), list(_first))


class _Constructor(SafeConstructor):
    """PyYAML's safe constructor with decimal integers, single-value keys and no duplicate keys."""


def _construct_int(loader: _Constructor, node: yaml.ScalarNode) -> int:
    """Decimal, whatever the leading zeros (PyYAML reads `010` as octal)."""
    try:
        return int(node.value, 10)
    except ValueError:  # more digits than Python converts
        raise _refuse(f"a number of {len(node.value)} digits is too long", node.start_mark) from None


def _construct_mapping(loader: _Constructor, node: yaml.MappingNode) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise _refuse("a key must be a single value, not a list or mapping", key_node.start_mark)
        key = loader.construct_object(key_node)
        if key in seen:
            raise ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {seen[key] + 1})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node)


_Constructor.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Constructor.add_constructor(BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _PureLoader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, _GuardedComposer,
                  _Constructor, _CoreResolver):
    """The guarded loader on PyYAML's own parser."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        _init_upper(self)


def _init_upper(loader: Any) -> None:
    _GuardedComposer.__init__(loader)
    _Constructor.__init__(loader)
    _CoreResolver.__init__(loader)


if CParser is not None:

    class _CLoader(_GuardedComposer, CParser, _Constructor, _CoreResolver):  # type: ignore[misc, valid-type]
        """The guarded loader on libyaml's parser: the events come from C, the nodes from the guards."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _init_upper(self)

    LOADER: type = _CLoader
else:
    LOADER = _PureLoader


def parse_yaml(text: str, name: str) -> tuple[yaml.Node | None, Any]:
    """The node tree of one YAML document and the plain data built from it."""
    _refuse_unprintable(text, name)
    if _C_COMPOSES and _MAY_NEED_EVENT_GUARDS.search(text) is None:
        fast = _composed_in_c(text)
        if fast is not None:
            return fast
    loader = LOADER(text)
    try:
        node = loader.get_single_node()
        return node, (None if node is None else loader.construct_document(node))
    except yaml.YAMLError as exc:
        raise _input_error(exc, name) from None
    finally:
        loader.dispose()


def _composed_in_c(text: str) -> tuple[yaml.Node | None, Any] | None:
    """The node tree composed by libyaml's own composer, in C, and the data built from it (about
    five times faster than composing event by event in Python); None where the guarded loader
    must decide: any YAML error (it says each one as it always has) or nesting past MAX_NESTING
    (libyaml itself stops at 1,000 levels, composes_in_c). Only for a text with no `&`, `*` or
    `!`, so the event guards have nothing to find but the nesting, which is measured on the tree."""
    loader = LOADER(text)
    try:
        # CParser's own composer, not the guarded one that comes first in LOADER's bases
        node = CParser.get_single_node(loader)
        if node is None:
            return None, None
        if _deeper_than(node, MAX_NESTING):
            return None
        return node, loader.construct_document(node)
    except yaml.YAMLError:
        return None
    finally:
        loader.dispose()


def _deeper_than(root: yaml.Node, limit: int) -> bool:
    """True when lists and mappings nest more than `limit` levels deep under `root`."""
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, yaml.SequenceNode):
            stack.extend((child, depth + 1) for child in node.value if not isinstance(child, yaml.ScalarNode))
        elif isinstance(node, yaml.MappingNode):
            stack.extend((part, depth + 1) for pair in node.value for part in pair
                         if not isinstance(part, yaml.ScalarNode))
    return False


def parse_json(text: str, name: str, line: int | None = None) -> Any:
    """The JSON of a file (or of one NDJSON line, `line`), its errors one line naming the file:
    malformed JSON, or JSON nested deeper than the json module's recursion can follow."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(name, f"malformed JSON: {exc.msg} (column {exc.colno})",
                         line=exc.lineno if line is None else line) from None
    except RecursionError:
        raise InputError(name, "JSON nested too deeply to read", line=line) from None


def json_problem(text: str, name: str) -> InputError | None:
    """The error `parse_json` gives for a text, None when the text is JSON."""
    try:
        parse_json(text, name)
    except InputError as exc:
        return exc
    return None


def _refuse_unprintable(text: str, name: str) -> None:
    """Characters YAML forbids, found here so both parsers give the line (theirs give an offset)."""
    found = yaml.reader.Reader.NON_PRINTABLE.search(text)
    if found:
        char = found.group()
        raise InputError(name, f"malformed YAML: the character U+{ord(char):04X} is not allowed in YAML text",
                         line=text.count("\n", 0, found.start()) + 1)


def _input_error(exc: yaml.YAMLError, name: str) -> InputError:
    """A YAML error as one InputError at the line the parser blames."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return InputError(name, f"malformed YAML: {str(exc).splitlines()[0]}")
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or str(exc)
    if exc.context and "flow" in exc.context and exc.context_mark is not None:
        # an unclosed [ or {: the parser notices only on a later line; point at the opening
        mark = exc.context_mark
        problem = f"{exc.context.replace('while parsing a ', '')} opened here is not closed ({problem})"
    elif exc.context and not exc.context.startswith("while "):
        problem = f"{exc.context}, {problem}"  # e.g. expected a single document, but found another
    message = problem if isinstance(exc, Refused) else f"malformed YAML: {problem}"
    return InputError(name, message, line=mark.line + 1 if mark else None)

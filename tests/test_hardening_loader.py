"""Hostile or odd input files cost one `error:` line and exit 2, never a traceback, a hang or gigabytes.

Regressions for the loader items of the "Hardening" issue (2: alias bomb, 3: devices, size and
derives_from outside its folder, 10: YAML 1.1 number and boolean forms, 12: deep nesting, long
derives_from chains, unhashable keys, NUL in a path). The inputs are in tests/regressions/loader/;
large ones are generated here. Anything that could hang or eat memory runs the real CLI in a
subprocess with a time limit and an address-space limit, so a regression fails instead of taking
the machine down. Parser-level cases run twice: with libyaml's C parser and with the pure-Python
one (the C extension hidden), because the loader falls back to the latter where the former is
missing.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from escalation.cli.app import app
from escalation.load import reading
from escalation.load.errors import InputError
from escalation.load.loading import load_ruleset, load_scenario, read_yaml
from escalation.load.shipped import index_case

ROOT = Path(__file__).resolve().parents[1]
CASES = Path("tests/regressions/loader")  # relative to ROOT, as a user would type it
TIMEOUT_S = 60
MEMORY_LIMIT = 1 << 30  # the CLI needs under 500 MB of address space for the shipped files
NESTING_LIMIT = 100  # the documented limits (README, bad input)
CHAIN_LIMIT = 16
SIZE_LIMIT = 10 * 1024 * 1024
PARENT_REF = "../../../pyproject.toml"  # what derives-parent.yaml names

RUN = """
import sys
if sys.argv[1] == "pure":
    sys.modules["yaml._yaml"] = None  # as if PyYAML were built without libyaml
from escalation.cli.app import main
sys.argv = ["escalation", *sys.argv[2:]]
main()
"""
PARSERS = ["c", "pure"]
COMMANDS = ["replay", "check"]


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_cli(*args: str, parser: str = "c") -> subprocess.CompletedProcess:
    """The real CLI in a subprocess, bounded in time and memory; a timeout is a test failure."""
    try:
        return subprocess.run([sys.executable, "-c", RUN, parser, *args], check=False, capture_output=True,
                              text=True, timeout=TIMEOUT_S, preexec_fn=_limit_memory, cwd=ROOT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"escalation {' '.join(args)} ({parser} parser) ran for more than {TIMEOUT_S} s")


def assert_refused(proc: subprocess.CompletedProcess, file: str, line: int | None = None,
                   words: tuple[str, ...] = ()) -> str:
    """Exit 2, nothing on stdout, one `error: FILE[:LINE]` line on stderr with the key words."""
    shown = f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr + proc.stdout, shown
    assert proc.returncode == 2, shown
    assert proc.stdout == "", shown
    errors = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(errors) == 1, shown
    prefix = f"error: {file}" + (f":{line}" if line is not None else "")
    assert errors[0].startswith(prefix) and errors[0][len(prefix)] in " :", f"expected {prefix!r}: {shown}"
    for word in words:
        assert word.lower() in errors[0].lower(), f"{word!r} not in {errors[0]!r}"
    return errors[0]


def line_of(path: Path, marker: str) -> int:
    hits = [n for n, text in enumerate((ROOT / path).read_text().splitlines(), 1) if marker in text]
    assert len(hits) == 1, hits
    return hits[0]


# --- item 2: anchors and aliases ------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("parser", PARSERS)
def test_alias_bomb_is_refused_at_the_first_anchor(parser, command):
    path = CASES / "alias-bomb.yaml"
    assert_refused(run_cli(command, str(path), parser=parser), str(path), 1, ("anchor",))


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("parser", PARSERS)
def test_anchor_on_a_mapping_is_refused(parser, command):
    path = CASES / "anchor-on-mapping.yaml"
    assert_refused(run_cli(command, str(path), parser=parser), str(path), line_of(path, "&v"), ("anchor",))


@pytest.mark.parametrize("parser", PARSERS)
def test_an_alias_of_a_single_value_still_works_and_points_at_the_alias(parser):
    """The shipped literature table repeats a sentence by alias; that cannot grow, so it stays."""
    path = CASES / "scalar-alias.yaml"
    assert_refused(run_cli("check", str(path), parser=parser), str(path), line_of(path, "*name"), ("day",))
    table = "scenarios/literature/table1.yaml"
    proc = run_cli("check", table, parser=parser)
    assert proc.returncode == 0 and proc.stdout.startswith(f"ok: {table}"), proc.stderr


# --- item 3: what may be read ---------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
def test_a_device_is_refused(command):
    assert_refused(run_cli(command, "/dev/zero"), "/dev/zero", None, ("device",))


def test_a_folder_is_refused():
    assert_refused(run_cli("replay", str(CASES)), str(CASES), None, ("folder",))


@pytest.mark.parametrize("command", COMMANDS)
def test_a_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path, command):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    assert_refused(run_cli(command, str(fifo)), str(fifo), None, ("pipe",))


@pytest.mark.parametrize("command", COMMANDS)
def test_a_file_over_the_size_limit_is_refused_before_reading(tmp_path, command):
    big = tmp_path / "big.yaml"
    with big.open("wb") as f:
        f.truncate(SIZE_LIMIT + 1)  # sparse: costs no disk
    assert_refused(run_cli(command, str(big)), str(big), None, ("limit",))


def test_a_file_that_turns_out_longer_than_its_size_is_cut_off(monkeypatch):
    """/proc files say size 0 and then give text: the cap holds while reading, too."""
    from escalation.load import reading

    status = Path("/proc/self/status")
    if not status.is_file():
        pytest.skip("needs Linux /proc")
    monkeypatch.setattr(reading, "MAX_FILE_BYTES", 100)  # `check`: no rule set to read under the cap too
    result = CliRunner().invoke(app, ["check", str(status)])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {status}: ") and "limit" in result.stderr, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("name", ["derives-dev-zero.yaml", "derives-absolute.yaml", "derives-parent.yaml"])
def test_derives_from_outside_its_folder_is_refused(name, command):
    path = CASES / name
    assert_refused(run_cli(command, str(path)), str(path), line_of(path, "derives_from"), ("outside",))


@pytest.mark.parametrize("command", COMMANDS)
def test_derives_from_through_a_symlink_out_of_its_folder_is_refused(tmp_path, command):
    folder = tmp_path / "mine"
    folder.mkdir()
    (tmp_path / "base.yaml").write_text((ROOT / "scenarios/index_case.yaml").read_text())
    (folder / "base.yaml").symlink_to(tmp_path / "base.yaml")
    variant = folder / "variant.yaml"
    variant.write_text((ROOT / CASES / "derives-parent.yaml").read_text()
                       .replace(PARENT_REF, "base.yaml"))
    assert_refused(run_cli(command, str(variant)), str(variant), 2, ("outside",))


def test_a_variant_anywhere_may_derive_from_the_shipped_index_case(tmp_path):
    variant = tmp_path / "variant.yaml"
    variant.write_text((ROOT / CASES / "derives-parent.yaml").read_text()
                       .replace(PARENT_REF, json.dumps(str(index_case()))))
    proc = run_cli("check", str(variant))
    assert proc.returncode == 0, proc.stderr


def test_a_shipped_variant_copied_elsewhere_is_told_where_its_base_is(tmp_path):
    """Copied out of scenarios/variants, a variant's `derives_from: ../index_case.yaml` names
    nothing; the error says where the shipped file of that name is, and that path loads."""
    copy = tmp_path / "early-rituximab.yaml"
    copy.write_text((ROOT / "scenarios" / "variants" / "early-rituximab.yaml").read_text())
    proc = run_cli("check", str(copy))
    assert proc.returncode == 2
    assert f"derives_from: no file ../index_case.yaml (a shipped file has that name: {index_case()}" in proc.stderr
    copy.write_text(copy.read_text().replace("../index_case.yaml", json.dumps(str(index_case()))))
    assert run_cli("check", str(copy)).returncode == 0


def test_shipped_variants_naming_their_parent_folder_still_load():
    files = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "scenarios/variants").glob("*.yaml"))]
    proc = run_cli("check", *files, "rules/rtx-earlier.yaml")
    assert proc.returncode == 0, proc.stderr


# --- item 10: YAML 1.2 numbers and booleans -------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("parser", PARSERS)
def test_a_clock_time_is_not_a_day(parser, command):
    path = CASES / "sexagesimal-day.yaml"
    assert_refused(run_cli(command, str(path), parser=parser), str(path), line_of(path, "day: 1:30"), ("day",))


@pytest.mark.parametrize("parser", PARSERS)
def test_a_leading_zero_is_decimal(parser):
    path = CASES / "leading-zero-day.yaml"
    proc = run_cli("replay", str(path), "--format", "json", parser=parser)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["scenario"]["first_day"] == 10


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("parser", PARSERS)
def test_an_exponent_is_a_number(parser, command):
    path = CASES / "exponent-ck.yaml"
    error = assert_refused(run_cli(command, str(path), parser=parser), str(path), line_of(path, "ck: 1e308"))
    assert "dictionary" not in error and "1e+308" in error, error


@pytest.mark.parametrize("parser", PARSERS)
def test_yes_is_text_not_true(parser):
    path = CASES / "yes-note.yaml"
    proc = run_cli("check", str(path), parser=parser)
    assert proc.returncode == 0, proc.stderr


# --- item 12: depth, chains, keys, names ----------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("parser", PARSERS)
def test_deeply_nested_lists_are_refused(tmp_path, parser, command):
    path = tmp_path / "deep-list.yaml"
    path.write_text("[" * 10_000 + "]" * 10_000 + "\n")
    assert_refused(run_cli(command, str(path), parser=parser), str(path), 1, ("nest",))


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("parser", PARSERS)
def test_deeply_nested_mappings_are_refused_at_the_first_level_too_deep(tmp_path, parser, command):
    path = tmp_path / "deep-map.yaml"
    path.write_text("".join(" " * i + "k:\n" for i in range(3_000)))
    assert_refused(run_cli(command, str(path), parser=parser), str(path), NESTING_LIMIT + 1, ("nest",))


def _chain(folder: Path, links: int) -> Path:
    """v0000.yaml derives from v0001.yaml ... derives from base.yaml: `links` derives_from in all."""
    folder.mkdir()
    (folder / "base.yaml").write_text((ROOT / "scenarios/index_case.yaml").read_text())
    variant = (ROOT / CASES / "derives-parent.yaml").read_text()
    for i in range(links):
        ref = f"v{i + 1:04d}.yaml" if i + 1 < links else "base.yaml"
        (folder / f"v{i:04d}.yaml").write_text(variant.replace(PARENT_REF, ref))
    return folder / "v0000.yaml"


@pytest.mark.parametrize("command", COMMANDS)
def test_a_long_derives_from_chain_is_refused(tmp_path, command):
    top = _chain(tmp_path / "chain", 2_000)
    too_far = top.parent / f"v{CHAIN_LIMIT:04d}.yaml"
    assert_refused(run_cli(command, str(top)), str(too_far), 2, ("derives_from", str(CHAIN_LIMIT)))


def test_a_derives_from_chain_at_the_limit_loads(tmp_path):
    proc = run_cli("check", str(_chain(tmp_path / "chain", CHAIN_LIMIT)))
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("parser", PARSERS)
def test_a_list_as_a_key_is_refused(parser, command):
    path = CASES / "unhashable-key.yaml"
    assert_refused(run_cli(command, str(path), parser=parser), str(path), 2, ("key",))


@pytest.mark.parametrize("command", COMMANDS)
def test_a_nul_byte_in_derives_from_is_refused(command):
    path = CASES / "derives-nul.yaml"
    assert_refused(run_cli(command, str(path)), str(path), line_of(path, "derives_from"), ("NUL",))


@pytest.mark.parametrize("load", [load_scenario, load_ruleset, read_yaml])
def test_a_nul_byte_in_a_path_is_an_input_error(load):
    """A NUL cannot pass through a real command line; every caller of the loader gets the error."""
    with pytest.raises(InputError) as caught:
        load(Path("a\x00b.yaml"))
    assert str(caught.value).startswith("a\\x00b.yaml: ") and "NUL" in str(caught.value)


# --- an error in a variant merged with its base: where the part at fault is written ---------------
# A variant is checked whole only once merged, where rules[i] is an index into the merged list, in
# neither file; the error named the variant with no line (found in a user trial).

PATHWAY = ROOT / "rules" / "report-pathway.yaml"
HEADER = 'ruleset: {id: v, version: "1", title: "v"}\n'
STEP2_WAITS = "      - step_flagged: 1\n"
STEP2 = PATHWAY.read_text().split("  - id: step2-plasma-exchange\n")[1].split("\n\n")[0]


def _step2(old: str = "", new: str = "") -> str:
    """Rule step2-plasma-exchange as written in the pathway, as an item under `changes: {add|replace}`."""
    rule = f"    - id: step2-plasma-exchange\n{STEP2}\n".replace("\n    ", "\n      ")
    assert rule.count(old) == 1
    return rule.replace(old, new)


def _rules_variant(folder: Path, text: str, name: str = "v.yaml") -> Path:
    folder.mkdir(exist_ok=True)
    if not (folder / PATHWAY.name).exists():
        (folder / PATHWAY.name).write_text(PATHWAY.read_text())
    (folder / name).write_text(text)
    return folder / name


def _refused(path: Path, load=load_ruleset) -> InputError:
    with pytest.raises(InputError) as caught:
        load(path)
    return caught.value


def _line(path: Path, marker: str, which: int = 0) -> int:
    return [n for n, text in enumerate(path.read_text().splitlines(), 1) if marker in text][which]


def test_a_rule_inherited_unchanged_is_named_where_the_base_writes_it(tmp_path):
    v = _rules_variant(tmp_path / "rules", f"derives_from: {PATHWAY.name}\n{HEADER}"
                       "changes:\n  remove: [step1-combination]\n")
    err = _refused(v)
    base = (tmp_path / "rules" / PATHWAY.name).resolve()
    assert (err.file, err.line, err.where) == (str(base), _line(base, STEP2_WAITS.rstrip()),
                                               "rules[1].conditions[0].step_flagged")
    assert err.message == (f"rule 'step2-plasma-exchange' waits for step 1, which no rule has "
                           f"(in {v}, which derives from this file)")


@pytest.mark.parametrize("group", ["add", "replace"])
def test_a_rule_the_variant_writes_is_named_at_its_own_line(tmp_path, group):
    rule = _step2("- step_flagged: 1", "- step_flagged: 9")
    if group == "add":
        rule = rule.replace("id: step2-plasma-exchange", "id: step9-x")
    v = _rules_variant(tmp_path / "rules", f"derives_from: {PATHWAY.name}\n{HEADER}changes:\n  {group}:\n{rule}")
    err = _refused(v)
    assert (err.file, err.line, err.where) == (str(v), _line(v, "step_flagged: 9"),
                                               f"changes.{group}[0].conditions[0].step_flagged")
    assert "waits for step 9, which no rule has" in err.message and "derives from" not in err.message


def test_through_a_chain_each_rule_is_named_in_the_file_that_last_wrote_it(tmp_path):
    """v1 replaces step 2 (unchanged but for its title) and loads; v2 derives from v1 and removes
    step 1: step 2's condition is v1's, the error arises in v2."""
    folder = tmp_path / "rules"
    rule = _step2("plasma exchange (PE)", "plasma exchange, as in v1")
    v1 = _rules_variant(folder, f"derives_from: {PATHWAY.name}\n{HEADER}changes:\n  replace:\n{rule}", "v1.yaml")
    load_ruleset(v1)
    v2 = _rules_variant(folder, f"derives_from: v1.yaml\n{HEADER}changes:\n  remove: [step1-combination]\n", "v2.yaml")
    err = _refused(v2)
    assert (err.file, err.line, err.where) == (str(v1.resolve()), _line(v1, "step_flagged: 1"),
                                               "changes.replace[0].conditions[0].step_flagged")
    assert f"(in {v2}, which derives from this file)" in err.message


def test_a_list_left_empty_by_the_changes_is_named_at_the_changes(tmp_path):
    ids = [r.id for r in load_ruleset(PATHWAY).rules]
    v = _rules_variant(tmp_path / "rules", f"derives_from: {PATHWAY.name}\n{HEADER}"
                       f"changes:\n  remove: [{', '.join(ids)}]\n")
    err = _refused(v)
    assert (err.file, err.line, err.where) == (str(v), _line(v, "changes:"), "changes")
    assert "at least 1 item" in err.message


def test_a_scenario_variant_adding_an_event_id_its_base_has_is_named_at_the_event(tmp_path):
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "index_case.yaml").write_text((ROOT / "scenarios" / "index_case.yaml").read_text())
    v = folder / "v.yaml"
    v.write_text("derives_from: index_case.yaml\n"
                 "scenario: {id: v, title: v, hypothetical: true, source: {section: Case presentation}}\n"
                 "changes:\n  add:\n"
                 "    - {id: ecmo, kind: finding, code: respiratory_improvement, day: 20, hypothetical: true,\n"
                 "       source: {section: Case presentation}}\n")
    err = _refused(v, load_scenario)
    assert (err.file, err.line, err.where) == (str(v), _line(v, "- {id: ecmo"), "changes.add[0].id")
    assert "duplicate event id 'ecmo'" in err.message


def _pathway_without_step1(folder: Path) -> Path:
    return _rules_variant(folder, f"derives_from: {PATHWAY.name}\n{HEADER}changes:\n  remove: [step1-combination]\n")


def test_a_base_under_the_current_folder_is_named_from_it_not_by_its_absolute_path(tmp_path, monkeypatch):
    """`error: /tmp/x/rules/report-pathway.yaml:108 ... (in rules/v.yaml, ...)` named the base by
    its resolved path, where the variant was named as given (found in a code review)."""
    _pathway_without_step1(tmp_path / "rules")
    monkeypatch.chdir(tmp_path)
    err = _refused(Path("rules/v.yaml"))
    assert (err.file, err.line) == ("rules/report-pathway.yaml", _line(PATHWAY, STEP2_WAITS.rstrip()))
    assert err.message.endswith("(in rules/v.yaml, which derives from this file)")
    monkeypatch.chdir(tmp_path / "rules")
    assert _refused(Path("v.yaml")).file == "report-pathway.yaml"
    assert _refused(tmp_path / "rules" / "v.yaml").file == "report-pathway.yaml"  # under it, whatever the name


def test_a_base_outside_the_current_folder_is_named_as_the_variant_names_it(tmp_path, monkeypatch):
    """Not under the current folder: the variant's name joined with its derives_from, as written."""
    _pathway_without_step1(tmp_path / "rules")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    err = _refused(Path("../rules/v.yaml"))
    assert err.file == "../rules/report-pathway.yaml" and "(in ../rules/v.yaml, which derives" in err.message


def test_a_shipped_variant_names_the_shipped_file_it_derives_from_as_the_readme_does(tmp_path, monkeypatch):
    """rules/rtx-earlier.yaml read from the installed package, from a folder with no rules/: the
    rules it inherits are written in rules/report-pathway.yaml, not in the install's own path."""
    monkeypatch.chdir(tmp_path)
    ruleset = load_ruleset(Path("rules/rtx-earlier.yaml"))
    inherited = ruleset.origin("step1-combination")
    assert inherited == ("rules/report-pathway.yaml", _line(PATHWAY, "- id: step1-combination"))
    assert ruleset.origin(None)[0] == "rules/rtx-earlier.yaml"


# --- the two ways a tree is composed ----------------------------------------------------------
# A text with no anchor, alias or tag is composed by libyaml's own composer; any other text, and
# any text that composer fails on, by the guarded one. Both must give the same tree and data.


def _tree(node) -> object:
    """A node tree as plain values: tag, value, style and where each node starts and ends."""
    if node is None:
        return None
    where = (node.start_mark.line, node.start_mark.column, node.end_mark.line, node.end_mark.column,
             getattr(node, "style", None), getattr(node, "flow_style", None))
    if isinstance(node.value, str):
        return (node.tag, node.value, where)
    if node.value and isinstance(node.value[0], tuple):
        return (node.tag, [(_tree(k), _tree(v)) for k, v in node.value], where)
    return (node.tag, [_tree(v) for v in node.value], where)


def _guarded(text: str):
    loader = reading.LOADER(text)
    try:
        node = loader.get_single_node()
        return node, (None if node is None else loader.construct_document(node))
    finally:
        loader.dispose()


SHIPPED_YAML = sorted(p for d in ("scenarios", "rules") for p in (ROOT / d).rglob("*.yaml"))


needs_c_composer = pytest.mark.skipif(not reading._C_COMPOSES, reason="no libyaml 0.2.6 or later here")


@needs_c_composer
@pytest.mark.parametrize("path", SHIPPED_YAML, ids=lambda p: str(p.relative_to(ROOT)))
def test_composing_in_c_gives_the_guarded_tree_and_data(path):
    text = path.read_text()
    fast = reading._composed_in_c(text)
    if "&" in text or "*" in text or "!" in text:
        return  # such a text is never composed in C (parse_yaml); nothing to compare
    assert fast is not None
    node, data = _guarded(text)
    assert _tree(fast[0]) == _tree(node) and fast[1] == data


@needs_c_composer
def test_the_index_case_is_composed_in_c(monkeypatch):
    """The fast path is taken: with the guarded composer broken, the index case still parses."""
    def broken(*args, **kwargs):
        raise AssertionError("the guarded composer was used")

    monkeypatch.setattr(reading._GuardedComposer, "compose_node", broken)
    node, data = reading.parse_yaml((ROOT / "scenarios/index_case.yaml").read_text(), "index_case.yaml")
    assert data["scenario"]["id"] and node is not None


@needs_c_composer
@pytest.mark.parametrize("depth", [NESTING_LIMIT, NESTING_LIMIT + 1, 500])
def test_nesting_is_measured_on_a_tree_composed_in_c(depth):
    """libyaml stops at 1,000 levels; between the limit and that, the tree's own depth decides, and
    the message and line are the guarded composer's."""
    text = "".join(" " * i + "k:\n" for i in range(depth)) + " " * depth + "v\n"
    composed = reading._composed_in_c(text)
    if depth <= NESTING_LIMIT:
        assert composed is not None and reading.parse_yaml(text, "deep.yaml")[1] == composed[1]
        return
    assert composed is None  # measured on the tree and declined: the guarded composer says why
    with pytest.raises(InputError) as caught:
        reading.parse_yaml(text, "deep.yaml")
    assert str(caught.value).startswith(f"deep.yaml:{NESTING_LIMIT + 1}: ") and "nested" in str(caught.value)


def test_only_a_libyaml_that_limits_nesting_itself_composes_in_c():
    """libyaml before 0.2.6 lets PyYAML's C composer recurse without a limit (a deep enough file
    crashes the interpreter), so those texts go through the guarded composer."""
    assert not reading.composes_in_c((0, 2, 5)) and not reading.composes_in_c(None)
    assert reading.composes_in_c((0, 2, 6)) and reading.composes_in_c((0, 3, 0))


@pytest.mark.parametrize("parser", PARSERS)
def test_nesting_far_past_libyamls_own_limit_is_refused_at_the_first_level_too_deep(tmp_path, parser):
    path = tmp_path / "very-deep.yaml"
    path.write_text("[" * 50_000 + "]" * 50_000 + "\n")
    assert_refused(run_cli("replay", str(path), parser=parser), str(path), 1, ("nest",))


@pytest.mark.parametrize("changes, where, hint", [
    ("  remove: [step1-combination, step3-ecmo-oxigenation]\n", "changes.remove[1]",
     "to remove; did you mean 'step3-ecmo-oxygenation'?"),
    ("replace", "changes.replace[0].id", "to replace (its rules: step1-combination, "),
])
def test_a_change_naming_an_unknown_id_points_at_it_and_says_the_nearest(tmp_path, changes, where, hint):
    """Found in a trial: the error named the `changes:` line, no place, and no near id, while an
    expectation naming an unknown rule gets 'did you mean'."""
    if changes == "replace":
        changes = "  replace:\n" + _step2("id: step2-plasma-exchange", "id: zzz")
    v = _rules_variant(tmp_path / "rules", f"derives_from: {PATHWAY.name}\n{HEADER}changes:\n{changes}")
    err = _refused(v)
    assert err.where == where and err.line == _line(v, "zzz" if "zzz" in changes else "remove") and hint in err.message

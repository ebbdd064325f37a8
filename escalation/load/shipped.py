"""Where the shipped rule sets, scenarios and literature table live.

They sit at the top of the repository (`rules/`, `scenarios/`), where people look for them, and
the build copies them into the installed package as `escalation/shipped/`. Defaults are always
these files, never whatever happens to lie in the working directory, so a command gives the same
answer from any folder. A path the user types is read as given and never goes through here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

Kind = Literal["rules", "scenarios"]

_PACKAGE = Path(__file__).resolve().parent.parent


def shipped_root() -> Path:
    """The folder holding `rules/` and `scenarios/`: inside the installed package, or the checkout."""
    installed = _PACKAGE / "shipped"
    return installed if installed.is_dir() else _PACKAGE.parent


def shipped(kind: Kind, *parts: str) -> Path:
    """A shipped file or folder, e.g. `shipped("rules", "report-pathway.yaml")`."""
    return shipped_root().joinpath(kind, *parts)


DEFAULT_RULES_FILE = "report-pathway.yaml"
INDEX_CASE_FILE = "index_case.yaml"
LITERATURE_FILE = ("literature", "table1.yaml")


def default_rules() -> Path:
    """The report's own pathway, the rule set used when none is named."""
    return shipped("rules", DEFAULT_RULES_FILE)


def shipped_rule_files() -> list[Path]:
    """Every shipped rule set, in name order."""
    return sorted(shipped("rules").glob("*.yaml"))


def index_case() -> Path:
    return shipped("scenarios", INDEX_CASE_FILE)


def literature_table() -> Path:
    return shipped("scenarios", *LITERATURE_FILE)

"""escalation: a published treatment-escalation pathway as declarative rules, replayed on timelines.

For research review only; nothing it produces is advice for a patient, and no decision point is
an order.

The public API, for notebooks and scripts (the command line is a thin layer over the same calls):

    import escalation
    result = escalation.replay("scenarios/index_case.yaml")          # the report's pathway
    for dp in result.decision_points:
        print(dp.day, dp.day_latest, dp.rule_id, dp.proposes, dp.actual_day, dp.lag_days)
    diff = escalation.compare("rules/report-pathway.yaml", "rules/romero-bueno-2020.yaml")
    why = escalation.explain("scenarios/index_case.yaml", rule_ids=["step4-rituximab"])
    escalation.write_report("scenarios/index_case.yaml", "out/report")

Names are imported on first use, so `import escalation` stays cheap for a command that needs
only part of the package.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from escalation.version import __version__

_EXPORTS: dict[str, str] = {
    "load_scenario": "escalation.api",
    "load_ruleset": "escalation.api",
    "replay": "escalation.api",
    "compare": "escalation.api",
    "explain": "escalation.api",
    "check_expectations": "escalation.api",
    "write_report": "escalation.api",
    "Scenario": "escalation.load.scenario",
    "Ruleset": "escalation.load.ruleset",
    "InputError": "escalation.load.errors",
    "EngineError": "escalation.evaluate.engine",
    "ReplayResult": "escalation.match.results",
    "DecisionPoint": "escalation.match.results",
    "NOTICE": "escalation.match.results",
    "RulesetDiff": "escalation.analysis.compare",
    "TestReport": "escalation.analysis.expectations",
    "Explanation": "escalation.match.explanation",
}

__all__ = [  # a literal list, so that linters and editors see the public names
    "__version__", "load_scenario", "load_ruleset", "replay", "compare", "explain", "check_expectations",
    "write_report", "Scenario", "Ruleset", "InputError", "EngineError", "ReplayResult", "DecisionPoint", "NOTICE",
    "RulesetDiff", "TestReport", "Explanation",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and editors only
    from escalation.analysis.compare import RulesetDiff
    from escalation.analysis.expectations import TestReport
    from escalation.api import (
        check_expectations,
        compare,
        explain,
        load_ruleset,
        load_scenario,
        replay,
        write_report,
    )
    from escalation.evaluate.engine import EngineError
    from escalation.load.errors import InputError
    from escalation.load.ruleset import Ruleset
    from escalation.load.scenario import Scenario
    from escalation.match.explanation import Explanation
    from escalation.match.results import NOTICE, DecisionPoint, ReplayResult


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'escalation' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

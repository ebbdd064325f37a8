"""Decision points as a FHIR R4 Bundle of GuidanceResponse resources, one per decision point.

Each GuidanceResponse names the rule it reports on with a canonical URL built from the rule set
id, the rule id and the rule set version (`.../PlanDefinition/RULESET.RULE|VERSION`; the
namespace is not a live server), says in its notes and a meta tag that it is for research review
only, and carries the card's Markdown detail. Ids are the CDS Hooks card uuids, so both outputs
of one replay name a decision point the same way. Validated with fhir.resources before printing.
"""

from __future__ import annotations

import json
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from escalation.fhir.codes import BASE, RESEARCH_TAG, SCENARIO_ID
from escalation.match.results import NOTICE, ReplayResult
from escalation.report.cds_hooks import CardItem, card, decision_point_items


def canonical(ruleset_id: str, rule_id: str, version: str) -> str:
    """The rule as a PlanDefinition canonical: `BASE/PlanDefinition/RULESET.RULE|VERSION`."""
    return f"{BASE}/PlanDefinition/{ruleset_id}.{rule_id}|{version}"


def bundle(result: ReplayResult) -> dict[str, Any]:
    items = decision_point_items(result)
    rules = [dp.rule_id for dp in result.decision_points]
    entries = [guidance(result, item, rule) for item, rule in zip(items, rules)]
    out = {"resourceType": "Bundle", "meta": {"tag": [RESEARCH_TAG]}, "type": "collection",
           "entry": [{"fullUrl": f"urn:uuid:{g['id']}", "resource": g} for g in entries]}
    Bundle.model_validate(out)
    return out


def guidance(result: ReplayResult, item: CardItem, rule_id: str) -> dict[str, Any]:
    c, rs = card(result, item), result.ruleset
    return {
        "resourceType": "GuidanceResponse",
        "id": c.uuid,
        "meta": {"tag": [RESEARCH_TAG]},
        "identifier": [{"system": f"{BASE}/NamingSystem/decision-point", "value": c.uuid}],
        "moduleCanonical": canonical(rs.id, rule_id, rs.version),
        "status": "success",
        "subject": {"identifier": {"system": SCENARIO_ID, "value": result.scenario.id},
                    "display": f"scenario {result.scenario.id}" + (" (hypothetical)" if result.scenario.hypothetical else "")},
        "reasonCode": [{"text": c.summary}],
        "note": [{"text": NOTICE}, {"text": f"{c.source.label}"}, {"text": c.detail}],
    }


def to_json(result: ReplayResult) -> str:
    return json.dumps(bundle(result), indent=2, ensure_ascii=False) + "\n"

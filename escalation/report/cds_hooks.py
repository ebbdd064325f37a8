"""Decision points as a CDS Hooks 2.0 response, `{"cards": [...]}`, for decision-support tools.

A card is the shape CDS tools already show, but every card here is material for research review:
indicator `info`, a summary worded for review (never as an order), the research-only notice and
the rule set with its content hash in `source.label`, and the conditions, values and sources in
the Markdown detail. Each card's uuid is derived (uuid5) from the scenario, the rule set and the
decision point, so that a rerun gives the same cards.

Cards are built from a list of `CardItem`s: one kind per thing a replay reports (the decision
points, then the actions no decision point put up for review). Another kind is one more function
returning CardItems, added to ITEM_KINDS.

Specification: CDS Hooks 2.0, https://cds-hooks.hl7.org/2.0/ ("CDS Service Response", "Card
Attributes"): summary required, under 140 characters; indicator info, warning or critical;
source required with a label; detail GitHub-flavoured Markdown; uuid optional.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from escalation.match.results import (
    NOTICE,
    DecisionPoint,
    ReplayResult,
    actual_text,
    day_text,
    lag_text,
)

SUMMARY_LIMIT = 139  # "<140 characters"
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://escalation.invalid/fhir/cds-hooks")
SHORT_NOTICE = NOTICE.split(". ")[0]  # "RESEARCH REVIEW ONLY - not medical advice"


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CardSource(_Out):
    label: str


class Card(_Out):
    uuid: str
    summary: str = Field(max_length=SUMMARY_LIMIT)
    indicator: str = "info"
    detail: str
    source: CardSource


class CdsResponse(_Out):
    cards: list[Card]


class CardItem(_Out):
    """What one card says, before it is a card: the kind of item, a key unique within the replay."""

    kind: str
    key: str
    summary: str
    detail: str


def response(result: ReplayResult, kinds: list[Callable[[ReplayResult], list[CardItem]]] | None = None) -> CdsResponse:
    """One card per item of every kind, in the order of the kinds."""
    makers = kinds if kinds is not None else ITEM_KINDS
    items = [item for make in makers for item in make(result)]
    return CdsResponse(cards=[card(result, item) for item in items])


def to_json(result: ReplayResult) -> str:
    return json.dumps(response(result).model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"


def card(result: ReplayResult, item: CardItem) -> Card:
    rs = result.ruleset
    label = f"{SHORT_NOTICE}. Rule set {rs.id} v{rs.version} sha256:{rs.content_hash[:16]}"
    key = "|".join((result.scenario.id, rs.id, rs.version, rs.content_hash, item.kind, item.key))
    return Card(uuid=str(uuid.uuid5(NAMESPACE, key)), summary=short(item.summary), detail=item.detail,
                source=CardSource(label=label))


def short(text: str) -> str:
    """The summary within the limit, cut at a word with an ellipsis when it is longer."""
    text = " ".join(text.split())
    if len(text) <= SUMMARY_LIMIT:
        return text
    return text[: SUMMARY_LIMIT - 1].rsplit(" ", 1)[0] + "…"


# --- decision points ---------------------------------------------------------------------------


def decision_point_items(result: ReplayResult) -> list[CardItem]:
    return [CardItem(kind="decision-point", key=f"{dp.rule_id}|{dp.occurrence}|{dp.day}|{dp.day_latest}",
                     summary=dp.summary, detail=decision_point_detail(result, dp))
            for dp in result.decision_points]


def decision_point_detail(result: ReplayResult, dp: DecisionPoint) -> str:
    """Markdown: the notice, what the rule puts up for review, the conditions met with their values."""
    # the values as a person reads them (a bound kept: >7500), not the fact's field names
    rows = "\n".join(f"| {cell(c.condition)}{' (case-specific)' if c.case_specific else ''} | "
                     f"{cell(c.met_by or 'yes')} |" for c in dp.conditions)
    assumptions = [p.name for p in dp.parameters if p.assumption]
    parts = [
        f"**{NOTICE}**",
        cell(dp.detail, table=False),
        f"Day {day_text(dp)} ({dp.timing}); scenario `{result.scenario.id}`"
        + (" (hypothetical)" if result.scenario.hypothetical else ""),
        "| condition | met by |\n|---|---|\n" + rows,
        (f"What the timeline shows: {cell(dp.action_note, table=False)} (actual day {actual_text(dp)}, "
         f"lag {lag_text(dp)} days)."),
        "Sources:\n" + "\n".join(f"- {cell(s, table=False)}" for s in dp.sources),
    ]
    if assumptions:
        parts.append("Rests on thresholds no source states (assumptions): " + ", ".join(f"`{a}`" for a in assumptions))
    if dp.rests_on_disputed_value:
        parts.append("Rests on an index recomputed from the record where the source reports another figure: "
                     "the row that says so.")
    return "\n\n".join(parts)


def cell(text: str, table: bool = True) -> str:
    """File text made inert in Markdown: no HTML, no table breaks, no accidental emphasis."""
    out = text.replace("\\", "\\\\").replace("<", "\\<").replace("*", "\\*").replace("_", "\\_")
    return out.replace("|", "\\|").replace("\n", " ") if table else out


# --- actions no decision point put up for review ---------------------------------------------------


def unflagged_items(result: ReplayResult) -> list[CardItem]:
    """One card per action the timeline shows without a flag (ReplayResult.unflagged_actions).

    Read with getattr: the field arrives in a separate change, and a result without it has none.
    """
    return [CardItem(kind="unflagged-action", key=f"{a.event_id}|{a.code}|{a.day}|{a.day_latest}",
                     summary=f"For review: {a.code} on day {_span(a.day, a.day_latest)} has no decision point "
                             "of this rule set", detail=unflagged_detail(result, a))
            for a in getattr(result, "unflagged_actions", [])]


def unflagged_detail(result: ReplayResult, action: Any) -> str:
    parts = [f"**{NOTICE}**",
             (f"Event `{action.event_id}` ({cell(action.code, table=False)}, day "
              f"{_span(action.day, action.day_latest)}; placements: {', '.join(action.placements)}) is in the "
              f"timeline of scenario `{result.scenario.id}`, and no rule of this rule set put it up for review. "
              "This says something about the rules, not about the care given.")]
    for cand in action.candidates:
        day, placements = getattr(cand, "day", None), getattr(cand, "placements", [])
        when = "" if day is None else f" (day {day}{', ' + ' and '.join(placements) + ' placement' if placements else ''})"
        if not cand.not_met:
            parts.append(f"Rule `{cand.rule_id}` proposes it{when}: {cell(getattr(cand, 'note', None) or '', table=False)}")
            continue
        rows = "\n".join(f"| {cell(c.condition)} | {cell(c.read_as)} |" for c in cand.not_met)
        parts.append(f"Rule `{cand.rule_id}` proposes it{when}; not met that day:\n\n| condition | read as |\n|---|---|\n{rows}")
    return "\n\n".join(parts)


def _span(lo: int, hi: int) -> str:
    return f"{lo}" if lo == hi else f"{lo}..{hi}"


ITEM_KINDS: list[Callable[[ReplayResult], list[CardItem]]] = [decision_point_items, unflagged_items]

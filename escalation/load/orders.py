"""Wording that would read as an order, found in the free text a rule set prints.

Every output says what a rule puts up for research review, never what to do, and the rule files
supply much of that text as written: titles, rationales, labels' descriptions, case-specific
notes and the rule set's own title. A verb of command opening a clause ("give PE", "Now start
RTX") is refused there, and the error quotes the clause. The test is a heuristic on English, made
to refuse plain commands without refusing prose that only names an action:

- a verb of command used as a noun is prose: "start of ECMO", "use of iNO", "increase in titre";
- so is a clause with a verb of its own before any subordinate clause: "Stop dates of PE are
  not given" (but "Give RTX when the titre does not fall" commands);
- an example after "e.g." is not a sentence of its own, and a literal block's lines are joined;
- in a title, a clause after a comma or bracket ("PE (start date per report)") counts as an order
  only after a lead-in word ("PE, then give RTX"): there it far more often names than commands.

Titles also never use a modal of obligation ("must", "indicated"): Rule checks that itself.
"""

from __future__ import annotations

import re

IMPERATIVES = frozenset(
    {"start", "give", "administer", "begin", "initiate", "stop", "escalate", "add", "switch",
     "increase", "decrease", "use", "treat", "order", "prescribe", "commence", "intubate", "cannulate"}
)
# Words that may stand before a verb of command without changing it ("now give", "Then start").
LEAD_INS = frozenset({"now", "then", "immediately", "promptly", "urgently", "please", "also"})
# After a verb of command these make it a noun: "start of ECMO", "use of iNO", "increase in titre".
_NOUN_AFTER = frozenset({"of", "in"})
# A verb of a clause's own: the verb of command at its head is then its subject, not a command
# ("Stop dates of PE are not given"); one after a subordinating word belongs to that clause
# ("Give RTX when the titre does not fall" is still a command).
_OWN_VERBS = frozenset({"is", "are", "was", "were", "did", "does", "do", "has", "have", "had", "been"})
_SUBORDINATORS = frozenset({"when", "if", "as", "because", "while", "until", "after", "before", "once",
                            "unless", "since", "where", "whenever", "that", "which"})
# Abbreviations whose full stop ends no sentence ("e.g. add MMF" is an example, not an order).
_ABBREVIATIONS = re.compile(r"\b(?:e\.g|i\.e|et al|vs|cf|approx)\.", re.IGNORECASE)
_KEPT_STOP = "\u2024"  # one dot leader: an abbreviation's full stop while sentences are split

# Where a clause of a title may begin: a colon or semicolon, a sentence's end, a dash (an em or
# en dash, a spaced hyphen, two hyphens), a quotation mark; and, softly, a comma or bracket.
_TITLE_HARD = re.compile(r"[:;\"\u201c\u201d]|[.!?]\s|\s?[\u2013\u2014]\s?|\s-\s|--")
_TITLE_SOFT = re.compile(r"[,(\[]")


def _words(clause: str) -> list[str]:
    return [w.strip(":,.()[]\"'\u201c\u201d").lower() for w in clause.split()]


def reads_as_order(clause: str, after_lead_in_only: bool = False) -> bool:
    """Whether the clause opens with a verb of command and reads as a command, not prose naming
    one; with `after_lead_in_only`, only where a lead-in word comes first ("then give")."""
    words = _words(clause)
    led = False
    while words and words[0] in LEAD_INS:
        words.pop(0)
        led = True
    if not words or words[0] not in IMPERATIVES or (after_lead_in_only and not led):
        return False
    if len(words) > 1 and words[1] in _NOUN_AFTER:
        return False
    for w in words[1:]:
        if w in _SUBORDINATORS:
            return True
        if w in _OWN_VERBS:
            return False
    return True


def order_in_title(title: str) -> str | None:
    """The clause of a title that reads as an order, or None."""
    for part in _TITLE_HARD.split(title):
        pieces = _TITLE_SOFT.split(part)
        if reads_as_order(pieces[0]):
            return pieces[0].strip()
        found = next((p.strip() for p in pieces[1:] if reads_as_order(p, after_lead_in_only=True)), None)
        if found is not None:
            return found
    return None


def order_in_text(text: str) -> str | None:
    """The sentence or clause of a text (rationale, description, note) that reads as an order, or None.

    Sentences are split at their ends and at semicolons, after joining a literal block's lines and
    keeping abbreviations whole; a colon opens no command here ("Two options were named: add
    cyclophosphamide, or switch" lists, it does not order)."""
    joined = _ABBREVIATIONS.sub(lambda m: m.group().replace(".", _KEPT_STOP), " ".join(text.split()))
    for sentence in re.split(r"(?<=[.;!?])\s+", joined):
        if reads_as_order(sentence):
            return sentence.strip().replace(_KEPT_STOP, ".")
    return None

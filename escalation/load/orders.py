"""Wording that would read as an order, found in the free text a rule set prints.

Every output says what a rule puts up for research review, never what to do, and the rule files
supply much of that text as written: titles, rationales, labels' descriptions, case-specific
notes and the rule set's own title. A verb of command opening a clause ("give PE", "Now start
RTX") is refused there, and the error quotes the clause. The test is a heuristic on English, made
to refuse plain commands without refusing prose that only names an action:

- a verb of command used as a noun is prose: "start of ECMO", "start date", "start and stop
  dates", "use of iNO", "increase in titre";
- so is a clause with a verb of its own: "Stop dates of PE are not given", "Switch to RTX
  reported in 2 cases"; a verb after a comma, colon, bracket, 'and' or a subordinating word
  belongs to another clause ("Give RTX, the titre has not fallen" and "Give RTX when it does
  not fall" command);
- an example after "e.g." is not a sentence of its own, and a literal block's lines are joined;
- in a title, a clause after a comma or bracket ("PE (start date per report)") counts as an order
  only after a lead-in word ("PE, then give RTX"): there it far more often names than commands.

Titles also never use a modal of obligation ("must", "indicated"), and a label's description
or a rule set's title is read as a title too, so a phrase after a colon or dash may not command.
"""

from __future__ import annotations

import re

IMPERATIVES = frozenset(
    {"start", "give", "administer", "begin", "initiate", "stop", "escalate", "add", "switch",
     "increase", "decrease", "use", "treat", "order", "prescribe", "commence", "intubate", "cannulate"}
)
# Modals of obligation: a title never says them ("must", "indicated").
MODALS = frozenset({"must", "should", "shall", "required", "indicated", "mandatory", "needs"})
# Words that may stand before a verb of command without changing it ("now give", "Then start").
LEAD_INS = frozenset({"now", "then", "immediately", "promptly", "urgently", "please", "also"})
# After a verb of command these make it a noun: "start of ECMO", "use in RP-ILD", "start date".
_NOUN_AFTER = frozenset({"of", "in", "date", "dates", "day", "days", "time", "times", "criteria",
                         "criterion", "rule", "rules", "point", "points", "order", "follows"})
# Partners in a pair of nouns made of verbs: "start and stop dates", "begin and end of ECMO".
_PAIRED = IMPERATIVES | {"end", "finish", "continue", "duration"}
# A verb of the clause's own: the verb of command at its head is then its subject, not a command
# ("Stop dates of PE are not given", "Switch to RTX reported in 2 cases"). Only within the
# clause: after a comma, colon, dash, bracket, 'and' or a subordinating word a verb belongs to
# another clause ("Give RTX, the titre has not fallen" and "Give RTX when it has not" command).
_OWN_VERBS = frozenset({"is", "are", "was", "were", "did", "does", "do", "has", "have", "had", "been",
                        "reported", "taken", "given", "described", "noted", "recorded", "shown", "stated",
                        "used", "followed", "preceded", "came", "comes"})
_SUBORDINATORS = frozenset({"when", "if", "as", "because", "while", "until", "after", "before", "once",
                            "unless", "since", "where", "whenever", "that", "which"})
_BOUNDARY = re.compile(r"^[(\[\u2013\u2014-]|[,:;)\]]$")
# Abbreviations whose full stop ends no sentence ("e.g. add MMF" is an example, not an order).
_ABBREVIATIONS = re.compile(r"\b(?:e\.g|i\.e|et al|vs|cf|approx)\.", re.IGNORECASE)
_KEPT_STOP = "\u2024"  # one dot leader: an abbreviation's full stop while sentences are split

# Where a clause of a title may begin: a colon or semicolon, a sentence's end, a dash (an em or
# en dash, a spaced hyphen, two hyphens), a quotation mark; and, softly, a comma or bracket.
_TITLE_HARD = re.compile(r"[:;\"\u201c\u201d]|[.!?]\s|\s?[\u2013\u2014]\s?|\s-\s|--")
_TITLE_SOFT = re.compile(r"[,(\[]")


def _mask(text: str) -> str:
    """Abbreviations' full stops hidden, so that splitting at sentence ends keeps them whole."""
    return _ABBREVIATIONS.sub(lambda m: m.group().replace(".", _KEPT_STOP), text)


def _unmask(text: str) -> str:
    return text.strip().replace(_KEPT_STOP, ".")


def _word(token: str) -> str:
    return token.strip(":,.()[]\"'\u201c\u201d").lower()


def reads_as_order(clause: str, after_lead_in_only: bool = False) -> bool:
    """Whether the clause opens with a verb of command and reads as a command, not prose naming
    one; with `after_lead_in_only`, only where a lead-in word comes first ("then give")."""
    tokens = clause.split()
    led = False
    while tokens and _word(tokens[0]) in LEAD_INS:
        tokens.pop(0)
        led = True
    if not tokens or _word(tokens[0]) not in IMPERATIVES or (after_lead_in_only and not led):
        return False
    rest = tokens[1:]
    if not rest and not led:
        return False  # a word alone names the action ('PE "start" as reported'); "Now start" commands
    while len(rest) >= 2 and _word(rest[0]) == "and" and _word(rest[1]) in _PAIRED:
        rest = rest[2:]  # "Start and stop dates ...": a pair, read on from its second word
    if _BOUNDARY.search(tokens[0]) is None and rest and _word(rest[0]) in _NOUN_AFTER:
        return False
    for token in rest:
        word = _word(token)
        if word in _OWN_VERBS:
            return False
        if word in _SUBORDINATORS or word in ("and", "but") or _BOUNDARY.search(token):
            return True
    return True


def order_in_title(title: str) -> str | None:
    """The clause of a title that reads as an order, or None."""
    kept = _mask(title)
    for part in _TITLE_HARD.split(kept):
        pieces = _TITLE_SOFT.split(part)
        if reads_as_order(pieces[0]):
            return _unmask(pieces[0])
        found = next((p.strip() for p in pieces[1:] if reads_as_order(p, after_lead_in_only=True)), None)
        if found is not None:
            return _unmask(found)
    return None


def modal_in(title: str) -> str | None:
    """A modal of obligation a title uses, or None."""
    return next((w for w in map(_word, title.split()) if w in MODALS), None)


def order_in_text(text: str) -> str | None:
    """The sentence or clause of a text (rationale, note) that reads as an order, or None.

    Sentences are split at their ends and at semicolons, after joining a literal block's lines and
    keeping abbreviations whole; a colon opens no command here ("Two options were named: add
    cyclophosphamide, or switch" lists, it does not order)."""
    joined = _mask(" ".join(text.split()))
    for sentence in re.split(r"(?<=[.;!?])\s+", joined):
        if reads_as_order(sentence):
            return _unmask(sentence)
    return None


def order_in_phrase(text: str) -> str | None:
    """A label's description or a rule set's title, read both as a title (a phrase after a colon
    or dash may command: "Pneumocystis: start prophylaxis") and as text."""
    return order_in_title(text) or order_in_text(text)

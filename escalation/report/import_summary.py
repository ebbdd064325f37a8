"""The summary `escalation import fhir` prints: what became scenarios, and what did not.

Nothing an import leaves out is silent: each patient without a scenario says why, every code
that maps to nothing is counted by resource type, system and code (with the code table's reason
where it gives one), records skipped for their status or a missing date are counted by reason,
and resource types the import does not read are counted by type. `escalation check` gives the
same counts in brief (`check_account`).
"""

from __future__ import annotations

from escalation.fhir.to_scenario import ImportSummary
from escalation.report.console import plain_text, plural, printable

LEFT_OUT_SHOWN = 5  # patients without a scenario that `check` names; `import fhir` lists every one


def summary_table(summary: ImportSummary, width: int) -> str:
    lines = [summary.notice, f"Read: {', '.join(summary.inputs)}",
             "Resources read: " + _counts(summary.resources)]
    if summary.read_once:
        lines.append(f"Read once: {plural(sum(summary.read_once.values()), 'duplicate resource')} "
                     f"({_counts(summary.read_once)}): the same type, id and content given again")
    if summary.not_read:
        lines.append("Not read (types the import does not use): " + _counts(summary.not_read))
    lines += ["", "Patients:"]
    for p in summary.patients:
        if p.scenario_id is None:
            lines.append(f"  - {p.patient}: no scenario: {p.skipped}")
        else:
            lines.append(f"  - {p.patient} -> {p.scenario_id}.yaml: {plural(p.events, 'event')}, {plural(p.diagnoses, 'diagnosis', 'diagnoses')}"
                         f"; day 0 = {p.day_zero_rule}")
    records = sum(summary.unmapped_records.values())
    lines += ["", f"Unmapped codes ({sum(u.count for u in summary.unmapped)}, counted by code, not imported; "
                  f"{plural(records, 'record')} left out with no code or value that maps):"]
    lines += [f"  - {u.count} x {u.resource_type} {u.system or '(no system)'}|{u.code or '-'}"
              + (f" {u.display!r}" if u.display else "") + (f": {u.why}" if u.why else "")
              for u in summary.unmapped] or ["  none"]
    lines += ["", "Records skipped:"]
    lines += [f"  - {s.count} x {s.resource_type}: {s.reason}" for s in summary.skipped] or ["  none"]
    if summary.noted:
        records = sum(summary.noted_records.values())
        lines += ["", f"Records imported with a note ({plural(records, 'record')}; listed by note, a record under "
                      "each of its notes):"]
        lines += [f"  - {n.count} x {n.resource_type}: {n.note}" for n in summary.noted]
    return plain_text("\n".join(lines), width) + "\n"


def check_account(summary: ImportSummary) -> tuple[str, list[str]]:
    """What `escalation check` says of one FHIR input: the summary's counts in one phrase, then
    the first few patients left out and why.

    A file can be valid FHIR and still give nothing to replay; the phrase says so in words, so
    that a researcher does not read `ok` as "every patient will be replayed".
    """
    left = [p for p in summary.patients if p.scenario_id is None]
    unmapped = sum(u.count for u in summary.unmapped)
    skipped = sum(s.count for s in summary.skipped)
    head = (f"{_importable(len(summary.patients), len(left))}; {plural(unmapped, 'unmapped code')}, "
            f"{plural(skipped, 'record')} skipped")
    if summary.read_once:
        head += f"; read once: {plural(sum(summary.read_once.values()), 'duplicate resource')}"
    lines = [printable(f"  left out: {p.patient}: {p.skipped}") for p in left[:LEFT_OUT_SHOWN]]
    if len(left) > LEFT_OUT_SHOWN:
        lines.append(f"  ... and {len(left) - LEFT_OUT_SHOWN} more left out (`escalation import fhir` "
                     "lists each with its reason)")
    return head, lines


def _importable(patients: int, left: int) -> str:
    written = patients - left
    if not patients:
        return "valid, but it holds no Patient, so no scenario can be imported"
    if not written:
        return ("valid, but its patient cannot" if patients == 1 else
                f"valid, but none of its {patients} patients can") + " be imported as a scenario"
    return f"{written} of {plural(patients, 'patient')} importable as {'a scenario' if written == 1 else 'scenarios'}"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) or "none"



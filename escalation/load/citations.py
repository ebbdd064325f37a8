"""Where a fact or a threshold comes from.

Every dated fact in a scenario and every rule and parameter in a rule set carries at least one
citation, so that a reviewer can go from any number on screen back to the sentence, table or
guideline it rests on. The kinds mirror what the project is allowed to rely on: the case
report itself, a reference the report cites, a named external guideline, or (for a timeline
imported from an EHR export) the FHIR resource a fact was read from.
"""

# Annotations are evaluated as the classes are made (no `from __future__ import annotations`):
# pydantic would otherwise compile and evaluate each one from its string, at every cold start.

from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

REPORT = "Nishi K, et al. Pediatr Rheumatol 2022 (case report, CC BY 4.0)"

# Sections of the case report a citation may name; closed so that a typo is caught at load time.
REPORT_SECTIONS: frozenset[str] = frozenset(
    {
        "Abstract",
        "Background",
        "Case presentation",
        "Discussion and conclusions",
        "Table 1",
        "Fig. 1",
        "Fig. 2",
    }
)
# The report's reference list runs from 1 to 26.
REPORT_REFERENCES = range(1, 27)


# A FHIR resource a fact was imported from, `Type/id` (FHIR R4 id: 1-64 of A-Z a-z 0-9 - .).
FHIR_RESOURCE = r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$"
_KINDS = ("section", "reference", "guideline", "fhir")


class Citation(BaseModel):
    """One pointer to a source: exactly one of `section`, `reference`, `guideline`, `fhir`.

    `fhir` names the resource an imported fact came from (`{fhir: "Observation/abc"}`), so that a
    timeline built from an EHR export keeps the same path back to its evidence as a transcription.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    section: str | None = Field(None, description="a section of the case report")
    reference: int | None = Field(None, description="a reference number of the case report")
    guideline: str | None = Field(None, description="a named external guideline or publication")
    fhir: str | None = Field(None, pattern=FHIR_RESOURCE,
                             description="the FHIR resource a fact was imported from, Type/id")
    figure: str | None = None
    table: str | None = None
    detail: str | None = Field(None, description="what in that source is used, in our own words")

    @model_validator(mode="after")
    def _one_kind(self) -> "Citation":
        kinds = [k for k in _KINDS if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("a citation names exactly one of section, reference, guideline, fhir")
        if self.section is not None and self.section not in REPORT_SECTIONS:
            raise ValueError(
                f"unknown report section {self.section!r}; known: {', '.join(sorted(REPORT_SECTIONS))}"
            )
        if self.reference is not None and self.reference not in REPORT_REFERENCES:
            raise ValueError(f"the report has references 1-26, not {self.reference}")
        return self

    @model_serializer(mode="wrap")
    def _without_absent_fhir(self, handler: SerializerFunctionWrapHandler) -> Any:
        """An absent `fhir` is not written, so rule-set content hashes and dumps stay as before."""
        data = handler(self)
        if self.fhir is None and isinstance(data, dict):
            data.pop("fhir", None)
        return data

    def label(self) -> str:
        if self.section is not None:
            head = f"report: {self.section}"
        elif self.reference is not None:
            head = f"report ref. {self.reference}"
        elif self.fhir is not None:
            head = f"FHIR {self.fhir}"
        else:
            head = str(self.guideline)
        extras = [x for x in (self.figure, self.table) if x]
        if extras:
            head += f" ({', '.join(extras)})"
        return head


"""The plain input of drafting: one reviewed pair and its textbook context.

A dataclass rather than an ORM row, so the drafting library runs and is tested without Django;
the Celery task builds it from a `Pair`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CLINICAL = "clinical"
DERMOSCOPIC = "dermoscopic"
PATHOLOGICAL = "pathological"
IMAGE_MODALITIES = (CLINICAL, DERMOSCOPIC, PATHOLOGICAL)

# Question types, in the order they are drafted (and so the order duplicates are resolved in).
MORPHOLOGY = "morphology"
DIAGNOSIS = "diagnosis"
DIFFERENTIAL = "differential"
MODALITY = "modality"
SITE = "site"
HISTOPATHOLOGY = "histopathology"
DERMOSCOPY = "dermoscopy"
MANAGEMENT = "management"
VERIFICATION = "verification"
QUESTION_TYPES = (
    MORPHOLOGY,
    DIAGNOSIS,
    DIFFERENTIAL,
    MODALITY,
    SITE,
    HISTOPATHOLOGY,
    DERMOSCOPY,
    MANAGEMENT,
    VERIFICATION,
)
# Only the template drafter writes this one: it comes straight from the age/sex fields.
DEMOGRAPHICS = "demographics"


@dataclass(frozen=True)
class DraftSource:
    """Everything a prompt may show about one pair; empty strings mean "not known"."""

    pair_id: int | str
    caption: str
    sub_caption: str = ""
    section_path: tuple[str, ...] = ()
    mentions: tuple[str, ...] = ()
    book_title: str = ""
    book_edition: str = ""
    modality: str = ""
    diagnosis: str = ""
    age: int | None = None
    sex: str = ""
    extra: dict[str, str] = field(default_factory=dict, compare=False)
    # The panel crop (PNG or JPEG bytes), sent to a vision drafter; None: text only.
    image: bytes | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Callers hand over lists from JSON fields; tuples keep the source hashable and frozen.
        object.__setattr__(self, "section_path", tuple(self.section_path or ()))
        object.__setattr__(self, "mentions", tuple(m for m in self.mentions or () if m))
        object.__setattr__(self, "modality", (self.modality or "").strip().lower())
        object.__setattr__(self, "sex", (self.sex or "").strip().upper()[:1])

    @property
    def section(self) -> str:
        return " > ".join(s for s in self.section_path if s)

    @property
    def sex_word(self) -> str:
        return {"F": "female", "M": "male"}.get(self.sex, "")

    @property
    def sex_words(self) -> str:
        """Every way an answer may say the reviewed sex; "woman" is as grounded as "female"."""
        return {"F": "female woman women girl", "M": "male man men boy"}.get(self.sex, "")

    def source_texts(self) -> list[str]:
        """The texts an answer may rest on: what the book says plus the reviewed fields."""
        texts = [self.caption, self.sub_caption, *self.section_path, *self.mentions]
        texts += [self.diagnosis, self.modality, self.sex_words]
        if self.age is not None:
            texts.append(str(self.age))
        return [t for t in texts if t]

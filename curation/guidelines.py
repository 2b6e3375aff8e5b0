"""The built-in definitions behind the guidelines panel, before any curator has edited them.

They follow how MM-Skin's three modalities are told apart in textbook figures, and what each
flag and reject reason is for, so that a new expert's first decisions match the others'.
"""

from __future__ import annotations

from curation.models import Flag, Guideline, Modality, RejectReason

DEFAULTS: dict[str, dict[str, str]] = {
    Guideline.Kind.MODALITY: {
        Modality.CLINICAL: (
            "A photograph of skin, hair, nails or mucosa taken with an ordinary camera, at any "
            "distance: the whole body, a region, or a close-up without a dermatoscope."
        ),
        Modality.DERMOSCOPIC: (
            "Taken through a dermatoscope: a magnified, evenly lit view of one lesion, often "
            "round-framed, with pigment network, dots, globules or vessels visible; polarised "
            "and contact images both count."
        ),
        Modality.PATHOLOGICAL: (
            "A microscope image of tissue: H&E or special stains, immunohistochemistry, "
            "electron micrographs. The magnification in the caption does not change this."
        ),
        Modality.OTHER: (
            "Anything that is none of the three: diagrams, charts, drawings, radiographs, "
            "photographs of instruments or of non-skin material. Say why in the notes if unsure."
        ),
    },
    Guideline.Kind.FLAG: {
        Flag.FACE: "The patient could be recognised: eyes uncovered, or a tattoo or scar "
        "that identifies them. Flag even when the lesion is the subject.",
        Flag.ANNOTATION_MARKS: "Arrows, circles, letters or rulers drawn on the image "
        "itself. Panel letters in a corner do not count.",
        Flag.POOR_QUALITY: "Blurred, over-compressed, very small or badly exposed, but the "
        "finding can still be seen. If it cannot, reject instead.",
        Flag.NOT_DERMATOLOGY: "A correct pair whose subject is not a skin disease (for "
        "example a systemic sign shown only on an X-ray).",
    },
    Guideline.Kind.REJECT_REASON: {
        RejectReason.NOT_A_FIGURE: "Tables, charts, flow diagrams, logos and decorations "
        "that the extractor took for a figure.",
        RejectReason.WRONG_CAPTION: "The caption describes another image: a neighbouring "
        "figure's, or one from another page.",
        RejectReason.BAD_CROP: "The crop cuts the image off, or holds several panels, or "
        "part of the page around it. The panel editor can often fix it instead.",
        RejectReason.IDENTIFIABLE: "The patient is identifiable and the image cannot be "
        "used even with a flag (full face, name or record number visible).",
        RejectReason.POOR_QUALITY: "The finding cannot be seen at all.",
        RejectReason.DUPLICATE: "The same picture already appears in another pair, in this "
        "book or another.",
        RejectReason.OTHER: "Anything else; the note must say what.",
    },
}

LABELS = {
    Guideline.Kind.MODALITY: dict(Modality.choices),
    Guideline.Kind.FLAG: dict(Flag.choices),
    Guideline.Kind.REJECT_REASON: dict(RejectReason.choices),
}

"""Sub-caption styles (#11 class 8) and citations (class 9) on caption and body strings copied
from real PDFs in public repositories' test data (the document is named on each case; see
tests/data/real/pages/provenance.json for where each one lives)."""

from __future__ import annotations

import pytest

from curation.extract.annotate import modality_from_text, split_subcaptions
from curation.extract.mentions import find_refs

# CeON/CERMINE cermine-web examples/example3.pdf, page 6 (StampPDF): "(A) ... (B) ...".
EXAMPLE3_FIG6 = (
    "Figure 6 Binding of compound 33RE to N-domain ACE (A) Residues of N-domain ACE (cyan) "
    "interacting with 33RE (purple) are shown as sticks. Potential hydrogen bonds and "
    "water-mediated interactions are shown as black and red dash lines respectively. (B) "
    "Schematic diagram of potential hydrogen bonds (dashed lines, distances in \u00c5: where "
    "1 \u00c5 = 0.1 nm) and hydrophobic interactions (grey symbols) between N-domain ACE (cyan) "
    "and 33RE (purple) obtained from LIGPLOT [49]."
)
# allenai/science-parse 2a774230....pdf, page 6 (Acrobat Distiller 3): inline "(a) X and (b) Y".
DISTILLER_FIG4 = "Fig. 4. PSNR of VBR video reconstructions: (a) CTL and (b) hybrid."
# opendatalab/MinerU demo/pdfs/demo3.pdf, page 3 (pdfTeX): a lowercase "(a)" in a sentence.
DEMO3_FIG2 = (
    "Figure 2: TABLEFORMER input and attention biases in the self attention module. This "
    "example corresponds to table (a) in Figure 1 and its paired question \u201cquery\u201d. "
    "Different colors in the attention bias matrix denote different types of task independent "
    "biases derived based on the table structure and the associated text."
)
# allenai/pdffigures2 test-pdfs/f63cb207....pdf, page 2 (Adobe PDF Library 7): "(a)" markers
# with "shown in a" references between them.
NATURE_FIG1 = (
    "Figure 1 Simultaneous recordings from up to 12 electrodes. (a) Unipolar stimulation in "
    "slice via an extracellular pipette (S1). (b) Seven extracellular pipettes were positioned "
    "close to the soma. The isopotentials are shown in a (blue, sink; red, source). (c) Ve "
    "amplitude as a function of pipette location. (d) Perturbing Ve (magenta) through "
    "extracellular stimulation. (e) The membrane potential Vm was defined as Vm = Vi \u2212 Ve."
)


def test_parenthesised_capitals():
    _, subs = split_subcaptions(EXAMPLE3_FIG6)
    assert sorted(subs) == ["a", "b"]
    assert subs["a"].startswith("Residues of N-domain ACE")
    assert subs["b"].startswith("Schematic diagram")


def test_inline_markers_drop_the_joining_word():
    lead, subs = split_subcaptions(DISTILLER_FIG4)
    assert lead == "Fig. 4. PSNR of VBR video reconstructions:"
    assert subs == {"a": "CTL", "b": "hybrid."}


def test_lowercase_reference_in_a_sentence_is_no_marker():
    assert split_subcaptions(DEMO3_FIG2)[1] == {}


def test_markers_around_a_bare_reference():
    _, subs = split_subcaptions(NATURE_FIG1)
    assert sorted(subs) == ["a", "b", "c", "d", "e"]
    assert "shown in a" in subs["b"]


@pytest.mark.parametrize(
    ("caption", "expected"),
    [
        # "and" between letters names two panels; its own letters a and d are not panels.
        ("Figure 2 Lichen planus (A and C) on the wrist and (B) on the mucosa.", "abc"),
        ("Figure 2 Lichen planus. (A) Wrist. (B and C) Oral mucosa.", "abc"),
        ("Figure 2 Lichen planus. (a) Wrist. (b\u2013d) Oral mucosa.", "abcd"),
        ("Figure 2 Psoriasis. A: plaques on the knee; B: nail pitting.", "ab"),
        ("Figure 2 Psoriasis. A, Plaques on the knee. B, Nail pitting.", "ab"),
        # A letter referred back to ("in (a)", "the nail in (c)") introduces no panel.
        ("Figure 2 Acne. (a) Face. (b) Back, as in (a) and the nail in (c).", "ab"),
    ],
)
def test_subcaption_styles(caption, expected):
    assert "".join(sorted(split_subcaptions(caption)[1])) == expected


def test_and_letters_share_the_text():
    _, subs = split_subcaptions(
        "Figure 2 Lichen planus (A and C) on the wrist and (B) on the mucosa."
    )
    assert subs == {"a": "on the wrist", "c": "on the wrist", "b": "on the mucosa."}


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        # Unstructured-IO example-docs/pdf/embedded-images-tables.pdf, page 1.
        ("Langmuir adsorption isotherm. Figs. 6\u20138 show the SEM/EDX surface", ["6", "7", "8"]),
        # allenai/science-parse c0690a1d....pdf, pages 14 and 26 (Ghostscript).
        ("are given in Appendix B. See Figs. 2\u20134 to see the plots", ["2", "3", "4"]),
        ("these experiments are given in Figures 2\u20134. In all cases", ["2", "3", "4"]),
        # allenai/pdffigures2 f63cb207....pdf, page 3: supplementary figures are not the
        # article's figures.
        ("whether spikes were (Fig. 3d and Supplementary Figs. 4\u20139) to examine", ["3"]),
        ("Figs 1\u201310 show the whole series", [str(n) for n in range(1, 11)]),
        ("Figs. 2\u20134 and 6", ["2", "3", "4", "6"]),
        # Chapter-figure labels stay labels.
        ("Figs. 7-26 and 7-27", ["7.26", "7.27"]),
        ("(see Figure 7-26)", ["7.26"]),
    ],
)
def test_mention_ranges(text, labels):
    assert find_refs(text) == labels


def test_own_caption_is_no_mention():
    # The caption of Figure 2 cites Figure 1, not itself.
    assert find_refs(DEMO3_FIG2, skip_own_label=True) == ["1"]
    assert "2" in find_refs(DEMO3_FIG2)
    # Prose that starts with a label cites it.
    assert find_refs("Figure 3 shows C++ code that uses a Scanner", skip_own_label=True) == ["3"]


@pytest.mark.parametrize(
    ("caption", "modality"),
    [
        # Unstructured-IO example-docs/pdf/embedded-images-tables.pdf (Data in Brief).
        ("Fig. 5. Langmuir adsorption isotherm of ES.", "other"),
        # CeON/CERMINE cermine-web example3.pdf.
        ("Figure 5 Crystal structure of N-domain ACE in complex with compound 33RE", "other"),
        # CeON/CERMINE cermine-web example1.pdf, example2.pdf.
        ("Figure 1. Flow chart detailing the derivation of the study sample.", "other"),
        # A micrograph of material is no histology; one of tissue still is.
        ("Fig. 6. Scanning electron micrograph of the steel surface after corrosion", "other"),
        ("Fig. 6. Photomicrograph of the biopsy (H&E, \u00d7200)", "pathological"),
        ("Fig. 6. Dermoscopy of a naevus", "dermoscopic"),
        ("Fig. 6. Clinical photograph of a plaque on the shin", "clinical"),
    ],
)
def test_modality_other_from_caption(caption, modality):
    assert modality_from_text(caption)[0] == modality


def test_on_the_alone_is_weak_clinical_evidence():
    # PLOS ONE e4faf2c1, page 8: a bar chart's caption.
    text = "Bars representing mean values with same alphabets on the top are not different"
    mod, conf = modality_from_text(text)
    assert mod == "clinical" and conf < modality_from_text("Clinical photograph")[1]


def test_two_captions_in_one_block_are_two_figures(tmp_path):
    """Class 2, the shared-block form, on the issue's own example (no real page in the corpus
    shows it; the side-by-side form is in test_real_pages): one text line holding the captions
    of two pictures set side by side."""
    import pymupdf

    from curation.extract import extract_book

    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 120, 90), False)
    pix.set_rect(pix.irect, (200, 120, 110))
    page.insert_image(pymupdf.Rect(60, 100, 280, 265), pixmap=pix)
    page.insert_image(pymupdf.Rect(315, 100, 535, 265), pixmap=pix)
    page.insert_text(
        (60, 280),
        "Figure 3. A plaque on the shin.                     "
        "Figure 4. Dermoscopy of the same plaque.",
        fontsize=9,
    )
    path = tmp_path / "shared.pdf"
    doc.save(path)
    figs = {f.label: f for f in extract_book(path)}
    assert set(figs) == {"3", "4"}
    assert figs["3"].caption == "Figure 3. A plaque on the shin."
    assert figs["4"].caption == "Figure 4. Dermoscopy of the same plaque."
    assert figs["3"].bbox[2] < 300 < figs["4"].bbox[0]
    assert figs["3"].caption_bbox[2] <= figs["4"].caption_bbox[0]


def test_inline_markers_after_with():
    # CeON/CERMINE cermine-web examples/example3.pdf, page 7: "with (A) ... and (B) ..." marks
    # the panels; "with" is no reference word.
    caption = (
        "Figure 7 Comparison of the binding of compounds 33RE and RXP407 with N-domain ACE "
        "Residues of N-domain ACE (cyan) interacting with (A) 33RE (purple) and (B) RXP407 "
        "(green; PDB code 3NXQ [34]) are shown as sticks."
    )
    assert sorted(split_subcaptions(caption)[1]) == ["a", "b"]

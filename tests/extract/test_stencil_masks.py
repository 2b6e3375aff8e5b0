"""A stencil-mask image (/ImageMask, no colour space) is no composite, and never fails a book.

A real holdout document of the corpus stopped extraction with "cannot drop alpha for 'NULL'
colorspace": the panel splitter tried to flatten a mask as if it were a picture.
"""

import pymupdf

from curation.extract.panels import split_composite


def _mask(doc: pymupdf.Document) -> int:
    xref = doc.get_new_xref()
    doc.update_object(
        xref,
        "<< /Type /XObject /Subtype /Image /Width 16 /Height 16 /ImageMask true "
        "/BitsPerComponent 1 >>",
    )
    doc.update_stream(xref, bytes([0xF0, 0x0F] * 16))
    return xref


def test_a_stencil_mask_has_no_panels():
    doc = pymupdf.open()
    doc.new_page()
    assert pymupdf.Pixmap(doc, _mask(doc)).colorspace is None
    assert split_composite(doc, _mask(doc), (0, 0, 100, 100)) == []

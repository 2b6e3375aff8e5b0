"""Writing extraction results. Idempotent: a redelivered chunk or finalise changes nothing twice."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from curation import limits
from curation.events import EventAction
from curation.extract import ChunkResult, FigureInfo, LinkResult, PageInfo
from curation.extract.errors import MAX_MESSAGE, clean_text
from curation.extract.modality.model import UNKNOWN as UNKNOWN_MODALITY
from curation.models import (
    Figure,
    Flag,
    IngestChunk,
    Modality,
    Page,
    Pair,
    Panel,
    ReviewEvent,
    Sex,
    Textbook,
)
from curation.selectors.panels import FIX_ACTIONS
from curation.services import dispatch, duplicates
from curation.services.audit import record_event
from curation.services.storage import store_bytes

log = logging.getLogger(__name__)

# Machine-proposed pair fields; kept in Pair.proposed and copied to the working values only
# while no expert has decided on the pair.
PROPOSAL_FIELDS = ("text", "modality", "diagnosis", "age", "sex", "flags")
# The extractor's confidence (0..1) and reasons to doubt, from figures.json when present.
QUALITY_FIELDS = ("extract_confidence", "extract_doubts")
# The figure's note that extracted text was longer than its limit and was cut (see limits.py).
TEXT_TRUNCATED = "text_truncated"
MODALITY_UNKNOWN = "modality_unknown"  # a doubt: the pixels and caption did not settle it


def _lock_live_book(book_id: int, run: int) -> Textbook | None:
    """The book, row-locked, or None when this run was superseded or already ended."""
    book = Textbook.objects.select_for_update().filter(pk=book_id).first()
    if book is None or book.ingest_run != run:
        return None
    if book.status in (Textbook.Status.FAILED, Textbook.Status.DONE):
        return None
    return book


def _store_images(figures: Iterable[FigureInfo]) -> dict[int, tuple[str, list[str]]]:
    """Write crops before the transaction: content-addressed, so a retry rewrites nothing."""
    paths = {}
    for fig in figures:
        fig_path = store_bytes(fig.image_png, prefix="crops", ext="png")
        panel_paths = [store_bytes(p.image_png, prefix="crops", ext="png") for p in fig.panels]
        paths[id(fig)] = (fig_path, panel_paths)
    return paths


def _review_flags(fig: FigureInfo, panel_index: int) -> list[str]:
    """The flags an expert reviews on this pair: the panel's own (a face in panel b is not
    panel a's), only those the review form offers. The extractor's notes (caption position,
    low resolution, ...) stay on the Figure; on the Pair they would fail the review's check
    and turn every unchanged accept into an edit."""
    panel = fig.panels[panel_index]
    own = getattr(panel, "flags", None)
    source = own if own is not None else fig.flags
    return sorted(set(source) & set(Flag.values))


def _confidence(value) -> float | None:
    """The extractor's confidence as a number in 0..1, or None when it gave none (older
    extractors) or something that is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None
    return min(1.0, max(0.0, float(value)))


def _doubts(*sources) -> list[str]:
    """The extractor's reasons to doubt a figure and its panel, once each, in order."""
    seen: list[str] = []
    for source in sources:
        for reason in source if isinstance(source, list | tuple) else ():
            if isinstance(reason, str) and reason.strip():
                text = limits.clip(reason.strip(), 200)[0]
                if text not in seen:
                    seen.append(text)
    return seen


def _extract_quality(fig: FigureInfo, panel) -> dict:
    """Confidence and doubts for the pair of ``panel``: the lower of the panel's and the
    figure's confidence (a sure panel of a doubtful figure is still doubtful; the extractor's
    panels default to 1.0), and the doubts of both. Both keys are optional in the extractor's
    output (``getattr``): a figure without them is simply not doubtful."""
    known = [
        c
        for c in (
            _confidence(getattr(panel, "confidence", None)),
            _confidence(getattr(fig, "confidence", None)),
        )
        if c is not None
    ]
    return {
        "extract_confidence": min(known) if known else None,
        "extract_doubts": _doubts(getattr(fig, "doubts", None), getattr(panel, "doubts", None)),
    }


def _modality(panel, fig: FigureInfo) -> tuple[str, bool]:
    """The pair's modality and whether the extractor was unsure of it.

    Below the classifier's threshold the extractor answers ``unknown``: the pair then keeps
    its most likely class (a pair always has one of the four) and carries the doubt
    ``modality_unknown``, so the review queue's "doubtful" order brings it to an expert."""
    mod = panel.modality or fig.modality
    if mod == UNKNOWN_MODALITY:
        best = getattr(panel, "modality_best", "") or ""
        return (best if best in Modality.values else Modality.OTHER), True
    return mod, False


def _figure_modality(fig: FigureInfo) -> str:
    if fig.modality != UNKNOWN_MODALITY:
        return fig.modality
    mods = {_modality(p, fig)[0] for p in fig.panels}
    return mods.pop() if len(mods) == 1 else Modality.MIXED


def _pair_values(fig: FigureInfo, panel_index: int) -> dict:
    panel = fig.panels[panel_index]
    text = panel.subcaption if len(fig.panels) > 1 and panel.subcaption else fig.caption
    modality, unsure = _modality(panel, fig)
    quality = _extract_quality(fig, panel)
    if unsure:
        quality["extract_doubts"] = sorted({*quality["extract_doubts"], MODALITY_UNKNOWN})
    return {
        "text": text,
        "modality": modality,
        "modality_confidence": panel.modality_confidence,
        # which pixel model made the suggestion: its accuracy is measured against the experts
        "modality_model": getattr(panel, "modality_model", "") or "",
        "diagnosis": fig.diagnosis or "",
        "age": fig.age,
        "sex": fig.sex if fig.sex in Sex.values else None,  # the contract: female, male, None
        "flags": _review_flags(fig, panel_index),
        "figure_caption": fig.caption,
        **quality,
    }


def _upsert_pages(
    book: Textbook, pages: list[PageInfo], previews: dict[int, str]
) -> dict[int, Page]:
    rows = {}
    for info in pages:
        values = {
            "width": info.width,
            "height": info.height,
            "text": info.text,
            "section": list(info.section),
        }
        if info.number in previews:
            values["image"] = previews[info.number]
        page, _ = Page.objects.update_or_create(textbook=book, number=info.number, defaults=values)
        rows[info.number] = page
    return rows


def _fit_limits(fig: FigureInfo) -> None:
    """Cut extracted text over its limit instead of failing the book; the figure is flagged."""
    fig.caption, cut = limits.clip(fig.caption, limits.CAPTION)
    fig.diagnosis, cut_dx = limits.clip(fig.diagnosis or "", limits.DIAGNOSIS)
    cut_panels = False
    for panel in fig.panels:
        panel.subcaption, cut_panel = limits.clip(panel.subcaption, limits.SUBCAPTION)
        cut_panels |= cut_panel
    if (cut or cut_dx or cut_panels) and TEXT_TRUNCATED not in fig.flags:
        log.warning("figure %s on page %s: extracted text cut to its limit", fig.label, fig.page)
        fig.flags = [*fig.flags, TEXT_TRUNCATED]


def _upsert_figure(book: Textbook, page: Page, fig: FigureInfo, paths) -> Figure:
    fig_path, panel_paths = paths
    _fit_limits(fig)
    figure, _ = Figure.objects.update_or_create(
        page=page,
        label=fig.label,
        defaults={
            "textbook": book,
            "bbox": list(fig.bbox),
            "caption": fig.caption,
            "caption_bbox": list(fig.caption_bbox) if fig.caption_bbox else None,
            "image": fig_path,
            "section": list(fig.section),
            "mentions": [{"page": m.page, "text": m.text} for m in fig.mentions],
            "modality": _figure_modality(fig),
            "modality_confidence": fig.modality_confidence,
            "flags": list(fig.flags),
        },
    )
    if _has_manual_panel_fixes(figure):
        # An expert re-drew these panels; a new extraction must not undo that work.
        return figure
    for index, panel_info in enumerate(fig.panels):
        panel, _ = Panel.objects.update_or_create(
            figure=figure,
            index=index,
            defaults={
                "letter": panel_info.letter or "",
                "bbox": list(panel_info.bbox),
                "subcaption": panel_info.subcaption,
                "image": panel_paths[index],
            },
        )
        _upsert_pair(book, panel, _pair_values(fig, index))
    # Panels that a new extraction no longer sees go, unless an expert already decided on them.
    Panel.objects.filter(figure=figure, index__gte=len(fig.panels)).filter(
        pair__status=Pair.Status.PROPOSED
    ).delete()
    return figure


def _has_manual_panel_fixes(figure: Figure) -> bool:
    pair_ids = Pair.objects.filter(panel__figure=figure).values("pk")
    return ReviewEvent.objects.filter(
        target_type="pair", target_id__in=pair_ids, action__in=FIX_ACTIONS
    ).exists()


def _upsert_pair(book: Textbook, panel: Panel, values: dict) -> Pair:
    pair = Pair.objects.select_for_update().filter(panel=panel).first()
    working = {field: values[field] for field in PROPOSAL_FIELDS}
    quality = {field: values[field] for field in QUALITY_FIELDS}
    if pair is None:
        pair = Pair.objects.create(
            panel=panel, textbook=book, proposed=values, **working, **quality
        )
        record_event(None, pair, EventAction.PAIR_PROPOSED, after=values)
        return pair
    if pair.proposed == values:
        return pair
    before = pair.proposed
    pair.proposed = values
    for field, value in quality.items():  # the machine's view of itself, whatever the status
        setattr(pair, field, value)
    if pair.status == Pair.Status.PROPOSED:
        for field, value in working.items():
            setattr(pair, field, value)
    pair.version += 1
    pair.save()
    record_event(None, pair, EventAction.PAIR_REPROPOSED, before=before, after=values)
    return pair


def _drop_vanished(book: Textbook, first: int, last: int, kept: set[int]) -> None:
    """Figures an earlier run found in these pages but this one did not, unless reviewed."""
    stale = Figure.objects.filter(
        textbook=book, page__number__gte=first, page__number__lte=last
    ).exclude(pk__in=kept)
    for figure in stale:
        if not figure.panels.exclude(pair__status=Pair.Status.PROPOSED).exists():
            figure.delete()


def record_chunk(
    book_id: int,
    run: int,
    first: int,
    last: int,
    result: ChunkResult,
    *,
    page_images: dict[int, bytes] | None = None,
) -> bool:
    """Store one chunk's pages, figures, panels and pairs. Returns False when it was a no-op."""
    paths = _store_images(result.figures)
    previews = {
        number: store_bytes(data, prefix="pages", ext="jpg")
        for number, data in (page_images or {}).items()
    }
    with transaction.atomic():
        book = _lock_live_book(book_id, run)
        if book is None:
            return False
        chunk = (
            IngestChunk.objects.select_for_update()
            .filter(textbook=book, run=run, first_page=first)
            .first()
        )
        if chunk is None or chunk.status == IngestChunk.Status.DONE:
            return False
        pages = _upsert_pages(book, result.pages, previews)
        kept = set()
        for fig in result.figures:
            page = pages.get(fig.page) or Page.objects.get(textbook=book, number=fig.page)
            kept.add(_upsert_figure(book, page, fig, paths[id(fig)]).pk)
        _drop_vanished(book, first, last, kept)

        chunk.status = IngestChunk.Status.DONE
        chunk.heartbeat_at = None
        chunk.orphans = list(result.orphans)
        chunk.figures_found = len(result.figures)
        chunk.save()
        book.status = Textbook.Status.PROCESSING
        book.chunks_done += 1
        book.pages_done += last - first + 1
        book.figures_found += len(result.figures)
        book.save()
        if book.chunks_done >= book.chunks_total:
            dispatch.enqueue_finalize(book.pk, run)
    return True


def finalize_ingest(book_id: int, run: int, link: LinkResult) -> bool:
    """Join figures split across pages, attach body-text mentions, and mark the book done."""
    paths = _store_images(link.figures)
    with transaction.atomic():
        book = _lock_live_book(book_id, run)
        if book is None:
            return False
        if book.chunks_done < book.chunks_total:
            log.warning("finalise for book %s run %s before its chunks finished", book_id, run)
            return False
        for fig in link.figures:
            page = Page.objects.get(textbook=book, number=fig.page)
            _upsert_figure(book, page, fig, paths[id(fig)])
        figures = list(Figure.objects.filter(textbook=book))
        for figure in figures:
            found = link.mentions.get(figure.label, [])
            figure.mentions = [{"page": m.page, "text": m.text} for m in found]
        Figure.objects.bulk_update(figures, ["mentions"], batch_size=500)

        book.figures_found = len(figures)
        book.status = Textbook.Status.DONE
        book.ingest_finished_at = timezone.now()
        book.save()
        record_event(
            None,
            book,
            EventAction.INGEST_COMPLETED,
            after={
                "run": run,
                "figures": len(figures),
                "pairs": Pair.objects.filter(textbook=book).count(),
            },
        )
    duplicates.safe_index_textbook(book_id)  # near-duplicate crops across books (issue 13)
    return True


def fail_ingest(book_id: int, run: int, message: str) -> bool:
    """End the run as failed with a message a curator can act on; other books are untouched.

    The message is cleaned again here (no paths or object reprs, bounded), whoever wrote it.
    """
    with transaction.atomic():
        book = _lock_live_book(book_id, run)
        if book is None:
            return False
        book.status = Textbook.Status.FAILED
        book.error = clean_text(message, MAX_MESSAGE)
        book.ingest_finished_at = timezone.now()
        book.save()
        record_event(None, book, EventAction.INGEST_FAILED, after={"run": run, "error": book.error})
    return True


def link_inputs(book_id: int, run: int) -> tuple[list[tuple[str, int]], list[dict]]:
    """What finalise needs from the chunks: figure labels with pages, and their orphans."""
    refs = list(Figure.objects.filter(textbook_id=book_id).values_list("label", "page__number"))
    orphans: list[dict] = []
    for chunk_orphans in IngestChunk.objects.filter(textbook_id=book_id, run=run).values_list(
        "orphans", flat=True
    ):
        orphans.extend(chunk_orphans)
    return refs, orphans

"""Re-render panel crops from the PDF after an expert redrew, split or merged panels.

Thin and idempotent: it renders the pairs' current boxes, stores the PNGs content-addressed
(the same bytes twice are one file), and the service keeps only crops whose box is still
current. A redelivered or duplicated task therefore changes nothing the second time.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from curation.extract.crop import render_boxes
from curation.services import panels as panel_service
from curation.services.storage import local_pdf_path, store_bytes

log = logging.getLogger(__name__)

TASK_OPTIONS = {"acks_late": True, "reject_on_worker_lost": True}  # queue: CELERY_TASK_ROUTES


@shared_task(name="workers.panels.render_crops", **TASK_OPTIONS)
def render_crops(figure_id: int, pair_ids: list[int], figure_too: bool = False) -> int:
    job = panel_service.crop_job(figure_id, pair_ids)
    if job is None or not (job["boxes"] or figure_too):
        return 0
    ids = list(job["boxes"])
    boxes = [job["boxes"][pid] for pid in ids]
    if figure_too:
        boxes.append(job["figure_bbox"])
    try:
        path = local_pdf_path(job["file"], job["sha256"])
        images = render_boxes(path, job["page"], boxes, dpi=settings.CROP_DPI)
        stored = [store_bytes(png, prefix="crops", ext="png") for png in images]
    except Exception as exc:
        log.exception("re-rendering crops of figure %s failed", figure_id)
        panel_service.crops_failed(figure_id, ids, f"The crop could not be rendered: {exc}")
        return 0
    crops = {pid: (job["boxes"][pid], stored[i]) for i, pid in enumerate(ids)}
    figure_crop = (job["figure_bbox"], stored[-1]) if figure_too else None
    return panel_service.apply_crops(figure_id, crops, figure_crop)

"""The panel editor: redraw, split and merge a figure's panels on its page, fix sub-captions."""

from __future__ import annotations

import math

from django.contrib import messages
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode

from curation.api.base import as_int
from curation.selectors.panels import RENDERING, figure_layout, gutter_cut
from curation.services import panels as panel_service
from curation.services.errors import ServiceError
from curation.views.base import RoleRequiredView
from skinplatform.accounts.roles import REVIEWERS, STAFF, roles_of

ACTIONS = ("adjust", "split", "merge", "subcaptions", "rerender")


def _back_pair(layout, wanted: str | None) -> int | None:
    ids = [row.pair.pk for row in layout.rows if row.pair]
    if as_int(wanted) in ids:
        return as_int(wanted)
    return ids[0] if ids else None


def _rows_data(layout) -> list[dict]:
    return [
        {
            "pair": row.pair.pk if row.pair else None,
            "version": row.pair.version if row.pair else None,
            "status": row.pair.status if row.pair else "",
            "index": row.panel.index,
            "letter": row.panel.letter,
            "bbox": list(row.panel.bbox),
            "machine": row.machine_bbox,
            "render": row.render,
        }
        for row in layout.rows
    ]


def _floats(text: str) -> list[float] | None:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        return None
    return values if len(values) == 4 else None


def _versions(post) -> dict[int, int]:
    found = {}
    for key, value in post.items():
        pair_id, version = as_int(key[8:]), as_int(value)
        if key.startswith("version_") and pair_id is not None and version is not None:
            found[pair_id] = version
    return found


class PanelEditorView(RoleRequiredView):
    allowed_roles = REVIEWERS

    def _render(self, request, pk: int, *, status: int = 200, **extra):
        layout = figure_layout(pk)
        if layout is None:
            raise Http404
        back = _back_pair(layout, request.GET.get("pair"))
        context = {
            "layout": layout,
            "figure": layout.figure,
            "page": layout.page,
            "rows": layout.rows,
            "rows_data": _rows_data(layout),
            "back_pair": back,
            "query": f"?{urlencode({'pair': back})}" if back else "",
            "can_force": bool(roles_of(request.user) & STAFF),
            **extra,
        }
        return render(request, "review/panels.html", context, status=status)

    def get(self, request, pk: int):
        return self._render(request, pk)

    def post(self, request, pk: int):
        # The last non-empty value: a clicked submit button comes after the hidden field.
        action = next((a for a in reversed(request.POST.getlist("action")) if a), "")
        if action not in ACTIONS:
            return self._render(request, pk, status=400, error="Unknown action.")
        try:
            message = getattr(self, f"_{action}")(request, pk)
        except ServiceError as exc:
            return self._render(request, pk, status=exc.status, error=exc.message, code=exc.code)
        messages.success(request, message)
        url = reverse("panel-editor", args=[pk])
        wanted = request.POST.get("pair") or request.GET.get("pair")
        return redirect(url + (f"?{urlencode({'pair': wanted})}" if wanted else ""))

    @staticmethod
    def _force(request) -> bool:
        return request.POST.get("force") in ("on", "1", "true")

    def _adjust(self, request, pk: int) -> str:
        layout = figure_layout(pk)
        if layout is None:
            raise ServiceError("not_found", "No such figure.", status=404)
        current = {row.pair.pk: row.panel.bbox for row in layout.rows if row.pair}
        boxes = {}
        for pid, bbox in current.items():
            sent = _floats(request.POST.get(f"box_{pid}", ""))
            if sent is None:
                continue
            if any(abs(a - b) > 0.01 for a, b in zip(sent, bbox, strict=True)):
                boxes[pid] = sent
        added = [b for b in request.POST.get("new_boxes", "").split(";") if b.strip()]
        changed = panel_service.adjust_panels(
            pk, request.user, boxes=boxes, versions=_versions(request.POST),
            force=self._force(request), new_boxes=added,
        )  # fmt: skip
        moved = len(changed) - len(added)
        parts = [f"Saved {moved} box(es)"] if moved else []
        if added:
            parts.append(
                f"added {len(added)} panel(s)" if moved else f"Added {len(added)} panel(s)"
            )
        return ", ".join(parts) + "; the crops are re-rendering."

    def _split(self, request, pk: int) -> str:
        pid = as_int(request.POST.get("split_pair"))
        if pid is None:
            raise ServiceError("invalid", "Choose the panel to split.")
        boxes = [b for b in request.POST.get("split_boxes", "").split(";") if b.strip()]
        versions = _versions(request.POST)
        pairs = panel_service.split_panel(
            pk, request.user, pair_id=pid, boxes=boxes,
            version=versions.get(pid, -1), force=self._force(request),
        )  # fmt: skip
        return f"Split into {len(pairs)} panels; the crops are re-rendering."

    def _merge(self, request, pk: int) -> str:
        ids = [as_int(v) for v in request.POST.getlist("merge") if as_int(v) is not None]
        survivor = panel_service.merge_panels(
            pk, request.user, pair_ids=ids, versions=_versions(request.POST),
            force=self._force(request),
        )  # fmt: skip
        return f"Merged {len(ids)} panels into pair {survivor.pk}; the crop is re-rendering."

    def _subcaptions(self, request, pk: int) -> str:
        layout = figure_layout(pk)
        if layout is None:
            raise ServiceError("not_found", "No such figure.", status=404)
        changes = {}
        for row in layout.rows:
            if row.pair is None or f"letter_{row.pair.pk}" not in request.POST:
                continue
            letter = request.POST.get(f"letter_{row.pair.pk}", "").strip()
            sub = request.POST.get(f"subcaption_{row.pair.pk}", "").strip()
            if (letter, sub) != (row.panel.letter, row.panel.subcaption):
                changes[row.pair.pk] = {"letter": letter, "subcaption": sub}
        changed = panel_service.set_subcaptions(
            pk, request.user, changes=changes, versions=_versions(request.POST)
        )
        return f"Saved the sub-captions of {len(changed)} panel(s)."

    def _rerender(self, request, pk: int) -> str:
        queued = panel_service.request_render(pk, request.user)
        return f"Queued {len(queued)} crop(s) again." if queued else "Every crop is up to date."


class PanelRenderStatusView(RoleRequiredView):
    """A small fragment the review page and the editor poll while crops re-render."""

    allowed_roles = REVIEWERS

    def get(self, request, pk: int):
        layout = figure_layout(pk)
        if layout is None:
            raise Http404
        wanted = request.GET.get("pair", "")
        rows = [r for r in layout.rows if r.pair and (not wanted or str(r.pair.pk) == wanted)]
        context = {
            "figure": layout.figure,
            "pair": wanted,
            "rendering": any(r.render == RENDERING for r in rows),
            "failed": any(r.render == "failed" for r in rows),
            "was": request.GET.get("was") == "1",
            # The new crops, so that the page showing the old ones swaps them in place.
            "crops": [{"pair": r.pair.pk, "image": r.panel.image} for r in rows if r.panel.image],
        }
        return render(request, "review/_render_status.html", context)


class PanelGutterView(RoleRequiredView):
    """Where a split of a box should cut: the white gutter between two panels (JSON)."""

    allowed_roles = REVIEWERS

    def get(self, request, pk: int):
        box = _floats(request.GET.get("box", ""))
        axis = request.GET.get("axis", "")
        if box is None or axis not in ("v", "h") or not all(map(math.isfinite, box)):
            return JsonResponse({"error": "box=x0,y0,x1,y1 and axis=v|h"}, status=400)
        x0, y0, x1, y1 = box
        if x1 - x0 < 1 or y1 - y0 < 1:
            return JsonResponse({"error": "The box is empty."}, status=400)
        found = gutter_cut(pk, box, vertical=axis == "v")
        if found is None:
            raise Http404
        return JsonResponse(found)

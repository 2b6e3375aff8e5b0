"""Curator dashboard and project settings."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import escape
from django.utils.http import urlencode
from django.utils.safestring import SafeString, mark_safe

from curation.models import Pair, ProjectSettings
from curation.selectors import dashboard as select
from curation.selectors import modality as modality_select
from curation.services import drafting as drafting_service
from curation.services import modality as modality_service
from curation.services import review as review_service
from curation.services.errors import ServiceError
from curation.views.base import RoleRequiredView
from skinplatform.accounts.roles import STAFF

# Drawn left to right in a progress bar: the decided first, what is left last.
BAR_ORDER = (
    Pair.Status.ACCEPTED,
    Pair.Status.EDITED,
    Pair.Status.REJECTED,
    Pair.Status.DISPUTED,
    Pair.Status.PROPOSED,
)
BAR_WIDTH = 240
DAY_BAR, DAY_GAP, CHART_HEIGHT = 10, 2, 40


def bar(counts: dict, width: int = BAR_WIDTH) -> list[dict]:
    """The segments of a stacked progress bar: x and width in SVG user units, per status.

    Rounded so that the segments tile the bar exactly (no gap, no overlap)."""
    total = counts.get("total") or 0
    segments, done, x = [], 0, 0
    if not total:
        return segments
    for status in BAR_ORDER:
        n = counts.get(status, 0)
        if not n:
            continue
        done += n
        end = round(done * width / total)
        segments.append({"status": status, "n": n, "x": x, "w": end - x})
        x = end
    return segments


def queue_url(base: str | None = None, **filters) -> str:
    """The review queue, filtered (the keys of ``views.review``: book, modality, queue).

    ``base``: the queue's path, reversed once by a caller that builds many links."""
    kept = {k: v for k, v in filters.items() if v not in (None, "")}
    return (base or reverse("review-next")) + (f"?{urlencode(kept)}" if kept else "")


def _decided(row: dict) -> int:
    return row["total"] - row[Pair.Status.PROPOSED] - row[Pair.Status.DISPUTED]


def _chart(experts: list[dict]) -> dict:
    """Bars of reviews per day for each expert, on one scale so that rows compare."""
    peak = max((d["reviews"] for e in experts for d in e["days"]), default=0) or 1
    days = len(experts[0]["days"]) if experts else 0
    for expert in experts:
        for i, day in enumerate(expert["days"]):
            h = round(day["reviews"] * (CHART_HEIGHT - 2) / peak, 1)
            day.update(x=i * (DAY_BAR + DAY_GAP), w=DAY_BAR, h=h, y=round(CHART_HEIGHT - h, 1))
    return {"peak": peak, "width": max(days * (DAY_BAR + DAY_GAP) - DAY_GAP, 1),
            "height": CHART_HEIGHT}  # fmt: skip


# The table bodies are built here rather than in the template: at 100,000 pairs (some 140
# books, each with a bar and a link per modality) the template engine alone took longer than
# every query together. Every text that comes from the database goes through ``escape``.


def svg_bar(segments: list[dict], width: int, height: int, label: str) -> str:
    rects = "".join(
        f'<rect class="seg-{s["status"]}" x="{s["x"]}" y="0" width="{s["w"]}" '
        f'height="{height}" data-n="{s["n"]}"></rect>'
        for s in segments
    )
    return (
        f'<svg class="bar" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(label)}"><rect class="seg-empty" x="0" y="0" '
        f'width="{width}" height="{height}"></rect>{rects}</svg>'
    )


def book_rows(books: list[dict]) -> SafeString:
    out = []
    for b in books:
        links = " · ".join(
            f'<a href="{escape(m["queue"])}" class="modality-link" '
            f'data-modality="{escape(m["modality"])}">{escape(m["modality"])} {m["proposed"]}</a>'
            for m in b["modalities"]
        )
        disputed = (
            f'<a href="{escape(b["adjudication"])}">{b["disputed"]}</a>' if b["disputed"] else "0"
        )
        label = f"{b['decided']} of {b['total']} decided"
        out.append(
            f'<tr data-book="{b["book_id"]}"><td><a href="{escape(b["queue"])}" '
            f'class="queue-link">{escape(b["book"])}</a></td>'
            f"<td>{svg_bar(b['bar'], BAR_WIDTH, 12, label)}</td>"
            f'<td class="num">{b["decided"]} / {b["total"]}</td><td>{links}</td>'
            f'<td class="num">{disputed}</td></tr>'
        )
    return mark_safe("".join(out))  # every database text above is escaped


def expert_rows(experts: list[dict], chart: dict) -> SafeString:
    width, height = chart["width"], chart["height"]
    out = []
    for e in experts:
        bars = "".join(
            f'<rect class="day" x="{d["x"]}" y="{d["y"]}" width="{d["w"]}" height="{d["h"]}" '
            f'data-reviews="{d["reviews"]}"><title>{d["day"]:%Y-%m-%d}: {d["reviews"]}</title>'
            "</rect>"
            for d in e["days"]
        )
        label = escape(f"{e['expert']}: {e['total']} reviews in {len(e['days'])} days")
        median = "—" if e["median"] is None else f"{e['median']:.1f}"
        out.append(
            f'<tr data-expert="{escape(e["expert"])}"><td>{escape(e["expert"])}</td>'
            f'<td><svg class="chart" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{label}">{bars}'
            f'<line class="axis" x1="0" y1="{height}" x2="{width}" y2="{height}"></line></svg></td>'
            f'<td class="num total">{e["total"]}</td><td class="num median">{median}</td>'
            f'<td class="num">{e["timed"]}</td></tr>'
        )
    return mark_safe("".join(out))  # every database text above is escaped


def _kappa(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def agreement_rows(agreement: dict) -> dict[str, SafeString]:
    pairs = "".join(
        f"<tr><td>{escape(r['experts'])}</td><td>{r['items']}</td>"
        f"<td>{_kappa(r['kappa_decision'])}</td><td>{_kappa(r['kappa_modality'])}</td></tr>"
        for r in agreement["expert_pairs"]
    )
    books = "".join(
        f"<tr><td>{escape(r['book'])}</td><td>{r['items']}</td><td>{r['raters']}</td>"
        f"<td>{_kappa(r['kappa_decision'])}</td><td>{_kappa(r['kappa_modality'])}</td></tr>"
        for r in agreement["books"]
    )
    return {"pairs": mark_safe(pairs), "books": mark_safe(books)}  # texts escaped above


class DashboardView(RoleRequiredView):
    allowed_roles = STAFF

    def get(self, request):
        rows = select.progress()
        books = select.by_book(rows)
        base = reverse("review-next")
        for book in books:
            book["bar"] = bar(book)
            book["decided"] = _decided(book)
            book["queue"] = queue_url(base, book=book["book_id"])
            book["adjudication"] = queue_url(base, book=book["book_id"], queue="adjudication")
            for m in book["modalities"]:
                m["queue"] = queue_url(base, book=book["book_id"], modality=m["modality"])
        modalities = select.by_modality(rows)
        for m in modalities:
            m["bar"] = bar(m)
            m["decided"] = _decided(m)
            m["queue"] = queue_url(base, modality=m["modality"])
        overall = select.totals(rows)
        overall["bar"] = bar(overall, width=600)
        overall["decided"] = _decided(overall)
        experts = select.experts(select.throughput(), select.median_seconds())
        chart = _chart(experts)
        agreement = select.agreement()
        context = {
            "books": books,
            "book_rows": book_rows(books),
            "expert_rows": expert_rows(experts, chart),
            "modalities": modalities,
            "overall": overall,
            "bar_width": BAR_WIDTH,
            "experts": experts,
            "chart": chart,
            "agreement": agreement,
            "agreement_rows": agreement_rows(agreement),
            "settings": ProjectSettings.current(),
            "vqa": drafting_service.vqa_progress(),
            "adjudication_url": queue_url(base, queue="adjudication"),
            "modality_models": modality_select.versions(),
            "modality_accuracy": modality_select.accuracy_over_time(),
        }
        return render(request, "review/dashboard.html", context)


class SettingsView(RoleRequiredView):
    allowed_roles = STAFF

    def post(self, request):
        try:
            value = int(request.POST.get("reviews_per_item", ""))
            review_service.set_reviews_per_item(request.user, value)
            messages.success(request, f"Each pair now needs {value} review(s).")
        except ValueError:
            messages.error(request, "Reviews per item must be a whole number.")
        except ServiceError as exc:
            messages.error(request, exc.message)
        return redirect("dashboard")


class ModalityRetrainView(RoleRequiredView):
    """The curator's button: retrain the modality classifier from expert decisions now."""

    allowed_roles = STAFF

    def post(self, request):
        try:
            modality_service.request_retrain(request.user)
            messages.success(
                request,
                "Retraining queued: the new model replaces the one in use only if it is better "
                "on the held-out slice of expert decisions.",
            )
        except ServiceError as exc:
            messages.error(request, exc.message)
        return redirect(reverse("dashboard") + "#modality-model")

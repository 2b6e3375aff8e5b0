"""A training run's page (loss curve, eval figures per benchmark) and a side-by-side
comparison of runs, drawn from the metrics their workers reported."""

from __future__ import annotations

from django.shortcuts import get_object_or_404, render

from curation.models import TrainingRun
from curation.selectors import run_metrics
from curation.views.base import RoleRequiredView
from skinplatform.accounts.roles import STAFF

MAX_COMPARED = 6


def _label(run: TrainingRun) -> str:
    return f"#{run.pk} {run.stage} on {run.release}"


class TrainingRunDetailView(RoleRequiredView):
    """One run: status, its loss curve, its eval figures per benchmark, its raw metrics."""

    allowed_roles = STAFF

    def get(self, request, pk: int, run_id: int):
        run = get_object_or_404(
            TrainingRun.objects.select_related("release"), pk=run_id, release_id=pk
        )
        metrics = run.metrics if isinstance(run.metrics, dict) else {}
        rows = run_metrics.benchmark_rows(metrics)
        columns = run_metrics.present_columns(rows)
        others = (
            TrainingRun.objects.exclude(pk=run.pk)
            .select_related("release")
            .filter(status=TrainingRun.Status.DONE)[:20]
        )
        context = {
            "run": run,
            "chart": run_metrics.loss_chart([(run.pk, _label(run), metrics)]),
            "rows": [(r, [(k, r.values.get(k)) for k, _ in columns]) for r in rows],
            "columns": columns,
            "others": others,
            "raw": {k: v for k, v in metrics.items() if k != "curve"},
        }
        return render(request, "releases/run_detail.html", context)


class TrainingRunCompareView(RoleRequiredView):
    """`/runs/compare/?run=3&run=5`: loss curves on one chart, figures side by side."""

    allowed_roles = STAFF

    def get(self, request):
        raw = request.GET.getlist("run")
        try:
            ids = list(dict.fromkeys(int(r) for r in raw))
        except ValueError:
            return self._refuse(request, f"run must be run numbers, got {raw!r}.")
        if len(ids) < 2:
            return self._refuse(request, "Pick at least two runs to compare.")
        if len(ids) > MAX_COMPARED:
            return self._refuse(request, f"At most {MAX_COMPARED} runs can be compared at once.")
        found = {r.pk: r for r in TrainingRun.objects.select_related("release").filter(pk__in=ids)}
        missing = [i for i in ids if i not in found]
        if missing:
            return self._refuse(request, f"No training run #{missing[0]}.", status=404)
        runs = [found[i] for i in sorted(ids)]  # oldest first, whatever order they were ticked
        entries = [
            (r.pk, _label(r), r.metrics if isinstance(r.metrics, dict) else {}) for r in runs
        ]
        context = {
            "runs": runs,
            "chart": run_metrics.loss_chart(entries),
            "rows": run_metrics.compare(entries),
        }
        return render(request, "releases/run_compare.html", context)

    def _refuse(self, request, message: str, status: int = 400):
        return render(request, "releases/run_compare.html", {"error": message}, status=status)

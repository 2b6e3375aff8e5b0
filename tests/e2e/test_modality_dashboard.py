"""In Chromium: the dashboard shows each modality model's accuracy against the experts, and a
curator's button queues a retraining (sent by name) and says so."""

import pytest
from django.utils import timezone

from curation.models import ReviewEvent
from curation.services import dispatch
from curation.services import modality as svc
from tests.dispatching import record_sends
from tests.factories import make_book, make_pairs

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def decided(transactional_db, make_user):
    expert = make_user("ann", "expert")
    pairs = make_pairs(make_book("Atlas"), 4)
    version = svc.ensure_registered().version
    for i, pair in enumerate(pairs):
        pair.proposed = {**pair.proposed, "modality_model": version}
        pair.modality = "clinical" if i < 3 else "dermoscopic"  # 3 of 4 kept
        pair.status, pair.reviewed_by, pair.reviewed_at = "edited", expert, timezone.now()
        pair.save()
    return version


def test_dashboard_shows_model_accuracy_and_queues_a_retraining(
    login, page, live_server, decided, monkeypatch
):
    sent = record_sends(monkeypatch, dispatch.MODALITY_RETRAIN_TASK)
    login("cat", "curator")
    page.goto(f"{live_server.url}/dashboard/")
    row = page.locator(f'#modality-accuracy tr[data-model="{decided}"]')
    assert row.locator("td.accuracy").inner_text() == "0.750"
    assert (
        page.locator(f'#modality-models tr[data-version="{decided}"]').get_attribute("data-status")
        == "promoted"
    )
    page.click("#modality-retrain")
    page.wait_for_url("**/dashboard/#modality-model")
    assert "Retraining queued" in page.content()
    assert len(sent) == 1
    assert ReviewEvent.objects.filter(action=svc.RETRAIN_REQUESTED).count() == 1

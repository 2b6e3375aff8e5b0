import pytest

from curation.selectors import dashboard
from curation.services import review as svc
from tests.factories import make_book, make_pairs


@pytest.fixture
def reviewed(db, make_user):
    curator = make_user("cur", "curator")
    ann, bob = make_user("ann", "expert"), make_user("bob", "expert")
    book = make_book("Atlas A")
    pairs = make_pairs(book, 4) + make_pairs(book, 2, modality="dermoscopic")
    svc.set_reviews_per_item(curator, 2)
    # two experts, four items: agree, agree, disagree on decision, disagree on modality
    for pair, (a, b) in zip(
        pairs,
        [
            (("accept", {}), ("accept", {})),
            (("reject", {}), ("reject", {})),
            (("accept", {}), ("reject", {})),
            (("accept", {}), ("accept", {"modality": "pathological"})),
        ],
        strict=False,
    ):
        for user, (action, changes) in ((ann, a), (bob, b)):
            pair.refresh_from_db()
            svc.review_pair(pair.pk, user, version=pair.version, action=action,
                            changes=changes, reason="duplicate")  # fmt: skip
    return book, curator


def test_progress_counts_by_book_modality_status(reviewed):
    rows = {r["modality"]: r for r in dashboard.progress()}
    assert rows["clinical"]["total"] == 4
    assert rows["clinical"]["accepted"] == 1 and rows["clinical"]["rejected"] == 1
    assert rows["clinical"]["disputed"] == 2
    assert rows["dermoscopic"]["proposed"] == 2


def test_throughput_and_agreement(reviewed):
    assert sum(r["reviews"] for r in dashboard.throughput()) == 8
    agreement = dashboard.agreement()
    (pair_row,) = agreement["expert_pairs"]
    assert pair_row["items"] == 4
    # decisions a=[A,R,A,A] b=[A,R,R,A]: po=.75, pe=(3*2+1*2)/16=.5 -> kappa .5
    assert pair_row["kappa_decision"] == pytest.approx(0.5)
    (book_row,) = agreement["books"]
    assert book_row["raters"] == 2 and book_row["items"] == 4


def test_dashboard_page_and_api(reviewed, client, api_client_for):
    _, curator = reviewed
    client.force_login(curator)
    html = client.get("/dashboard/").content.decode()
    assert "Atlas A" in html and "agreement-pairs" in html
    assert 'id="vqa-progress"' in html and "Drafter:" in html
    api = api_client_for("curator", username="cur2")
    body = api.get("/api/dashboard/").json()
    assert {r["modality"] for r in body["progress"]} == {"clinical", "dermoscopic"}
    assert (
        api.put("/api/review-settings/", {"reviews_per_item": 9}, format="json").status_code == 400
    )
    assert api.put("/api/review-settings/", {"reviews_per_item": 1}, format="json").json() == {
        "reviews_per_item": 1
    }

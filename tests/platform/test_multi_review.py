"""Several reviews per item: blind reviews, consensus, disputes and adjudication."""

import pytest

from curation.models import Pair, ProjectSettings, Review
from curation.services import review as svc
from curation.services.errors import Conflict, NotAllowed, ServiceError
from tests.factories import make_book, make_pairs


@pytest.fixture
def team(db, make_user):
    curator = make_user("cur", "curator")
    svc.set_reviews_per_item(curator, 2)
    return make_user("ann", "expert"), make_user("bob", "expert"), curator


def test_only_curators_change_the_setting(team, make_user):
    ann, _, curator = team
    with pytest.raises(NotAllowed):
        svc.set_reviews_per_item(ann, 3)
    with pytest.raises(ServiceError):
        svc.set_reviews_per_item(curator, 0)
    assert ProjectSettings.current().reviews_per_item == 2


def test_items_go_to_different_experts_and_consensus_finalises(team):
    ann, bob, _ = team
    pair = make_pairs(make_book(), 1)[0]
    assert svc.claim_next(ann) == pair
    first = svc.review_pair(pair.pk, ann, version=1, action="accept", changes={"age": 41})
    assert first.status == "proposed" and first.age == 40  # blind: nothing shown to others yet
    assert svc.claim_next(ann) is None  # ann already reviewed it
    assert svc.claim_next(bob) == pair
    with pytest.raises(Conflict):
        svc.review_pair(pair.pk, ann, version=2, action="accept")
    final = svc.review_pair(pair.pk, bob, version=2, action="accept", changes={"age": 42})
    assert final.status == "edited" and final.age == 42
    assert Review.objects.filter(item_id=pair.pk).count() == 2


def test_disagreement_goes_to_adjudication(team):
    ann, bob, curator = team
    pair = make_pairs(make_book(), 1)[0]
    svc.review_pair(pair.pk, ann, version=1, action="accept")
    disputed = svc.review_pair(pair.pk, bob, version=2, action="reject", reason="bad_crop")
    assert disputed.status == Pair.Status.DISPUTED
    assert svc.claim_next(ann) is None
    with pytest.raises(NotAllowed):
        svc.claim_next(ann, svc.QueueFilter(status="disputed"))
    with pytest.raises(NotAllowed):
        svc.review_pair(pair.pk, ann, version=3, action="accept")
    assert svc.claim_next(curator, svc.QueueFilter(status="disputed")) == pair
    done = svc.review_pair(pair.pk, curator, version=3, action="reject", reason="bad_crop")
    assert done.status == "rejected"
    assert Review.objects.get(item_id=pair.pk, adjudication=True).expert == curator


def test_modality_disagreement_is_a_dispute(team):
    ann, bob, _ = team
    pair = make_pairs(make_book(), 1)[0]
    svc.review_pair(pair.pk, ann, version=1, action="accept")
    out = svc.review_pair(pair.pk, bob, version=2, action="accept",
                          changes={"modality": "dermoscopic"})  # fmt: skip
    assert out.status == "disputed"

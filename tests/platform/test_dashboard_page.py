"""The dashboard draws progress and throughput as SVG (geometry in SVG attributes, colours in
the static CSS), links its rows to the filtered review queue, and computes medians exactly."""

import itertools
import random
import re
import statistics
from datetime import timedelta

import pytest
from django.utils import timezone

from curation.models import Review
from curation.selectors import dashboard
from curation.views.dashboard import bar
from tests.factories import make_book, make_pairs
from tests.platform.test_dashboard import reviewed  # noqa: F401 - the shared fixture


def test_bar_segments_tile_the_bar_exactly():
    counts = {"total": 7, "accepted": 3, "edited": 1, "rejected": 1, "disputed": 0, "proposed": 2}
    segments = bar(counts, width=100)
    assert [s["status"] for s in segments] == ["accepted", "edited", "rejected", "proposed"]
    assert segments[0]["x"] == 0 and sum(s["w"] for s in segments) == 100
    for a, b in itertools.pairwise(segments):
        assert a["x"] + a["w"] == b["x"]
    assert segments[0]["w"] == round(3 * 100 / 7)
    assert bar({"total": 0}) == []


def test_page_draws_svg_and_links_rows_to_the_filtered_queue(reviewed, client):  # noqa: F811
    book, curator = reviewed
    client.force_login(curator)
    html = client.get("/dashboard/").content.decode()
    assert "style=" not in html.split("<main", 1)[1]  # no inline style in the page's content
    assert "<script>" not in html.split("<main", 1)[1]
    assert "curation/dashboard.css" in html
    row = re.search(rf'<tr data-book="{book.pk}">.*?</tr>', html, re.S).group(0)
    assert f'href="/review/next/?book={book.pk}"' in row
    assert f'href="/review/next/?book={book.pk}&amp;modality=dermoscopic"' in row
    assert f'href="/review/next/?book={book.pk}&amp;queue=adjudication"' in row  # 2 disputed
    widths = [
        int(w) for w in re.findall(r'class="seg-(?!empty)[a-z]+" x="\d+" y="0" width="(\d+)"', row)
    ]
    assert sum(widths) == 240  # the bar's segments fill it, as SVG attributes
    mod = re.search(r'<tr data-modality="clinical">.*?</tr>', html, re.S).group(0)
    assert 'href="/review/next/?modality=clinical"' in mod
    experts = re.search(r'<table id="experts-table">.*?</table>', html, re.S).group(0)
    assert experts.count('<tr data-expert="') == 2
    bars = re.findall(r'<rect class="day" x="\d+" y="[\d.]+" width="10" height="([\d.]+)" '
                      r'data-reviews="(\d+)"', experts)  # fmt: skip
    assert len(bars) == 2 * 14 and sum(int(n) for _, n in bars) == 8
    tallest = max(float(h) for h, _ in bars)
    assert tallest == 38.0  # the busiest day reaches the top of the chart


def test_a_dashboard_link_opens_a_pair_of_that_book_and_modality(reviewed, client, make_user):  # noqa: F811
    book, _ = reviewed
    other = make_book("Other atlas")
    make_pairs(other, 2, modality="dermoscopic")
    expert = make_user("eve", "expert")
    client.force_login(expert)
    response = client.get(f"/review/next/?book={book.pk}&modality=dermoscopic")
    assert response.status_code == 302
    pair_id = int(re.search(r"/review/pairs/(\d+)/", response["Location"]).group(1))
    from curation.models import Pair

    pair = Pair.objects.get(pk=pair_id)
    assert pair.textbook_id == book.pk and pair.modality == "dermoscopic"


def test_experts_series_has_every_day_oldest_first():
    today = timezone.localdate()
    rows = [{"expert": "ann", "day": today, "reviews": 3},
            {"expert": "ann", "day": today - timedelta(days=2), "reviews": 1}]  # fmt: skip
    (ann,) = dashboard.experts(rows, [{"expert": "ann", "median": 12.5, "n": 4}], days=5)
    assert [d["reviews"] for d in ann["days"]] == [0, 0, 1, 0, 3]
    assert ann["days"][-1]["day"] == today and ann["total"] == 4 and ann["median"] == 12.5


@pytest.mark.parametrize("seed", range(4))
def test_median_seconds_are_exact(seed, db, make_user):
    rng = random.Random(seed)
    book = make_book(pages=1)
    people = [make_user(f"u{seed}_{i}", "expert") for i in range(3)]
    want = {}
    for person in people:
        values = [round(rng.uniform(1, 90), 3) for _ in range(rng.randint(1, 40))]
        want[person.username] = statistics.median(values)
        for i, value in enumerate(values):
            Review.objects.create(item_id=i, textbook=book, expert=person, decision="accepted",
                                  seconds=value)  # fmt: skip
        Review.objects.create(item_id=99, textbook=book, expert=person, decision="accepted")
    got = {r["expert"]: r["median"] for r in dashboard.median_seconds()}
    assert got == pytest.approx(want)


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Kolkata", "UTC"])
def test_throughput_counts_local_calendar_days(zone, db, make_user, settings):
    """A review late in the evening counts on that local day, whatever day it is in UTC (a
    whole-hour zone, a half-hour zone and UTC take different paths on SQLite)."""
    settings.TIME_ZONE = zone
    from datetime import datetime, time
    from zoneinfo import ZoneInfo

    book, ann = make_book(pages=1), make_user("ann", "expert")
    ny = ZoneInfo(zone)
    today = timezone.localdate()
    noon = datetime.combine(today, time(12), ny)
    late_yesterday = datetime.combine(today, time(0, 30), ny) - timedelta(hours=1)  # 23:30
    old = datetime.combine(today - timedelta(days=14), time(12), ny)  # outside 14 days
    for i, when in enumerate([noon, noon, late_yesterday, old]):
        review = Review.objects.create(item_id=i, textbook=book, expert=ann, decision="accepted")
        Review.objects.filter(pk=review.pk).update(created_at=when)
    rows = dashboard.throughput()
    assert rows == [
        {"expert": "ann", "day": today, "reviews": 2},
        {"expert": "ann", "day": today - timedelta(days=1), "reviews": 1},
    ]

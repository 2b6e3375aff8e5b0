import pytest

from curation.agreement import accept_class, cohen_kappa, fleiss_kappa


def test_cohen_kappa_textbook_example():
    # 50 items: both yes 20, both no 15, a-yes/b-no 5, a-no/b-yes 10 -> kappa = 0.4
    a = ["y"] * 20 + ["n"] * 15 + ["y"] * 5 + ["n"] * 10
    b = ["y"] * 20 + ["n"] * 15 + ["n"] * 5 + ["y"] * 10
    assert cohen_kappa(a, b) == pytest.approx(0.4)


def test_cohen_kappa_edges():
    assert cohen_kappa([], []) is None
    assert cohen_kappa(["x", "x"], ["x", "x"]) == 1.0
    assert cohen_kappa(["x", "y"], ["y", "x"]) == pytest.approx(-1.0)
    with pytest.raises(ValueError):
        cohen_kappa(["x"], [])


def test_fleiss_kappa_matches_a_hand_computation():
    # 4 items x 3 raters. P_i: 1, 1/3, 1/3, 1 -> P_bar = 2/3; p(a)=p(b)=1/2 -> P_e = 1/2
    items = [["a", "a", "a"], ["a", "a", "b"], ["b", "b", "a"], ["b", "b", "b"]]
    assert fleiss_kappa(items) == pytest.approx(1 / 3)
    assert fleiss_kappa([["a", "a"], ["b", "b"]]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        fleiss_kappa([["a", "b"], ["a"]])


def test_accept_class():
    assert [accept_class(d) for d in ("accepted", "edited", "rejected")] == [
        "accepted",
        "accepted",
        "rejected",
    ]

"""Category affinity: the fit from co-purchases, the next category, the state's categories, the proposition."""

from __future__ import annotations

import random

import pytest

from scoring import NEW_STATE, CoreEvent, Kind, ScoringConfig, parse_config
from scoring.affinity import Affinity, fit_affinity, next_category
from scoring.affinity_check import check_affinity, describe, paired_difference
from scoring.codec import VERSION, decode_state, encode_state
from scoring.errors import ConfigError
from scoring.fold import bought
from scoring.offering import assess_offering
from scoring.proposition import Proposition, with_category
from scoring.rfm import score
from tests.scoring.conftest import T0, at_ms, fold_events

# 10 customers: tea buyers mostly buy cups too, some biscuits; coffee buyers buy filters
BASKETS = [
    {"tea", "cups"}, {"tea", "cups"}, {"tea", "cups", "biscuits"}, {"tea", "biscuits"}, {"tea"},
    {"coffee", "filters"}, {"coffee", "filters"}, {"coffee", "filters", "cups"}, {"coffee"}, {"cups"},
]


def test_fit_keeps_the_pairs_with_support_best_first():
    a = fit_affinity(BASKETS, min_support=2)
    assert a.customers == 10
    assert a.popular[:3] == (("cups", 5), ("tea", 5), ("coffee", 4))  # ties by name
    assert a.related["tea"] == (("cups", 0.6), ("biscuits", 0.4))  # 3 and 2 of the 5 tea buyers
    assert a.related["coffee"] == (("filters", 0.75),)  # cups: 1 coffee buyer, under the support
    assert a.related["biscuits"] == (("tea", 1.0),)  # both biscuit buyers bought tea; cups: 1, under the support
    assert fit_affinity(BASKETS, min_support=1).related["biscuits"] == (("tea", 1.0), ("cups", 0.5))


def test_fit_does_not_depend_on_the_order_of_customers_or_items():
    shuffled = [list(b) for b in BASKETS]
    random.Random(3).shuffle(shuffled)
    for basket in shuffled:
        random.Random(4).shuffle(basket)
    assert fit_affinity(shuffled, 1).to_dict() == fit_affinity(BASKETS, 1).to_dict()


def test_affinity_round_trips_and_refuses_another_format():
    a = fit_affinity(BASKETS, 1)
    assert Affinity.from_dict(a.to_dict()) == a
    with pytest.raises(ValueError, match="format"):
        Affinity.from_dict({"format": "other"})
    with pytest.raises(ValueError, match="malformed"):
        Affinity.from_dict({**a.to_dict(), "popular": [["tea"]]})


def test_next_category_is_the_likeliest_not_bought_one_with_its_reason():
    a = fit_affinity(BASKETS, 2)
    s = next_category({"tea"}, a)
    assert s is not None and (s.category, s.because, s.share) == ("cups", "tea", 0.6)
    assert s.reason() == "60% of the customers who bought tea also bought cups"
    assert next_category({"tea", "cups"}, a).category == "biscuits"  # type: ignore[union-attr]
    assert next_category({"toffee"}, a) is None  # nothing related with support
    assert next_category(set(), a) is None


def test_the_most_popular_not_bought():
    a = fit_affinity(BASKETS, 2)
    assert a.most_popular({"cups"}) == "tea" and a.most_popular(set()) == "cups"


def test_state_keeps_the_most_recent_categories_in_any_order_of_events():
    events = [(T0 + d, (c,)) for d, c in enumerate("abcdefgh")] + [(T0 + 2, ("h",)), (T0 + 9, ("a", "z"))]
    results = set()
    for seed in range(40):
        order = list(events)
        random.Random(seed).shuffle(order)
        kept: tuple[tuple[str, int], ...] = ()
        for day, categories in order:
            kept = bought(kept, categories, day, 4)
        results.add(kept)
    assert results == {(("a", T0 + 9), ("g", T0 + 6), ("h", T0 + 7), ("z", T0 + 9))}


def purchase(day: int, *categories: str, id: str | None = None) -> CoreEvent:
    return CoreEvent(Kind.PURCHASE, id or f"p{day}{categories}", at_ms(day), 500_000, "USD", 0, categories)


def test_fold_and_codec_keep_the_categories_bounded():
    cfg = parse_config({"affinity": {"categories_kept": 3, "excluded": ["postage"]}})
    events = [purchase(T0 + i, f"c{i}", "postage") for i in range(5)]
    state = fold_events(events, T0 + 5, cfg)
    assert state.categories == (("c2", T0 + 2), ("c3", T0 + 3), ("c4", T0 + 4))
    assert decode_state(encode_state(state)) == state


def test_version_4_bytes_decode_without_categories():
    # a purchase of 0: no amount, whose bytes (cents before version 6) the slicing below would misplace
    free = CoreEvent(Kind.PURCHASE, "p", at_ms(T0), 0, "USD", 0, ("tea",))
    state = fold_events([free], T0, ScoringConfig())
    assert state.categories == (("tea", T0),) and encode_state(state)[0] == VERSION == 6
    without = encode_state(state._replace(categories=()))
    v4 = bytes([4]) + without[1:-1]  # version 4: no category count at the end
    assert decode_state(v4) == state._replace(categories=())


def test_cross_sell_names_the_category_and_others_stay_as_the_rules_say():
    cfg = ScoringConfig()
    a = fit_affinity(BASKETS, 2)
    state = fold_events([purchase(T0, "tea")], T0, cfg)
    rule = Proposition("cross_sell", "invest", "high value and still growing")
    named = with_category(rule, state, a, cfg)
    assert named.category == "cups"
    assert named.reason == "high value and still growing; 60% of the customers who bought tea also bought cups"
    assert with_category(rule, state, None, cfg) == rule  # no model: the rule-based proposition
    assert with_category(rule, NEW_STATE, a, cfg) == rule  # no items
    assert with_category(rule._replace(name="service_review"), state, a, cfg).category == ""
    excluded = parse_config({"affinity": {"excluded": ["cups"]}})
    assert with_category(rule, state, a, excluded) == rule


@pytest.mark.parametrize(("proposition", "category"), [("upsell", "cups"), ("loyalty_reward", "")])
def test_offering_names_the_category_of_the_listed_propositions(proposition, category):
    rules = [{"name": "all", "proposition": proposition}]
    cfg = parse_config({"tiering": "absolute", "propositions": {"rules": rules}})
    state = fold_events([purchase(T0 - 10, "tea"), purchase(T0, "tea", id="second")], T0, cfg)
    s = score(state, T0, cfg)
    offer = assess_offering(state, s, "C", "active", False, None, cfg, affinity=fit_affinity(BASKETS, 2))
    assert (offer.proposition.name, offer.proposition.category) == (proposition, category)
    plain = assess_offering(state, s, "C", "active", False, None, cfg)
    assert plain.proposition == Proposition(proposition, "all", "")


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"categories_kept": 0}, "affinity.categories_kept"),
        ({"min_support": 0}, "affinity.min_support"),
        ({"propositions": [" "]}, "affinity.propositions"),
        ({"unknown": 1}, "affinity.unknown"),
    ],
)
def test_bad_affinity_settings_name_the_field(bad, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")) as info:
        parse_config({"affinity": bad})
    assert "\n" not in str(info.value)


def test_paired_difference_interval():
    d, low, high = paired_difference(30, 10, 200)
    assert d == pytest.approx(0.1) and low < d < high and low > 0
    assert paired_difference(0, 0, 0) == (0.0, -1.0, 1.0)


def test_check_counts_hits_of_the_proposal_and_of_the_baselines():
    a = fit_affinity(BASKETS, 2)
    kept = {"x": ["tea"], "y": ["coffee"], "z": ["toffee"], "w": []}  # toffee: nothing related, w: no category
    later = {"x": ["cups"], "y": ["cups"]}  # x bought the proposal (cups); y the best seller, not filters
    check = check_affinity(kept, later, a, 90)
    assert (check.customers, check.covered, check.best_seller) == (3, 2, "cups")
    assert (check.proposed.moved, check.popular.moved, check.everyone.moved) == (1, 2, 2)
    assert check.versus_everyone[0] == pytest.approx(-0.5) and not check.holds
    lines = describe(check)
    assert lines[0].startswith("Category affinity, held out 90 days") and "2 of 3 customers" in lines[0]
    assert lines[1].startswith("  proposed (affinity): bought by 1 of 2")

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.config import WatchlistConfig
from monitor.match import Matcher
from monitor.text import Folded, fold

SEED = Path(__file__).resolve().parent.parent / "seeds" / "000_5789ac1c2e1f81f5.txt"


def matcher_for(*terms: str, **extra: object) -> Matcher:
    return Matcher([WatchlistConfig(name="w", keywords=list(terms), **extra)])  # type: ignore[arg-type]


def matched(term: str, text: str) -> list[str]:
    return [hit.matched for _, hit in matcher_for(term).hits(text, "body")]


@pytest.mark.parametrize(
    ("term", "text", "expected"),
    [
        ("سرت", "على سرت وأنقرة", "سرت"),
        ("أنقرة", "وأنقرة", "وأنقرة"),
        ("إعلان القاهرة", "إعلان القاهرة", "إعلان القاهرة"),
        ("خليفة حفتر", "خليفة حفتر،", "خليفة حفتر"),
        ("القيادة العامة", "بالقيادة العامة", "بالقيادة العامة"),
        ("حكومة الوفاق", "لحكومة الوفاق", "لحكومة الوفاق"),
        ("صد", "صدّ", "صدّ"),
        ("ترمب", "وبحث ترمب", "ترمب"),
        ("اردوغان", "أردوغان", "أردوغان"),
        ("سرت", "بسرت", "بسرت"),
        ("السراج", "للسراج", "للسراج"),
        ("مدينة", "مديـــنة", "مديـــنة"),
        ("Erdoğan", "ERDOGAN said", "ERDOGAN"),
        ("Haftar", "Haftar's forces", "Haftar"),
        ("ceasefire", "a cease-fire or a ceasefire.", "ceasefire"),
        ("Москва", "в Москва, где", "Москва"),
        ("利比亚", "中国关注利比亚局势", "利比亚"),
        ("Straße", "STRASSE", "STRASSE"),
    ],
)
def test_terms_match_whole_words_with_folding(term: str, text: str, expected: str) -> None:
    assert matched(term, text) == [expected]


@pytest.mark.parametrize(
    ("term", "text"),
    [
        ("سرت", "أسرته"),
        ("سحاب", "الانسحاب"),
        ("عرب", "عربية"),
        ("تركيا", "التركية"),
        ("Trump", "Trumpet player"),
        ("Sirte", "Sirtex"),
        ("war", "software"),
    ],
)
def test_terms_never_match_inside_longer_words(term: str, text: str) -> None:
    assert matched(term, text) == []


def test_seed_article_hits_entities_in_both_spellings() -> None:
    wl = WatchlistConfig(
        name="libya",
        threshold=5,
        entities=[
            {"name": "Khalifa Haftar", "aliases": ["Haftar", "حفتر"], "weight": 3},
            {"name": "Sirte", "aliases": ["سرت"], "weight": 2},
            {"name": "Trump", "aliases": ["ترامب", "ترمب"]},
        ],
    )  # type: ignore[arg-type]
    text = SEED.read_text("utf-8")
    (result,) = Matcher([wl]).evaluate("", text)
    assert result.matched
    assert result.match.score == 6.0
    by_rule = {}
    for hit in result.match.hits:
        by_rule.setdefault(hit.rule, set()).add(hit.matched)
        assert text[hit.offset:hit.offset + len(hit.matched)] == hit.matched
    assert by_rule == {"Khalifa Haftar": {"حفتر"}, "Sirte": {"سرت"}, "Trump": {"ترامب", "ترمب"}}


def test_title_hits_weigh_more_and_rules_count_once() -> None:
    m = matcher_for("Sirte", threshold=3, title_weight=3)
    (body_only,) = m.evaluate("News", "Sirte, Sirte and Sirte again")
    assert body_only.match.score == 1.0 and not body_only.matched
    assert len(body_only.match.hits) == 3
    (in_title,) = m.evaluate("Fighting near Sirte", "no mention")
    assert in_title.match.score == 3.0 and in_title.matched
    assert in_title.match.hits[0].field == "title"


def test_exclusions_veto() -> None:
    m = matcher_for("Libya", exclude=["football"])
    (result,) = m.evaluate("Libya beat Tunisia", "A football match in Tripoli.")
    assert not result.matched
    assert result.excluded_by == ("football",)


def test_snippet_surrounds_the_first_body_hit() -> None:
    body = "Filler words here. " * 30 + "Forces loyal to Haftar advanced on Sirte." + " More." * 50
    (result,) = matcher_for("Haftar").evaluate("", body)
    assert "Haftar" in result.match.snippet
    assert len(result.match.snippet) < 300


def test_watchlists_score_independently() -> None:
    m = Matcher([
        WatchlistConfig(name="a", keywords=["Sirte"]),  # type: ignore[list-item]
        WatchlistConfig(name="b", keywords=["Benghazi"], threshold=2),  # type: ignore[list-item]
    ])
    results = {r.match.watchlist: r.matched for r in m.evaluate("", "Sirte and Benghazi")}
    assert results == {"a": True, "b": False}


@given(st.text())
def test_fold_is_idempotent(text: str) -> None:
    assert fold(fold(text)) == fold(text)


words = st.text(alphabet=st.characters(categories=["L"]), min_size=2, max_size=12)


@given(words, words, words)
def test_a_term_matches_itself_inside_a_sentence(before: str, term: str, after: str) -> None:
    if not fold(term).strip() or len(fold(term)) != len(fold(term).strip()):
        return
    text = f"{before} {term}. {after}"
    assert term in [h.term for _, h in matcher_for(term).hits(text, "body")]


@given(st.text(min_size=1))
def test_folded_spans_map_back_into_the_original(text: str) -> None:
    folded = Folded(text)
    for start in range(len(folded.folded)):
        a, b = folded.span(start, start + 1)
        assert 0 <= a <= b <= len(text)

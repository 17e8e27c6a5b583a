from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor import match as match_module
from monitor import speedups
from monitor import text as text_module
from monitor.cli import main
from monitor.config import WatchlistConfig
from monitor.match import Matcher, Result
from monitor.models import Hit
from monitor.text import Folded, fold, fold_term

SEED = Path(__file__).resolve().parent.parent / "seeds" / "000_5789ac1c2e1f81f5.txt"


def watchlist(**fields: Any) -> WatchlistConfig:
    return WatchlistConfig.model_validate({"name": "w", **fields})


def matcher_for(*terms: str, **extra: Any) -> Matcher:
    return Matcher([watchlist(keywords=list(terms), **extra)])


def automaton_matcher(watchlists: list[WatchlistConfig]) -> Matcher:
    """A matcher that scans with the automaton and makes its hits in Python (the
    definitions), C extensions or not."""
    return Matcher(watchlists, native=False)


# Each word table runs through both scanners: the C one where it was built, and the
# automaton it must agree with.
SCANNERS = [pytest.param("c", marks=pytest.mark.skipif(
    not speedups.in_use("monitor.match._scan"), reason="the C extension was not built")), "automaton"]


def matched(term: str, text: str, scanner: str = "c") -> list[str]:
    m = automaton_matcher([watchlist(keywords=[term])]) if scanner == "automaton" else \
        matcher_for(term)
    return [hit.matched for hit in m.find(text)]


def evaluate(title: str, body: str, **fields: Any) -> Result:
    (result,) = Matcher([watchlist(**fields)]).evaluate(title, body)
    return result


# -- words and folding -------------------------------------------------------------------

@pytest.mark.parametrize(
    ("term", "text", "expected"),
    [
        # The cases issue 4 names, term -> text.
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
        ("السراج", "وللسراج", "وللسراج"),
        ("سرت", "وبالسرت", "وبالسرت"),
        ("مدينة", "مديـــنة", "مديـــنة"),
        ("Erdoğan", "ERDOGAN said", "ERDOGAN"),
        ("Erdogan", "Erdoğan", "Erdoğan"),
        ("Haftar", "Haftar's forces", "Haftar"),
        ("Libya", "#Libya now", "Libya"),
        ("al-Sarraj", "Fayez al-Sarraj said", "al-Sarraj"),
        ("ceasefire", "a cease-fire or a ceasefire.", "ceasefire"),
        ("Straße", "STRASSE", "STRASSE"),
        ("C++", "written in C++ mostly", "C++"),
        # Every decimal digit folds to its ASCII digit, in text and terms alike.
        ("5+5", "قمة ٥+٥ في روما", "٥+٥"),
        ("2026", "في عام ٢٠٢٦", "٢٠٢٦"),
        ("٢٠٢٦", "the 2026 election", "2026"),
        ("1404", "در سال ۱۴۰۴ خورشیدی", "۱۴۰۴"),
        ("۱۴۰۴", "l'an ١٤٠٤ de l'hégire", "١٤٠٤"),
        ("2024", "सन् २०२४ में", "२०२४"),
        # Turkish dotless and dotted i fold with i, as accents do.
        ("Kılıçdaroğlu", "KILIÇDAROĞLU konuştu", "KILIÇDAROĞLU"),
        ("Kılıçdaroğlu", "Kilicdaroglu said", "Kilicdaroglu"),
        ("KILIÇDAROĞLU", "Kılıçdaroğlu'nun", "Kılıçdaroğlu"),
        ("İstanbul", "ISTANBUL'da", "ISTANBUL"),
        ("Istanbul", "İstanbul'da", "İstanbul"),
        ("Diyarbakır", "DİYARBAKIR", "DİYARBAKIR"),
        # Letters Unicode does not decompose, that writers read as accented or joined.
        ("œuvre", "une oeuvre", "oeuvre"),
        ("Łódź", "in Lodz", "Lodz"),
        ("Søren", "SOREN", "SOREN"),
        # Cyrillic and Greek: whole words, case and accents folded.
        ("Москва", "в Москва, где", "Москва"),
        ("Ερντογάν", "ο ΕΡΝΤΟΓΑΝ είπε", "ΕΡΝΤΟΓΑΝ"),
        # CJK and Thai have no spaces between words: a term matches wherever it stands.
        ("利比亚", "中国关注利比亚局势", "利比亚"),
        ("リビア", "リビア情勢について", "リビア"),
        ("ลิเบีย", "สถานการณ์ในลิเบียล่าสุด", "ลิเบีย"),
    ],
)
@pytest.mark.parametrize("scanner", SCANNERS)
def test_terms_match_whole_words_with_folding(term: str, text: str, expected: str,
                                              scanner: str) -> None:
    assert matched(term, text, scanner) == [expected]


@pytest.mark.parametrize(
    ("term", "text"),
    [
        ("سرت", "أسرته"),
        ("سحاب", "الانسحاب"),
        ("عرب", "عربية"),
        ("تركيا", "التركية"),
        # Short terms: a proclitic reading loses when the whole word is a common word.
        ("لد", "بلد"),
        ("لد", "ولد"),
        ("صل", "وصل"),
        ("قد", "لقد"),
        # ... with its own proclitic too: وبحث is و + بحث, وبلد is و + بلد.
        ("حث", "وبحث"),
        ("لد", "وبلد"),
        ("حث", "فبحث"),
        ("Trump", "Trumpet player"),
        ("Sirte", "Sirtex"),
        ("war", "software"),
        ("C", "written in C++"),
        ("Haftar", "AlHaftar"),
    ],
)
@pytest.mark.parametrize("scanner", SCANNERS)
def test_terms_never_match_inside_longer_words(term: str, text: str, scanner: str) -> None:
    assert matched(term, text, scanner) == []


@pytest.mark.parametrize(("term", "text"), [
    ("سرت", "وسرت"), ("صد", "وصد"), ("عرب", "وعرب"),
    # Common words that are the proclitic reading itself: "in Egypt", "and Egypt", "and urged".
    ("مصر", "بمصر"), ("مصر", "ومصر"), ("مصر", "وبمصر"), ("مصر", "لمصر"), ("حث", "وحث"),
])
@pytest.mark.parametrize("scanner", SCANNERS)
def test_short_terms_keep_rare_proclitic_readings(term: str, text: str, scanner: str) -> None:
    assert matched(term, text, scanner) == [text]


def test_hits_point_at_the_original_text() -> None:
    text = "Grüße aus Straße: the ﬁnance of Erdoğan, صدّ and مـدينة."
    m = matcher_for("Strasse", "finance", "Erdogan", "صد", "مدينة")
    for hit in m.find(text):
        assert text[hit.offset:hit.offset + len(hit.matched)] == hit.matched
    assert sorted(h.matched for h in m.find(text)) == sorted(
        ["Straße", "ﬁnance", "Erdoğan", "صدّ", "مـدينة"])


# -- phrases across punctuation, never across a sentence end -----------------------------

def phrase_hits(term: str, text: str, scanner: str) -> list[str]:
    lists = [watchlist(phrases=[term])]
    m = automaton_matcher(lists) if scanner == "automaton" else Matcher(lists)
    return [hit.matched for hit in m.find(text)]


@pytest.mark.parametrize(
    ("term", "text", "expected"),
    [
        # Latin: commas, abbreviation dots, hyphens, apostrophes, dashes, a wrapped line.
        ("Washington D.C.", "in Washington, D.C., on Monday", "Washington, D.C"),
        ("Washington, D.C.", "Washington D.C. police said", "Washington D.C"),
        ("St Louis", "a flight to St. Louis. Then", "St. Louis"),
        ("St. Louis", "St Louis", "St Louis"),
        ("U.S. Army", "said the U.S. Army on Friday", "U.S. Army"),
        ("Mr Haftar", "Mr. Haftar declined", "Mr. Haftar"),
        ("J. R. R. Tolkien", "by J.R.R. Tolkien.", "J.R.R. Tolkien"),
        ("for the backcountry, fitness training", "and for the backcountry, fitness training",
         "for the backcountry, fitness training"),
        ("backcountry fitness training", "the backcountry - fitness training",
         "backcountry - fitness training"),
        ("Sirte Haftar", "Sirte (Haftar's base)", "Sirte (Haftar"),
        ("met with President Trump", "He met with\npresident Trump.", "met with\npresident Trump"),
        ("why he left", '"Why?" he left', 'Why?" he left'),
        ("Acme Inc. Board", "Acme Inc. Board met", "Acme Inc. Board"),  # its own stop
        # French: apostrophes, hyphens, a single-letter title.
        ("l'Élysée a dit", "l’Élysée a dit", "l’Élysée a dit"),
        ("Jean Marc Ayrault", "Jean-Marc Ayrault", "Jean-Marc Ayrault"),
        ("M. Macron", "selon M. Macron, qui", "M. Macron"),
        ("Mme Le Pen", "Mme. Le Pen a", "Mme. Le Pen"),
        # Turkish: an apostrophe before a suffix, Dr. as a title.
        ("Recep Tayyip Erdoğan", "Recep Tayyip Erdoğan'ın sözleri", "Recep Tayyip Erdoğan"),
        ("Dr. Öz", "Dr. Öz dedi", "Dr. Öz"),
        ("Doç Ahmet", "Doç. Ahmet Yılmaz", "Doç. Ahmet"),
        # Arabic: the Arabic comma, a dash, a single-letter title (د. for Dr).
        ("ليبيا تونس", "بين ليبيا، تونس", "ليبيا، تونس"),
        ("القائد العام خليفة حفتر", "القائد العام - خليفة حفتر", "القائد العام - خليفة حفتر"),
        ("د محمد", "قال د. محمد", "د. محمد"),
    ],
)
@pytest.mark.parametrize("scanner", SCANNERS)
def test_phrases_run_across_punctuation_inside_a_sentence(term: str, text: str, expected: str,
                                                         scanner: str) -> None:
    assert phrase_hits(term, text, scanner) == [expected]


@pytest.mark.parametrize(
    ("term", "text"),
    [
        ("Sirte Haftar", "They reached Sirte. Haftar said"),
        ("Sirte Haftar", "They reached Sirte... Haftar said"),
        ("Biden Trump", "He met Biden! Trump left"),
        ("Libya Tripoli", "News from Libya\nTripoli was calm"),  # a block end
        ("Libya Tripoli", "News from Libya.\n\ntripoli was calm"),  # a paragraph
        ("Acme Inc Board", "Acme Inc. Board met"),  # Inc. ends sentences: not taken as a title
        ("Paris Macron", "à Paris. Macron a dit"),
        ("Ankara Erdoğan", "Ankara'ya gitti. Erdoğan dedi"),
        ("ليبيا تونس", "في ليبيا. تونس"),
        ("ليبيا تونس", "في ليبيا؟ تونس"),
        ("利比亚 局势", "利比亚。局势"),
        ("St. Louis", "St.\n\nLouis"),  # its own stop is no paragraph
    ],
)
@pytest.mark.parametrize("scanner", SCANNERS)
def test_phrases_never_run_across_a_sentence_end(term: str, text: str, scanner: str) -> None:
    assert phrase_hits(term, text, scanner) == []


# The matcher's text is fold(text), character for character, but that a run of
# separators that ends a sentence starts with S and one that ends a block with B.
S, B = text_module.SENTENCE_MARK, text_module.BLOCK_MARK


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Washington, D.C., said", "washington  d c   said"),
        ("He left. Then", f"he left{S} then"),
        ("approx. five", "approx  five"),
        ("in the U.S. The", "in the u s  the"),  # a single letter: read as an abbreviation
        ("Mr. Haftar", "mr  haftar"),  # a known abbreviation
        ("2024. The", f"2024{S} the"),
        ("said.\nNext", f"said{B} next"),
        ("said,\nnext", "said  next"),  # a wrapped line
        ("a\r\nb", "a  b"),
        ("a\r\n\r\nB", f"a{B}   b"),
        ("Yahoo!News", f"yahoo{S}news"),
        ("3.5 or example.com", "3 5 or example com"),
        ("said. — Next", f"said{S}   next"),
        ("said.) Next", f"said{S}  next"),
        ("said., next", "said   next"),
        ('"Why?" he', " why   he"),
        ("هل؟ نعم", f"هل{S} نعم"),
        ("利比亚。局势", f"利比亚{S}局势"),
    ],
)
def test_the_matchers_text_marks_sentence_and_block_ends(text: str, folded: str) -> None:
    assert Folded(text).folded == folded
    assert text_module.fold_mapped_translate(text)[0] == folded


def test_a_term_runs_across_its_own_stops_at_most_four() -> None:
    assert text_module.term_keys("Acme Inc. Board") == ["acme inc board", f"acme inc {S} board"]
    assert text_module.term_keys("D.C.") == ["d c"]  # a dot inside a word ends nothing
    assert len(text_module.term_keys("a. b. c. d. e. f. g")) == 2 ** text_module.MAX_OWN_STOPS


def test_near_counts_words_across_punctuation() -> None:
    rule = {"near": ["Haftar", "Sirte"], "within": 2, "weight": 2}
    fields = {"keywords": ["Haftar"], "rules": [rule]}
    assert evaluate("", "Haftar, in — Sirte", **fields).match.score == 3.0
    assert evaluate("", "Haftar went to the city of Sirte", **fields).match.score == 1.0


# -- case: sensitive ---------------------------------------------------------------------

UN = {"name": "United Nations", "aliases": ["ONU", "الأمم المتحدة",
                                            {"alias": "UN", "case": "sensitive"}]}


@pytest.mark.parametrize(
    ("fields", "text", "expected"),
    [
        # Latin: acronyms against words.
        ({"keywords": [{"term": "US", "case": "sensitive"}]}, "let us go; the US said", ["US"]),
        ({"keywords": [{"term": "IS", "case": "sensitive"}]}, "it is IS fighters", ["IS"]),
        ({"keywords": [{"term": "U.S.", "case": "sensitive"}]}, "u.s. or U.S. forces", ["U.S"]),
        ({"phrases": [{"term": "White House", "case": "sensitive"}]},
         "white house paint; the White House said", ["White House"]),
        ({"entities": [{"name": "Turkey", "aliases": ["Türkiye"], "case": "sensitive"}]},
         "roast turkey in Turkey, or Türkiye", ["Turkey", "Türkiye"]),
        # French: a single alias in case beside plain ones; "un" is the article.
        ({"entities": [UN]}, "Il a signé un accord avec l'ONU et l'UN.", ["ONU", "UN"]),
        ({"entities": [UN]}, "un accord, Un jour", []),
        # Turkish: İYİ (the party) is not iyi (good); dotted capitals keep their case.
        ({"keywords": [{"term": "İYİ", "case": "sensitive"}]}, "iyi bir gün, İYİ Parti'nin",
         ["İYİ"]),
        # Arabic has no case: a case-sensitive term matches as any other.
        ({"keywords": [{"term": "سرت", "case": "sensitive"}]}, "وصلوا بسرت", ["بسرت"]),
        ({"entities": [UN]}, "قالت الأمم المتحدة", ["الأمم المتحدة"]),
        # "us" more often than the cap does not hide a later "US".
        ({"keywords": [{"term": "US", "case": "sensitive"}]}, "us " * 12 + "US", ["US"]),
    ],
)
@pytest.mark.parametrize("scanner", SCANNERS)
def test_case_sensitive_terms_match_only_in_the_case_written(
        fields: dict[str, Any], text: str, expected: list[str], scanner: str) -> None:
    lists = [watchlist(**fields)]
    m = automaton_matcher(lists) if scanner == "automaton" else Matcher(lists)
    assert [hit.matched for hit in m.find(text)] == expected
    assert bool(m.matches("", text)) == bool(expected)


def test_a_case_sensitive_exclusion_vetoes_only_in_its_case() -> None:
    fields = {"keywords": ["HIV"], "exclude": [{"term": "AIDS", "case": "sensitive"}]}
    assert evaluate("", "HIV research aids recovery", **fields).matched
    assert evaluate("", "HIV and AIDS", **fields).excluded_by == ("AIDS",)


def test_the_same_term_in_any_case_beside_its_cased_spelling_matches_in_any_case() -> None:
    for aliases in ([{"alias": "UN", "case": "sensitive"}, "un"],
                    ["un", {"alias": "UN", "case": "sensitive"}]):
        m = Matcher([watchlist(entities=[{"name": "United Nations", "aliases": aliases}])])
        assert [hit.matched for hit in m.find("un UN")] == ["un", "UN"]


def test_validate_warns_of_short_capitals_that_match_in_any_case(tmp_path: Path,
                                                                capsys: Any) -> None:
    (tmp_path / "watchlists").mkdir()
    (tmp_path / "watchlists" / "w.yaml").write_text(
        "name: w\nkeywords: [IS, {term: US, case: sensitive}, Libya]\n"
        "entities: [{name: United Nations, aliases: [UN, {alias: ONU, case: sensitive}]}]\n",
        encoding="utf-8")
    assert main(["--config-dir", str(tmp_path), "validate"]) == 0
    warnings = [line for line in capsys.readouterr().out.splitlines()
                if line.startswith("warning:")]
    assert len(warnings) == 2
    assert "entity 'United Nations': 'UN'" in warnings[0] and "'un'" in warnings[0]
    assert "keyword 'IS'" in warnings[1] and "'is'" in warnings[1]


# -- the case set, end to end ------------------------------------------------------------

def _match_cases() -> Any:
    spec = importlib.util.spec_from_file_location(
        "match_cases", Path(__file__).resolve().parent.parent / "tools" / "match_cases.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MATCH_CASES = _match_cases()


@pytest.mark.parametrize("case", MATCH_CASES.load(), ids=lambda c: f"{c['script']}-{c['term']}")
def test_the_case_set_passes_through_monitor_check(case: dict[str, Any]) -> None:
    # tests/data/match_cases.yaml: one watchlist per case, through `monitor --config-dir
    # DIR check FILE --json` (tools/match_cases.py runs the same in a process of its own).
    assert MATCH_CASES.run(case, MATCH_CASES.in_process) == case["hits"]


# -- the seed article --------------------------------------------------------------------

def test_seed_article_hits_entities_in_both_spellings() -> None:
    text = SEED.read_text("utf-8")
    result = evaluate("", text, threshold=5, entities=[
        {"name": "Khalifa Haftar", "aliases": ["Haftar", "حفتر"], "weight": 3},
        {"name": "Sirte", "aliases": ["سرت"], "weight": 2},
        {"name": "Trump", "aliases": ["ترامب", "ترمب"]},
        {"name": "Erdogan", "aliases": ["اردوغان"]},
    ])
    assert result.matched and result.match.score == 7.0
    aliases: dict[str, set[str]] = {}
    for hit in result.match.hits:
        aliases.setdefault(hit.term, set()).add(hit.alias)
        assert text[hit.offset:hit.offset + len(hit.matched)] == hit.matched
    assert aliases == {"Khalifa Haftar": {"حفتر"}, "Sirte": {"سرت"}, "Trump": {"ترامب", "ترمب"},
                       "Erdogan": {"اردوغان"}}
    assert {h.matched for h in result.match.hits if h.term == "Erdogan"} == {"أردوغان"}


# -- scoring and the rule language -------------------------------------------------------

def test_title_hits_weigh_more_and_terms_count_once() -> None:
    body_only = evaluate("News", "Sirte, Sirte and Sirte again", keywords=["Sirte"],
                         threshold=3, title_weight=3)
    assert body_only.match.score == 1.0 and not body_only.matched
    assert len(body_only.match.hits) == 3
    in_title = evaluate("Fighting near Sirte", "no mention", keywords=["Sirte"], threshold=3,
                        title_weight=3)
    assert in_title.match.score == 3.0 and in_title.matched
    assert in_title.match.breakdown[0].detail == "weight 1 x title 3"


def test_exclusions_veto() -> None:
    result = evaluate("Libya beat Tunisia", "A football match in Tripoli.", keywords=["Libya"],
                      exclude=["football"])
    assert not result.matched and result.excluded_by == ("football",)


RULES: dict[str, Any] = {
    "entities": [{"name": "Khalifa Haftar", "aliases": ["Haftar", "حفتر"], "weight": 1},
                 {"name": "Sirte", "aliases": ["سرت"], "weight": 1}],
    "threshold": 4,
    "rules": [
        {"name": "haftar-near-sirte", "near": ["Haftar", "Sirte"], "within": 5, "weight": 3},
        {"name": "talks", "all_of": ["Haftar", {"any_of": ["ceasefire", "وقف إطلاق النار"]}],
         "weight": 2},
    ],
}


@pytest.mark.parametrize(
    ("body", "score", "fired"),
    [
        ("Haftar's forces moved on Sirte overnight.", 5.0, {"rule haftar-near-sirte"}),
        ("Haftar spoke. " + "Filler words here. " * 5 + "Later, in Sirte, calm.", 2.0, set()),
        ("Haftar accepted a ceasefire.", 3.0, {"rule talks"}),
        ("قوات حفتر قرب سرت تقبل وقف إطلاق النار", 7.0, {"rule haftar-near-sirte", "rule talks"}),
        ("A ceasefire in Sirte.", 1.0, set()),
    ],
)
def test_rules_near_all_of_any_of(body: str, score: float, fired: set[str]) -> None:
    result = evaluate("", body, **RULES)
    assert result.match.score == score
    assert {c.rule for c in result.match.breakdown if c.rule.startswith("rule")} == fired
    assert result.matched == (score >= 4)


def test_none_of_and_nesting() -> None:
    fields = {"keywords": ["Libya"], "rules": [
        {"all_of": ["Libya", {"none_of": ["football", {"all_of": ["election", "Tripoli"]}]}],
         "weight": 2}]}
    assert evaluate("", "Libya news", **fields).match.score == 3.0
    assert evaluate("", "Libya football", **fields).match.score == 1.0
    assert evaluate("", "Libya election in Tripoli", **fields).match.score == 1.0
    assert evaluate("", "Libya election in Benghazi", **fields).match.score == 3.0


def test_require_gates_the_watchlist() -> None:
    fields = {"keywords": [{"term": "election", "weight": 5}],
              "require": {"any_of": ["Libya", "ليبيا"]}}
    assert not evaluate("", "An election in France", **fields).matched
    gated = evaluate("", "An election in France", **fields)
    assert not gated.required and gated.match.score == 5.0
    assert evaluate("", "An election in ليبيا", **fields).matched


def test_rule_words_that_are_not_watchlist_terms_score_nothing_alone() -> None:
    result = evaluate("", "A ceasefire was signed", keywords=["Libya"],
                      rules=[{"all_of": ["Libya", "ceasefire"], "weight": 3}])
    assert result.match.score == 0 and not result.matched
    assert [h.kind for h in result.match.hits] == ["term"]


def test_explanations_carry_rule_term_alias_field_offset_snippet() -> None:
    body = "Filler words here. " * 30 + "Forces loyal to Hifter advanced on Sirte." + " More." * 50
    result = evaluate("", body, entities=[{"name": "Khalifa Haftar", "aliases": ["Hifter"]}],
                      rules=[{"name": "both", "near": ["Hifter", "Sirte"], "weight": 2}])
    hifter = next(h for h in result.match.hits if h.kind == "entity")
    assert (hifter.term, hifter.alias, hifter.matched, hifter.field) == \
        ("Khalifa Haftar", "Hifter", "Hifter", "body")
    assert body[hifter.offset:].startswith("Hifter")
    assert "Hifter" in result.match.snippet and len(result.match.snippet) < 300
    assert [(c.rule, c.points) for c in result.match.breakdown] == \
        [("entity Khalifa Haftar", 1.0), ("rule both", 2.0)]
    assert result.match.breakdown[1].detail == "near: Hifter, Sirte within 10 words"


def test_watchlists_score_independently() -> None:
    m = Matcher([watchlist(keywords=["Sirte"]),
                 WatchlistConfig.model_validate({"name": "b", "keywords": ["Benghazi"],
                                                 "threshold": 2})])
    assert {r.match.watchlist: r.matched for r in m.evaluate("", "Sirte and Benghazi")} == \
        {"w": True, "b": False}


@pytest.mark.parametrize(
    "rule",
    [{"all_of": []}, {"near": ["A"]}, {"all_of": ["A"], "any_of": ["B"]}, {"weight": 1},
     {"near": ["A", "B"], "within": 0}],
)
def test_malformed_rules_are_config_errors(rule: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        watchlist(keywords=["x"], rules=[rule])


# -- properties ---------------------------------------------------------------------------

@given(st.text())
def test_fold_is_idempotent(text: str) -> None:
    assert fold(fold(text)) == fold(text)


@pytest.mark.skipif(not speedups.in_use("monitor._fold"), reason="the C extension was not built")
@given(st.text(alphabet=st.characters(codec="utf-8")) | st.text(
    alphabet="ٱأإآةىـًٌٍَُِّْٰ\u200cß…ﬁÉİ #@&+-ЙйAz0\x00\n"))
def test_the_c_fold_is_str_translate_by_the_same_table(text: str) -> None:
    assert fold(text) == text_module.fold_translate(text)


# Separators of every class the matcher's text tells apart, and words around them: single
# letters, abbreviations, lower and upper case, harakat and format characters inside runs.
SEPARATED = st.lists(st.sampled_from(
    [" ", "  ", ".", ". ", "…", "! ", "?", "؟ ", "。", ", ", ".,", "،", "\n", "\r\n", "\r",
     "\u2029", "\u200c", "\u064e", ") ", " \"", "-", "⑴", "ß", "a", "B", "st", "St", "mr",
     "inc", "Dr", "د", "سرت", "x", "Word", "word", "東", "\U0001d400", "١"]), max_size=40).map("".join)


@pytest.mark.skipif(not speedups.in_use("monitor._fold"), reason="the C extension was not built")
@settings(max_examples=500)
@given(st.text(alphabet=st.characters(codec="utf-8")) | st.text(
    alphabet="ٱأإآةىـًٌٍَُِّْٰ\u200cß…ﬁÉİ #@&+-ЙйAz0\x00\n\U0001d400\U0001f600") | SEPARATED)
def test_the_c_shifts_are_the_python_ones(text: str) -> None:
    assert text_module.fold_mapped(text) == text_module.fold_mapped_translate(text)


@pytest.mark.skipif(not speedups.in_use("monitor._fold"), reason="the C extension was not built")
@given(st.text(alphabet=st.characters(codec="utf-8")) | SEPARATED)
def test_the_c_term_fold_is_the_python_one(text: str) -> None:
    assert text_module.fold_term_stop(text) == text_module.fold_term_translate(text)


def test_hits_in_vocalised_arabic_point_at_the_original() -> None:
    """Every haraka folds to nothing, so the folded offsets shift all along the text."""
    vocalised = "وَقَالَ الْمُتَحَدِّثُ إِنَّ الْقُوَّاتِ "
    text = vocalised * 200 + "دَخَلَتْ سِرْتَ، وَحَفْتَرُ"
    (hit_sirte, hit_haftar) = sorted(matcher_for("سرت", "حفتر").find(text),
                                     key=lambda h: h.offset)
    # The proclitic belongs to the hit, as in بسرت; each keeps its last haraka.
    assert (hit_sirte.matched, hit_haftar.matched) == ("سِرْتَ", "وَحَفْتَرُ")
    assert text[hit_sirte.offset:].startswith("سِرْتَ،")
    assert text[hit_haftar.offset:] == "وَحَفْتَرُ"


def test_the_daemon_folds_in_c_where_it_was_built() -> None:
    if speedups.in_use("monitor._fold"):
        assert fold is not text_module.fold_translate
    # … is three dots, which fold to one space: a character never folds to two together.
    assert fold("Erdoğan, أردوغان… ﬁne") == "erdogan  اردوغان  fine"


words = st.text(alphabet=st.characters(categories=["L"]), min_size=2, max_size=12)


@given(words, words, words)
def test_a_term_matches_itself_inside_a_sentence(before: str, term: str, after: str) -> None:
    key = fold_term(term)
    if not key or " " in key or any(not c.isalpha() for c in key):
        return  # letters that fold to nothing or to separators are not a word
    text = f"{before} {term}. {after}"
    assert term in [h.alias for h in matcher_for(term).find(text)]


@given(st.text(min_size=1) | SEPARATED.filter(bool))
def test_folded_spans_map_back_into_the_original(text: str) -> None:
    folded = Folded(text)
    for start in range(len(folded.folded)):
        a, b = folded.span(start, start + 1)
        assert 0 <= a < b <= len(text)


def test_the_fast_path_agrees_with_the_full_verdict_at_the_threshold() -> None:
    # Ten keywords of weight 0.1 sum to 0.9999999999999999, which rounds to the threshold.
    words = [f"word{chr(97 + i)}" for i in range(10)]
    m = Matcher([watchlist(keywords=[{"term": w, "weight": 0.1} for w in words],
                           threshold=1, title_weight=1)])
    body = " ".join(words)
    (full,) = m.evaluate("", body)
    assert full.matched and full.match.score == 1.0
    assert [match.score for match in m.matches("", body)] == [1.0]


@pytest.mark.parametrize("make", [Matcher, automaton_matcher], ids=["c", "python"])
def test_scores_keep_three_decimals(make: Any) -> None:
    m = make([watchlist(keywords=[{"term": "sirte", "weight": 0.125},
                                  {"term": "libya", "weight": 0.0625}], threshold=0.1)])
    assert [match.score for match in m.matches("", "Sirte, Libya")] == [0.188]
    assert [match.score for match in m.matches("", "Sirte")] == [0.125]
    assert m.evaluate("", "Sirte, Libya")[0].match.score == 0.188


VOCABULARY = ["haftar", "sirte", "trump", "ترامب", "بسرت", "سرت", "libya", "tripoli"]


@settings(max_examples=500)
@given(st.lists(st.tuples(st.sampled_from(VOCABULARY), st.sampled_from([0.1, 0.5, 1, 2, -1])),
                min_size=1, max_size=6, unique_by=lambda t: t[0]),
       st.sampled_from([0.3, 1, 1.5, 3]), st.sampled_from([1.0, 2.0]),
       st.lists(st.sampled_from(VOCABULARY), max_size=8),
       st.lists(st.sampled_from(VOCABULARY), max_size=30))
def test_the_daemon_fast_path_matches_what_the_dry_run_matches(
        terms: list[tuple[str, float]], threshold: float, title_weight: float,
        title: list[str], body: list[str]) -> None:
    m = Matcher([watchlist(keywords=[{"term": t, "weight": w} for t, w in terms],
                           threshold=threshold, title_weight=title_weight)])
    title_text, body_text = " ".join(title), " ".join(body)
    dry = [r.match for r in m.evaluate(title_text, body_text) if r.matched]
    assert m.matches(title_text, body_text) == dry


# Letters that exercise every rule of the scan: proclitic letters and ال, other Arabic,
# Latin, # and @, CJK and Thai, harakat, punctuation and spaces.
SCAN_LETTERS = "وفبكلالسرتاأة" + "دحثمص" + "abcAB" + "#@" + "東京ลิ" + "\u064e" + "ßﬁ" + ",. !\n"
# What may stand before and after a term in the text, and between two pieces of it.
BEFORE = ["", "و", "ب", "بال", "لل", "ولل", "ال", "#", "@#", "東", "a", "#و", "東#"]
AFTER = ["", "東", "a", "ة", "\u064e", "ß"]
BETWEEN = [" ", "  ", ", ", "", "東", " #", ". ", "! ", ".\n", "\n", " - ", "? B", "。"]


@st.composite
def scan_cases(draw: st.DrawFn) -> tuple[list[str], str, str]:
    terms = draw(st.lists(st.text(alphabet=SCAN_LETTERS, min_size=1, max_size=6).filter(
        lambda t: bool(fold_term(t))), min_size=1, max_size=8))
    words = [word for term in terms for word in fold_term(term).split()]
    piece = st.tuples(st.sampled_from(BEFORE), st.sampled_from(terms) | st.sampled_from(
        words) | st.text(alphabet=SCAN_LETTERS, max_size=4), st.sampled_from(AFTER),
        st.sampled_from(BETWEEN))
    title, body = (
        "".join(a + t + b + gap for a, t, b, gap in draw(st.lists(piece, max_size=size)))
        for size in (3, 12))
    return terms, title, body


def in_order(per_list: dict[int, dict[int, list[Any]]]) -> list[Any]:
    return [(index, list(by_atom.items())) for index, by_atom in per_list.items()]


@pytest.mark.skipif(not speedups.in_use("monitor.match._scan"), reason="the C extension was not built")
@settings(max_examples=300)
@given(scan_cases(), st.sampled_from([1, 2.5, 4]))
def test_the_c_scanner_finds_what_the_automaton_finds(case: tuple[list[str], str, str],
                                                      threshold: float) -> None:
    # The whole C path (monitor/match/_scan.c's hits, monitor/match/_explain.c's Hit values, their
    # offsets in the original past folded harakat and expanded ß and ligatures) against the
    # Python definitions.
    terms, title, body = case
    half = len(terms) // 2
    lists = [watchlist(keywords=terms[:half], phrases=terms[half:], threshold=threshold),
             watchlist(entities=[{"name": terms[0], "aliases": terms[1:], "weight": 0.5}],
                       exclude=terms[-1:], title_weight=3, threshold=threshold),
             watchlist(rules=[{"any_of": terms[-2:]}], threshold=threshold),
             watchlist(keywords=[{"term": t, "case": "sensitive"} for t in terms],
                       entities=[{"name": terms[0], "aliases": [{"alias": terms[-1],
                                                                  "case": "sensitive"}]}])]
    c, automaton = Matcher(lists), automaton_matcher(lists)
    assert c._scanner is not None and automaton._scanner is None
    fields = (Folded(title), Folded(body))
    assert c._scan(fields) == automaton._scan(fields)
    for quick in (False, True):
        assert in_order(c._by_list(fields, quick)) == in_order(
            automaton._by_list(fields, quick))
    assert c.evaluate(title, body) == automaton.evaluate(title, body)
    assert c.matches(title, body) == automaton.matches(title, body)


@pytest.mark.skipif(match_module._c_snippet is None, reason="the C extension was not built")
@settings(max_examples=200)
@given(st.lists(st.tuples(st.text(alphabet="abسرت…" + "\U0001d400", max_size=12) | st.text(),
                          st.sampled_from([" ", "  ", "\n", "\t ", "\u00a0", "\u2003", "\u3000", ""])),
                max_size=120), st.data())
def test_the_c_snippet_is_the_python_one(pieces: list[tuple[str, str]],
                                         data: st.DataObject) -> None:
    body = "".join(word + space for word, space in pieces)  # up to a few thousand characters
    first = None
    if body and data.draw(st.booleans()):
        offset = data.draw(st.integers(0, len(body) - 1))
        end = data.draw(st.integers(offset, min(len(body), offset + 30)))
        first = Hit("keyword", "x", "x", body[offset:end], "body", offset, 1.0)
    assert match_module._snippet(body, first) == match_module._snippet_python(body, first)


@pytest.mark.skipif(match_module._c_hits is None, reason="the C extension was not built")
@pytest.mark.parametrize("field", ["text", None, 3, Hit("keyword", "x", "x", "x", "body", 0, 1.0)])
def test_the_c_hits_refuse_fields_of_the_wrong_type_with_a_type_error(field: Any) -> None:
    from monitor.match._explain import hits, matches

    m = Matcher([watchlist(keywords=["sirte"])])
    raws = [[(0, 1, 0, 5, "sirte")]]
    with pytest.raises(TypeError, match="monitor.text.Folded"):
        hits(raws, (Folded(""), field), m._kind, m._term, m._weight, Hit, match_module.FIELDS)
    with pytest.raises(TypeError, match="monitor.text.Folded"):
        matches({0: {0: raws[0]}}, (Folded(""), field), m._plan, lambda *_: None)
    # A field of the right type with a shifts attribute of the wrong type: also TypeError.
    folded = Folded("sirte")
    folded.shifts = 5  # type: ignore[assignment]
    with pytest.raises(TypeError):
        hits([[(0, 1, 0, 5, "sirte")]], (Folded(""), folded), m._kind, m._term, m._weight,
             Hit, match_module.FIELDS)


def test_a_lone_article_is_not_absorbed_after_lam() -> None:
    # "أل.@" folds to "ال @": its first word is the article alone, which ل does not absorb.
    assert matched("أل.@", "لل @") == []
    assert matched("أل.@", "أل @") == ["أل @"]
    if speedups.in_use("monitor.match._scan"):
        assert matcher_for("أل.@")._scanner is not None  # not the automaton's fallback


@pytest.mark.skipif(not speedups.in_use("monitor.match._scan"), reason="the C extension was not built")
def test_only_a_hash_collision_sends_the_matcher_to_the_automaton() -> None:
    # Any other refusal of the C scanner is a bug to see, not a slower config to run.
    with pytest.raises(ValueError, match="start and end with a word"):
        match_module._scanner([" @"], [()], [()], [], ([], []), [], b"", {})


@pytest.mark.skipif(not speedups.in_use("monitor.match._scan"), reason="the C extension was not built")
def test_the_c_scanner_keeps_the_first_hits_of_each_term_per_field() -> None:
    lists = [watchlist(keywords=["سرت", "libya"], phrases=["east libya"])]
    c, automaton = Matcher(lists), automaton_matcher(lists)
    body = " ".join(["بسرت east libya libya"] * 12)
    fields = (Folded("libya, سرت"), Folded(body))
    raws = c._scan(fields)
    assert raws == automaton._scan(fields)
    per_field: dict[tuple[int, int], int] = {}
    for atom, field, *_ in raws:
        per_field[atom, field] = per_field.get((atom, field), 0) + 1
    assert max(per_field.values()) == match_module.MAX_HITS_PER_TERM
    assert per_field[0, 0] == 1 and per_field[1, 0] == 1  # the title's own

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from monitor.extract import default_boilerplate, extract, extract_text
from monitor.page import decode_html

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
SEED_TEXT = SEEDS / "000_5789ac1c2e1f81f5.txt"
SEED_PAGE = SEEDS / "libya-sirte.html"
NOTICE = "Sorry, you need to enable JavaScript to visit this website."
MORE_FROM = "المزيد من العالم العربي"


def seed_lines() -> list[str]:
    """The seed's lines with white space collapsed (NBSP included), as extraction gives them."""
    lines = SEED_TEXT.read_text("utf-8").splitlines()
    return [" ".join(line.split()) for line in lines if line.strip()]


def test_seed_page_gives_the_article_and_nothing_else() -> None:
    article = extract(SEED_PAGE.read_bytes())
    lines = seed_lines()
    # The real article is every line of the seed between the notice and the footer.
    assert article.text.splitlines() == lines[1:-1]
    assert article.title == lines[1]
    assert article.language == "ar"
    for boilerplate in (NOTICE, MORE_FROM, "الأكثر قراءة", "حفتر يلتقي", "فيسبوك", "سياسة",
                        "جميع الحقوق محفوظة"):
        assert boilerplate not in article.text


def test_seed_text_drops_notice_and_more_from_lines() -> None:
    article = extract_text(SEED_TEXT.read_text("utf-8"))
    assert article.text.splitlines() == seed_lines()[1:-1]
    assert article.title.startswith('"الجيش الوطني" يؤكد صد هجوم')


@pytest.mark.parametrize(
    "notice",
    [NOTICE, "We use cookies to improve your experience. Accept?",
     "Bitte aktivieren Sie JavaScript, um diese Seite zu sehen.",
     "Veuillez activer JavaScript dans votre navigateur.",
     "يستخدم هذا الموقع ملفات تعريف الارتباط"],
)
def test_notices_in_several_languages_are_removed(notice: str) -> None:
    body = "<p>" + "Die Armee meldet neue Kämpfe bei Sirte, sagte ein Sprecher am Mittwoch. " * 3
    html = f"<html><body><div><span>{notice}</span></div><article>{body}</p></article></body>"
    text = extract(html).text
    assert notice not in text
    assert "Sirte" in text


def test_notices_and_headings_deep_in_the_article_go_phrases_inside_sentences_stay() -> None:
    """Only blocks whose text mentions a phrase are looked into: one nested several levels
    under long text is still found, and one quoted mid-sentence is still kept."""
    said = "Die Armee meldet neue Kämpfe bei Sirte, sagte ein Sprecher am Mittwoch. " * 3
    quoted = "The site's banner, which read Read also our terms, was taken down in Sirte."
    links = "".join(f"<li><a href='/s{i}'>Another story number {i}</a></li>" for i in range(4))
    html = (f"<html><body><article><div><div><section><p>{said}</p>"
            f"<div><span><b>{NOTICE}</b></span></div><p>{quoted}</p>"
            f"<div><h3>اقرأ أيضا</h3><ul>{links}</ul></div><p>{said}</p>"
            "</section></div></div></article></body></html>")
    text = extract(html).text
    assert NOTICE not in text
    assert "اقرأ أيضا" not in text and "Another story" not in text
    assert quoted in text.splitlines()
    assert text.count("Sirte, sagte") == 6


def test_a_page_that_is_only_a_notice_has_no_article() -> None:
    html = f"<html><body><noscript>{NOTICE}</noscript><p>{NOTICE}</p></body></html>"
    assert extract(html).text == ""


JUNK = [b"", b"   ", b"\x00\x00", "<html></html>",
        "<html><body><script>var a = '<p>text</p>';</script></body></html>"]


@pytest.mark.parametrize("data", JUNK)
def test_empty_and_junk_input(data: bytes | str) -> None:
    assert extract(data).text == ""


def test_deeply_nested_markup_is_handled() -> None:
    html = "<div>" * 5000 + "<p>" + "Haftar forces near Sirte, officials said. " * 5 + "</p>" \
        + "</div>" * 5000
    assert "Sirte" in extract(html).text


def test_a_utf8_page_with_a_stray_byte_keeps_its_text_and_reads_the_byte() -> None:
    page = SEED_PAGE.read_bytes()
    at = page.index("ترامب".encode())
    text = extract(page[:at] + "5€ ".encode("cp1252") + page[at:]).text
    assert text.splitlines() == [line.replace("دونالد ترامب", "دونالد 5€ ترامب")
                                 for line in seed_lines()[1:-1]]


@pytest.mark.parametrize(("label", "codec", "text"), [
    ("Shift_JIS", "cp932", "東京の天気は晴れ～明日は雨①です。"),  # vendor characters
    ("euc-kr", "cp949", "서울 날씨 맑음, 똠방각하."),  # a syllable beyond EUC-KR's
    ("gb2312", "gb18030", "会议在苏尔特举行，镕基出席。"),  # 镕: GBK, not GB2312
])
def test_pages_labelled_with_narrow_cjk_charsets_are_read_by_their_supersets(
        label: str, codec: str, text: str) -> None:
    """As browsers and the feeds read them: the strict codec refuses these pages, and
    detection guessed another mapping (～ came out as the wave dash 〜)."""
    html = (f'<html><head><meta charset="{label}"><title>t</title></head><body>'
            f"<p>{text * 4}</p></body></html>")
    assert decode_html(html.encode(codec)) == html


def test_charset_utf8_labelled_gb2312_decodes_as_utf8() -> None:
    text = "<html><head><meta charset='gb2312'></head><body><p>中文新闻：利比亚</p></body></html>"
    assert "利比亚" in decode_html(text.encode("utf-8"))


@pytest.mark.parametrize("codec", ["windows-1256", "iso-8859-6"])
def test_undeclared_arabic_legacy_charsets(codec: str) -> None:
    text = "<html><body><p>أعلن الجيش الوطني الليبي أن قواته صدت هجوما على مدينة سرت، " \
        "وأن المعارك مستمرة قرب الطريق الساحلي بين مصراتة وسرت منذ صباح الأربعاء.</p></body></html>"
    decoded = decode_html(text.encode(codec, errors="ignore"))
    assert "سرت" in decoded and "الجيش" in decoded


# -- golden files: real pages against their published ground truth ------------------------

from bench.extract import cases, score  # noqa: E402

GOLDEN = cases()


@pytest.mark.parametrize(("stem", "page", "truth"), GOLDEN, ids=[c[0] for c in GOLDEN])
def test_real_page_matches_its_ground_truth(stem: str, page: bytes, truth: str) -> None:
    _, _, f1, _ = score([extract(page).text], [truth])
    assert f1 >= 0.80, f"{stem}: F1 {f1:.3f}"


def test_corpus_f1_does_not_regress() -> None:
    articles = [extract(page) for _, page, _ in GOLDEN]
    truths = [t for _, _, t in GOLDEN]
    assert len(GOLDEN) == 45
    # The ground truth has no headline on 43 pages, as trafilatura's and readability's
    # output has none: the body is what compares like with like (bench/extract.py).
    precision, recall, f1, _ = score([a.body for a in articles], truths)
    assert f1 >= 0.970, (precision, recall, f1)  # measured 0.974
    precision, recall, f1, _ = score([a.text for a in articles], truths)
    assert f1 >= 0.962, (precision, recall, f1)  # measured 0.964


def test_text_leads_with_the_headline_and_body_is_the_rest() -> None:
    page = ("<html><head><title>Storm - CNN</title></head><body><h1>Storm hits the coast</h1>"
            f"<article>{BODY}</article></body></html>")
    article = extract(page)
    assert article.headline == "Storm hits the coast"
    assert article.text.splitlines()[0] == "Storm hits the coast"
    assert article.body == article.text.split("\n", 1)[1]
    assert article.body.startswith("Paragraph 0 of the report")
    inside = page.replace("<h1>Storm hits the coast</h1><article>",
                          "<article><h1>Storm hits the coast</h1>")
    assert extract(inside).body == article.body


def test_a_pager_of_numbers_and_arrows_is_dropped_a_numbered_table_is_not() -> None:
    pager = "".join(f"<div><span>{x}</span></div>" for x in ["&lt;&lt;", "&lt;", *range(1, 15),
                                                              "&gt;", "&gt;&gt;"])
    ranks = "<table>" + "".join(f"<tr><td>{n}</td><td>{c}</td></tr>" for n, c in
                                enumerate(["Finland", "Norway", "Australia"], 1)) + "</table>"
    page = f"<html><body><h1>Storm</h1><article><div>{pager}</div>{BODY}{ranks}</article></body>" \
           "</html>"
    lines = extract(page).text.splitlines()
    assert not {"<<", "<", ">", ">>", "7", "14"} & set(lines)
    assert lines[-6:] == ["1", "Finland", "2", "Norway", "3", "Australia"]


@pytest.mark.parametrize("name", [
    "chardet__windows-1256-arabic___chromium_windows-1256_with_no_encoding_specified.html",
    "chardet__iso-8859-6-arabic___chromium_ISO-8859-6_with_no_encoding_specified.html",
])
def test_undeclared_legacy_arabic_pages(name: str) -> None:
    article = extract((Path(__file__).parent / "data" / "pages" / name).read_bytes())
    assert "أعلنت كتائب الشهيد عز الدين القسام" in article.text
    assert article.language == "ar"


def test_utf8_page_labelled_gb2312() -> None:
    article = extract((Path(__file__).parent / "data" / "pages" /
                       "readability__qq__source.html").read_bytes())
    assert article.title.startswith("DeepMind新电脑已可利用记忆自学")
    assert "谷歌" in article.text and article.language == "zh"


@pytest.mark.parametrize(
    "html",
    [
        "<html><head><script>window.location.href='https://example.org/a?js=1'</script></head>"
        "<body></body></html>",
        "<html><head><meta http-equiv='refresh' content='0;url=/a'></head><body>"
        "<p>Redirecting…</p></body></html>",
        "<html><body><div class='consent-wall'><h2>We use cookies</h2><p>We use cookies and "
        "similar technologies to improve your experience. Accept all cookies to continue.</p>"
        "<button>Accept</button></div></body></html>",
        f"<html><body><div id='app'></div><noscript>{NOTICE}</noscript>"
        f"<script src='/app.js'></script></body></html>",
    ],
    ids=["redirect-script", "meta-refresh", "consent-wall", "js-app"],
)
def test_walls_yield_no_article(html: str) -> None:
    assert extract(html).text == ""


# -- metadata ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("head", "expected"),
    [
        ('<meta property="article:published_time" content="2020-06-17T10:30:00Z">',
         "2020-06-17T10:30:00+00:00"),
        ('<script type="application/ld+json">{"@type": "NewsArticle", '
         '"datePublished": "2020-06-17T12:30:00+02:00"}</script>', "2020-06-17T12:30:00+02:00"),
        ('<meta name="pubdate" content="Wed, 17 Jun 2020 10:30:00 GMT">',
         "2020-06-17T10:30:00+00:00"),
        ("", None),
    ],
)
def test_published_date(head: str, expected: str | None) -> None:
    body = "<p>" + "Forces loyal to Haftar advanced on Sirte, officials said. " * 3 + "</p>"
    article = extract(f"<html><head>{head}</head><body><article>{body}</article></body></html>")
    assert (article.published.isoformat() if article.published else None) == expected


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("أعلن الجيش الوطني الليبي أن قواته صدت هجوما على سرت", "ar"),
        ("پاکستان کے وزیر اعظم نے کہا کہ ہم امن چاہتے ہیں", "ur"),
        ("وزیر امور خارجه ایران گفت که گفتگوها ادامه دارد", "fa"),
        ("米朝首脳会談を巡って戦っていたのは、トランプと金正恩ばかりではなかった", "ja"),
        ("香港行政长官梁振英在各方压力下就其大宅的违章建筑问题道歉", "zh"),
        ("북한은 미사일을 발사했다고 밝혔다", "ko"),
        ("Forces loyal to Haftar advanced on Sirte", None),
    ],
)
def test_language_from_the_script_when_markup_is_silent(text: str, language: str | None) -> None:
    html = f"<html><body><article><p>{text}. {text}.</p></article></body></html>"
    assert extract(html).language == language


def test_language_from_markup_wins() -> None:
    html = "<html lang='fr-CA'><body><article><p>" + "Le texte est court, mais réel. " * 3
    assert extract(html + "</p></article></body></html>").language == "fr-CA"


# -- bounded work ----------------------------------------------------------------------------

@pytest.mark.timeout(60)
@pytest.mark.parametrize("shape", ["one-text-node", "many-paragraphs"])
def test_huge_pages_stay_within_memory_bounds(tmp_path: Path, shape: str) -> None:
    import subprocess
    import sys

    # 10 MB, the fetcher's default size limit, under a 1 GiB address-space limit.
    script = f"""
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from monitor.extract import extract
words = "Haftar forces advanced on Sirte, officials said. "
if {shape!r} == "one-text-node":
    page = "<html><body><p>" + words * 200_000 + "</p></body></html>"
else:
    page = "<html><body>" + ("<div><p>" + words * 4 + "</p></div>") * 50_000 + "</body></html>"
article = extract(page)
assert "Sirte" in article.text, article.text[:100]
print(len(page), len(article.text))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=55)
    assert result.returncode == 0, result.stderr[-2000:]


BODY = "".join(f"<p>Paragraph {n} of the report, with a clause, and another clause, as news "
               f"prose goes on for a while about Sirte and the talks.</p>" for n in range(6))


def test_gallery_labels_repeated_three_times_go_dates_stay() -> None:
    gallery = "".join("<div><h3>Weather threatens holiday plans</h3><p>March 25, 2015</p></div>"
                      for _ in range(3))
    page = f"<html><body><h1>Storm</h1><article>{BODY}{gallery}</article></body></html>"
    text = extract(page).text
    assert "Weather threatens" not in text
    assert text.count("March 25, 2015") == 3


@pytest.mark.parametrize("name", ["article-gallery", "photo_carousel", "slideshow"])
def test_photo_galleries_are_captions_not_text(name: str) -> None:
    gallery = (f"<div class='{name}'><img src='a.jpg'><p>Police officers adjust a barricade "
               "as people wait in cold weather along the route of the parade.</p></div>")
    page = f"<html><body><h1>Storm</h1><article>{gallery}{BODY}</article></body></html>"
    text = extract(page).text
    assert "barricade" not in text and "Paragraph 5 of the report" in text


def test_a_card_linking_another_story_is_not_text() -> None:
    card = ('<a href="/other"><div>Why Are the Streets Always Under Construction?</div>'
            "<time>Aug. 18, 2016</time></a>")
    page = f"<html><body><h1>Pipes</h1><article>{BODY}{card}<p>Inline <a href='/x'>link</a> " \
           "text stays as part of the paragraph that holds it, with its words.</p></article>" \
           "</body></html>"
    text = extract(page).text
    assert "Under Construction" not in text and "Aug. 18" not in text
    assert "Inline link text stays" in text


def test_headline_once_when_the_title_has_a_site_suffix() -> None:
    page = ("<html><head><title>Leung apologises - BBC News</title></head><body><article>"
            f"<h1>Leung apologises</h1>{BODY}</article></body></html>")
    assert extract(page).text.splitlines().count("Leung apologises") == 1


def test_standfirst_found_by_its_class_and_not_repeated() -> None:
    perex = "A miracle of one season? The club keeps answering its doubters, and loudly."
    page = (f"<html><body><div class='article'><h1>West Ham</h1><div class='article__perex'>"
            f"{perex}</div><div class='body'>{BODY}</div></div></body></html>")
    lines = extract(page).text.splitlines()
    assert lines[:2] == ["West Ham", perex]
    repeated = page.replace("<div class='body'>", f"<div class='body'><p>{perex}</p>")
    assert extract(repeated).text.count("A miracle of one season") == 1


def test_list_items_led_by_a_sentence_heading_are_kept() -> None:
    lead = ("The mother of a woman who took suspected diet pills bought online has described "
            "how her daughter was burning up from within.")
    items = f"<div class='item item-image'><h2>{lead}</h2><img src='x.jpg'></div>" + "".join(
        f"<div class='item item-text'>{BODY}</div>" for _ in range(2))
    page = f"<html><body><h1>Student dies</h1><div class='list'>{items}</div>" \
           "<div class='footer'><a href='/a'>About</a></div></body></html>"
    assert lead in extract(page).text


# -- 2025 pages of sites the block model never saw (tests/data/wcxb, SOURCES.md) -----------
# tools/train_extract.py leaves these sites out of training, so each test is the model on
# a site it has not seen. Each page stands for a failure class of issue 22; the score is
# the WCXB benchmark's (word-level F1 against the reviewed main text).

WCXB_TESTS = Path(__file__).parent / "data" / "wcxb"


def wcxb_page(page_id: str) -> tuple[str, dict[str, Any]]:
    import gzip
    import json

    with gzip.open(WCXB_TESTS / "ground-truth.jsonl.gz", "rt", encoding="utf-8") as lines:
        row = next(r for r in map(json.loads, lines) if r["id"] == page_id)
    with gzip.open(WCXB_TESTS / "html" / f"{page_id}.html.gz", "rt", encoding="utf-8",
                   errors="replace") as page:
        return page.read(), row


def wcxb_f1(text: str, truth: str) -> float:
    got, want = Counter(re.findall(r"\w+", text.lower())), Counter(
        re.findall(r"\w+", truth.lower()))
    overlap = sum((got & want).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / sum(got.values()), overlap / sum(want.values())
    return 2 * precision * recall / (precision + recall)


def found(text: str, snippets: list[str]) -> list[str]:
    return [s for s in snippets if s.lower() in text.lower()]


@pytest.mark.parametrize(("page_id", "floor"), [
    ("4833", 0.90),  # health.com: a 20,000-character buying guide, every section a block
    ("4416", 0.90),  # tigerdata.com: the article streamed in a hidden React segment
])
def test_long_guides_on_publisher_templates_are_not_empty(page_id: str, floor: float) -> None:
    """These came out empty, and the daemon logged a JavaScript or consent wall for a
    page of real text."""
    html, row = wcxb_page(page_id)
    article = extract(html, url=row["url"])
    assert len(article.body) > 5000
    assert wcxb_f1(article.body, row["main_content"]) >= floor
    assert len(found(article.body, row["with"])) >= len(row["with"]) - 1


def test_a_page_inside_one_form_keeps_its_text() -> None:
    """ASP.NET sites set the whole page inside one `<form>`: a real page wrapped the way
    WebForms wraps it reads the same."""
    html, row = wcxb_page("4416")
    at = html.index(">", html.index("<body")) + 1
    wrapped = (html[:at] + '<form method="post" action="./article.aspx" id="aspnetForm">'
               '<input type="hidden" name="__VIEWSTATE" value="/wEPDwUKLTk">'
               + html[at:].replace("</body>", "</form></body>"))
    plain = extract(html, url=row["url"]).body
    in_form = extract(wrapped, url=row["url"]).body
    assert wcxb_f1(in_form, row["main_content"]) >= 0.90
    assert wcxb_f1(in_form, plain) >= 0.98


def test_listicle_items_in_cards_are_all_kept() -> None:
    """cio.com's "13 go-to podcasts": each item in its own section; only the intro was
    kept (recall near 0), then nothing."""
    html, row = wcxb_page("4377")
    body = extract(html, url=row["url"]).body
    assert wcxb_f1(body, row["main_content"]) >= 0.90
    assert len(found(body, row["with"])) == len(row["with"])


def test_posts_written_as_br_separated_lines_are_kept_sidebars_are_not() -> None:
    """webhostingtalk.com: each post is lines between `<br>`s, with no `<p>`; every post of
    the thread is text, the navigation and sidebars are not."""
    html, row = wcxb_page("0533")
    body = extract(html, url=row["url"]).body
    assert wcxb_f1(body, row["main_content"]) >= 0.80
    assert len(found(body, row["with"])) >= len(row["with"]) - 1
    assert not found(body, row["without"])


def test_a_forum_thread_keeps_its_replies() -> None:
    """A Discourse thread (its posts in `<noscript>` for readers without JavaScript): all
    posts, not one."""
    html, row = wcxb_page("0512")
    body = extract(html, url=row["url"]).body
    assert wcxb_f1(body, row["main_content"]) >= 0.85
    assert len(found(body, row["with"])) >= len(row["with"]) - 1


def test_documentation_keeps_the_page_not_its_sidebar_navigation() -> None:
    html, row = wcxb_page("2867")
    body = extract(html, url=row["url"]).body
    assert wcxb_f1(body, row["main_content"]) >= 0.90
    assert not found(body, row["without"])


@pytest.mark.parametrize(("page_id", "boilerplate"), [
    ("0009", None),  # a dozen photo captions and credits
    ("4044", ["Sign up today and receive exclusive offers, new product news and special "
              "access to local events"]),  # a newsletter appeal
    ("4373", ["Published by Damien Walter", "Previous Post", "Next post:"]),  # a byline
])
def test_captions_bylines_and_appeals_are_not_body(page_id: str,
                                                   boilerplate: list[str] | None) -> None:
    """The body keeps the article and none of the page's boilerplate snippets."""
    html, row = wcxb_page(page_id)
    body = extract(html, url=row["url"]).body
    assert wcxb_f1(body, row["main_content"]) >= 0.90
    assert not found(body, boilerplate or row["without"])


def test_headline_is_the_article_title_not_the_logo_in_an_h1() -> None:
    """budgettravelwithgabby.com sets its logo in the page's first `<h1>`: the headline
    is the title's own part, without " - Budget Travel With Gabby"."""
    html, row = wcxb_page("0071")
    article = extract(html, url=row["url"])
    assert article.headline == "Budget Traveler’s Guide To Travel Insurance"
    assert article.text.startswith(article.headline + "\n")
    assert wcxb_f1(article.body, row["main_content"]) >= 0.90


def test_a_page_of_real_text_is_never_empty() -> None:
    """Where the classifier keeps no block, the container with the best paragraphs is
    the text: a page of real text is not a "JavaScript or consent wall"."""
    from monitor.extract import assemble
    from monitor.extract.model import Classifier, default_classifier
    from monitor.extract.reader import read

    html, row = wcxb_page("4833")
    reading = read(html, row["url"], default_boilerplate())
    assert reading is not None
    never = Classifier(default_classifier().forest, cut=2.0)  # keeps no block
    body = assemble(reading, never).body
    assert len(body) > 2000 and found(body, row["with"])


# -- advertisement labels (issue 24, point 5) -----------------------------------------------

LABELS = ["Advertisement", "Anzeige", "Publicité", "Publicidad", "إعلان", "广告", "広告"]
NEWS = {
    "Advertisement": "Advertisement revenue fell by a third at the paper, its owners said.",
    "Anzeige": "Anzeige gegen den Bürgermeister: die Staatsanwaltschaft ermittelt.",
    "Publicité": "Publicité mensongère : la marque condamnée à une amende record.",
    "Publicidad": "Publicidad institucional: el gobierno gastó el doble que en 2023.",
    "إعلان": "إعلان حالة الطوارئ في سرت بعد اشتباكات عنيفة",
    "广告": "广告法修订草案今日提交全国人大常委会审议。",
    "広告": "広告大手の決算、ネット広告が初めてテレビを上回る。",
}


@pytest.mark.parametrize("label", LABELS)
def test_an_advertisement_label_goes_a_sentence_starting_with_it_stays(label: str) -> None:
    """A block that is the label alone, or the label and a link, is an ad's label; a
    block that starts with the word and goes on is news ("إعلان القاهرة", the Cairo
    Declaration)."""
    said = "Die Armee meldet neue Kämpfe bei Sirte, sagte ein Sprecher am Mittwoch. " * 3
    news = NEWS[label]
    html = (f"<html><body><article><p>{said}</p><div class='slot'>{label}</div>"
            f"<p>{news}</p><div><span>{label}</span> <a href='/ad'>Buy now</a></div>"
            f"<p>{said}</p></article></body></html>")
    lines = extract(html).text.splitlines()
    assert news in lines
    assert label not in lines and not any(line.startswith(f"{label} Buy") for line in lines)
    text = extract_text(f"{said}\n{label}\n{news}\n  {label}:  \n{said}").text.splitlines()
    assert news in text and label not in text and f"{label}:" not in text


def test_the_seed_keeps_the_cairo_declaration() -> None:
    assert "إعلان القاهرة" in extract(SEED_PAGE.read_bytes()).text
    assert "إعلان القاهرة" in extract_text(SEED_TEXT.read_text("utf-8")).text


def test_the_forest_in_c_and_in_numpy_agree() -> None:
    from monitor.extract.model import _c_margins, default_classifier
    from monitor.extract.reader import read

    if _c_margins is None:
        pytest.skip("monitor/extract/_forest.c was not built")
    html, row = wcxb_page("4833")
    reading = read(html, row["url"], default_boilerplate())
    assert reading is not None and len(reading.features) > 100
    forest = default_classifier().forest
    assert np.allclose(forest.probability(reading.features),
                       forest.probability(reading.features, use_c=False), atol=1e-9)

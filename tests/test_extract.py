from __future__ import annotations

from pathlib import Path

import pytest

from monitor.extract import decode_html, extract, extract_text

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


def test_charset_utf8_labelled_gb2312_decodes_as_utf8() -> None:
    text = "<html><head><meta charset='gb2312'></head><body><p>中文新闻：利比亚</p></body></html>"
    assert "利比亚" in decode_html(text.encode("utf-8"))


@pytest.mark.parametrize("codec", ["windows-1256", "iso-8859-6"])
def test_undeclared_arabic_legacy_charsets(codec: str) -> None:
    text = "<html><body><p>أعلن الجيش الوطني الليبي أن قواته صدت هجوما على مدينة سرت، " \
        "وأن المعارك مستمرة قرب الطريق الساحلي بين مصراتة وسرت منذ صباح الأربعاء.</p></body></html>"
    decoded = decode_html(text.encode(codec, errors="ignore"))
    assert "سرت" in decoded and "الجيش" in decoded

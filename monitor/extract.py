"""Article HTML (or plain text) -> title and clean article text, boilerplate removed.

Rules, in order:
1. Bytes are decoded whatever their charset, and the title, language and date are read
   from the markup, by monitor.page.
2. Never content: scripts, styles, forms, navigation, headers and footers outside the
   article, asides, hidden elements, and blocks whose class or id names boilerplate
   (menu, share, cookie, newsletter, related, comments, galleries, pagers, ...).
3. Notices (`data/boilerplate.yaml`: "Sorry, you need to enable JavaScript...", cookie
   prompts) are removed with their block, and a page that is only a notice, a consent
   wall or a redirect (a script, or a meta refresh with little text) has no article;
   "more from" headings ("المزيد من", "Read also") go with the list of links after them.
4. The article is the element whose paragraphs score highest (text length, commas), the
   way Readability finds it, preferring an explicit articleBody.
5. Text is one line per block; blocks that are mostly links are dropped, and so are
   pagers and labels repeated three times. The headline leads the text, then the
   standfirst; `Article.body` is the text without the headline.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources

import ahocorasick_rs
import lxml.etree
import lxml.html
import yaml

from monitor.models import Article
from monitor.page import Marks, decode_html, markup_language, script_language
from monitor.page import published as page_published
from monitor.page import title as page_title
from monitor.text import fold

_NEVER_CONTENT = (
    "script", "style", "noscript", "template", "iframe", "svg", "canvas", "form", "button",
    "input", "select", "textarea", "nav", "aside", "dialog", "object", "embed", "video",
    "audio", "picture", "figure", "menu",
)
_BOILERPLATE_ROLES = {"navigation", "banner", "contentinfo", "complementary", "dialog",
                      "alertdialog", "search", "menu", "menubar"}
_BOILERPLATE_NAME = re.compile(
    r"(^|[-_ ])(nav|navbar|navigation|menu|footer|sidebar|share|sharing|share-?bar|social|cookies?|"
    r"consent|gdpr|newsletter|subscribe|subscription|related|recommended|promo|advert|"
    r"advertisement|ads?|ad-slot|breadcrumbs?|comments?|popup|modal|outbrain|taboola|"
    r"most-?read|most-?popular|trending|tags|byline-share|paywall|signup|pagination|pager|"
    r"gallery|carousel|slideshow|lightbox)"
    r"([-_ ]|$)",
    re.I,
)
_BLOCKS = {"p", "div", "section", "article", "main", "li", "ul", "ol", "h1", "h2", "h3", "h4",
           "h5", "h6", "blockquote", "pre", "table", "tr", "td", "th", "dl", "dt", "dd",
           "header", "footer", "figcaption", "center", "address"}
_TEXT_BLOCKS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "pre", "td",
                "th", "dd", "dt", "figcaption", "address"}
_STRUCTURE_TAGS = re.compile(
    r"</?(?:div|span|section|font|center|b|i|em|strong|table|tbody|tr|td|ul|ol|li)\b[^>]*>", re.I
)
# Zero-width and direction marks, soft hyphens: removed by a regex, which scans at C speed
# where str.translate looks every non-ASCII character up in a dict.
_INVISIBLE = re.compile("[\ufeff\u200b\u200c\u200d\u200e\u200f\u2060\u00ad]")
_NOTICE_MAX_CHARS = 300
_HEADING_MAX_CHARS = 80
# Class names that sites give the summary under the headline: UK "standfirst", Czech
# and Slovak "perex", French "chapo"/"chapeau", US "dek"/"lede".
_STANDFIRST_CLASSES = ("standfirst", "perex", "chapo", "chapeau", "dek", "lede")
# Elements whose class mentions one of them (one pass in C), then checked in Python: the
# class itself, or a BEM-style `__dek` / `-dek` suffix. The XPaths below test attribute
# nodes (`//@class[...]/..`), not every element's attributes (`//*[...@class...]`): the
# same elements in the same order, in about 60% of the time on the corpus's pages.
_STANDFIRST_CANDIDATES = lxml.etree.XPath("//@class[" + " or ".join(
    f'contains(., "{c}")' for c in _STANDFIRST_CLASSES) + "]/..")
_ARTICLE_BODY = lxml.etree.XPath('//@itemprop[.="articleBody"]/..')
_CLASS_MENTIONS = lxml.etree.XPath("//@class[contains(., $name)]/..")
_WITH_NAMES = lxml.etree.XPath("//*[@class or @id or @hidden or @aria-hidden or @style or @role]")
_MIN_LEAD = 100
_REPEAT_MAX_CHARS = 120  # a heading this long is a sentence of the article, not a title
_MIN_PARAGRAPH = 25


@dataclass(frozen=True)
class Boilerplate:
    """Folded phrases: notices to drop, and headings that introduce link lists."""

    notices: tuple[str, ...]
    more_from: tuple[str, ...]

    def is_notice(self, folded: str) -> bool:
        return len(folded) <= _NOTICE_MAX_CHARS and folded.startswith(self.notices)

    def is_more_from(self, folded: str) -> bool:
        return len(folded) <= _HEADING_MAX_CHARS and folded.startswith(self.more_from)

    def mentions(self, folded: str) -> bool:
        """Whether a notice or a heading occurs anywhere in `folded`: one automaton pass,
        where searching for each phrase in turn costs about twice as much."""
        return self._automaton is None or bool(self._automaton.find_matches_as_indexes(folded))

    @cached_property
    def _automaton(self) -> ahocorasick_rs.AhoCorasick | None:
        """None when a phrase is empty: that one starts every text."""
        phrases = [*self.notices, *self.more_from]
        return ahocorasick_rs.AhoCorasick(phrases) if all(phrases) else None


@lru_cache(maxsize=1)
def default_boilerplate() -> Boilerplate:
    raw = yaml.safe_load(resources.files("monitor").joinpath("data/boilerplate.yaml").read_text())
    return Boilerplate(
        notices=tuple(fold(p).strip() for p in raw["notices"]),
        more_from=tuple(fold(p).strip() for p in raw["more_from"]),
    )


def extract(html: str | bytes, url: str | None = None,
            boilerplate: Boilerplate | None = None) -> Article:
    """The article's title and clean text from a page; an empty text when there is none."""
    rules = boilerplate or default_boilerplate()
    text = decode_html(html) if isinstance(html, bytes) else html
    text = text.replace("\x00", "")
    if not text.strip():
        return Article(title="", text="")
    doc = _parse(text, url)
    if doc is None:
        return Article(title="", text="")
    marks = Marks.of(doc)
    language = markup_language(marks)
    published = page_published(marks)
    title = page_title(marks)
    _strip_boilerplate(doc, rules)
    blocks = _drop_repeats(_drop_pagers(
        [line for part in _article_parts(doc) for line in _blocks(part, rules)]))
    headline = (_headline(doc) or title) if title and blocks else ""
    if headline and fold(blocks[0]).strip() not in {fold(title).strip(), fold(headline).strip()}:
        present = " ".join(fold(" ".join(blocks)).split())  # the body repeats it: not added
        lead = [p for p in _standfirst(doc) if " ".join(fold(p).split()) not in present]
        blocks[:0] = [headline, *lead]
    elif headline:
        headline = blocks[0]  # the article's own first block is the headline
    if not blocks or _is_redirect(doc, blocks):
        return Article(title=title, text="", language=language, published=published)
    text = "\n".join(blocks)
    return Article(title=title or blocks[0], text=text,
                   language=language or script_language(text), published=published,
                   headline=headline)


def extract_text(text: str, boilerplate: Boilerplate | None = None) -> Article:
    """The same cleaning for plain text: notice lines and "more from" lines are dropped."""
    rules = boilerplate or default_boilerplate()
    lines = [" ".join(line.split()) for line in text.splitlines()]
    kept = []
    for line in lines:
        folded = fold(line).strip()
        if folded and not rules.is_notice(folded) and not rules.is_more_from(folded):
            kept.append(line)
    body = "\n".join(kept)
    return Article(title=kept[0] if kept else "", text=body, language=script_language(body))


def _parse(text: str, url: str | None) -> lxml.html.HtmlElement | None:
    """The document tree; markup nested past libxml2's depth limit is flattened first,
    since libxml2 silently drops everything below that depth."""
    for attempt in range(2):
        parser = lxml.html.HTMLParser()
        try:
            doc = lxml.html.document_fromstring(text, parser=parser, base_url=url)
        except (lxml.etree.ParserError, ValueError):
            return None
        too_deep = any("Excessive depth" in e.message for e in parser.error_log)
        if not too_deep or attempt:
            return doc
        text = _STRUCTURE_TAGS.sub(" ", text)
    return None


def _is_redirect(doc: lxml.html.HtmlElement, blocks: list[str]) -> bool:
    """A page that sends the reader elsewhere with a meta refresh and says little itself."""
    refresh = doc.xpath('//meta[translate(@http-equiv, "REFSH", "refsh")="refresh"]/@content')
    return any("url=" in str(r).lower() for r in refresh) and sum(map(len, blocks)) < 300


def _standfirst(doc: lxml.html.HtmlElement) -> list[str]:
    """Up to two paragraphs right after the headline in its own container (the summary
    that news sites set in the article's header, apart from the body)."""
    h1 = next(doc.iter("h1"), None)
    if h1 is None:
        return []
    out: list[str] = []
    for sibling in h1.itersiblings():
        if not isinstance(sibling.tag, str) or len(out) == 2:
            break
        text = " ".join(sibling.text_content().split())
        if sibling.tag == "p" and len(text) >= 40 and _link_density(sibling) < 0.3:
            out.append(text)
    if not out:  # the standfirst by its class name, where the site names it plainly
        for el in _STANDFIRST_CANDIDATES(doc):
            classes = el.get("class", "")
            if not any(c in classes.split() or f"__{c}" in classes or f"-{c}" in classes
                       for c in _STANDFIRST_CLASSES):
                continue
            text = " ".join(el.text_content().split())
            if 40 <= len(text) <= 800 and _link_density(el) < 0.3:
                return [text]
    return out


def _headline(doc: lxml.html.HtmlElement) -> str:
    for h1 in doc.iter("h1"):
        value = " ".join(h1.text_content().split())
        if value:
            return value
    return ""


def _drop(el: lxml.html.HtmlElement) -> None:
    """Remove an element but keep its tail text, which belongs to the parent."""
    parent = el.getparent()
    if parent is None:
        return
    el.drop_tree()


def _paragraph_chars(el: lxml.html.HtmlElement) -> int:
    return sum(len(p.text_content()) for p in el.iter("p"))


def _holds_article(el: lxml.html.HtmlElement, page_chars: int) -> bool:
    """A boilerplate-named wrapper (a page-wide `blq-int-nav`) that holds half the page's
    paragraph text holds the article, and must not be dropped for its name."""
    if el.tag in ("body", "html", "article", "main"):
        return True
    return page_chars > 0 and _paragraph_chars(el) * 2 >= page_chars


@lru_cache(maxsize=4096)
def _boilerplate_name(names: str) -> bool:
    """Whether a class and id name boilerplate. Pages and sites repeat their class names
    (the corpus's pages: 270 named elements, 110 distinct names each): each is searched once."""
    return _BOILERPLATE_NAME.search(names) is not None


def _strip_boilerplate(doc: lxml.html.HtmlElement, rules: Boilerplate) -> None:
    # In one pass in C; each element's tail stays, as Element.drop_tree keeps it.
    lxml.etree.strip_elements(doc, lxml.etree.Comment, lxml.etree.ProcessingInstruction,
                              *_NEVER_CONTENT, with_tail=False)
    for el in list(doc.iter("header", "footer")):
        if not any(a.tag in ("article", "main") for a in el.iterancestors()):
            _drop(el)
    named = _WITH_NAMES(doc)  # most elements carry none of these attributes
    page_chars = _paragraph_chars(doc) if named else 0
    for el in named:
        if el.getparent() is None:
            continue
        style = el.get("style")
        hidden = el.get("hidden") is not None or el.get("aria-hidden") == "true" or (
            style is not None and "display:none" in style.replace(" ", ""))
        if hidden or el.get("role") in _BOILERPLATE_ROLES or (
                _boilerplate_name(f"{el.get('class', '')} {el.get('id', '')}")
                and not _holds_article(el, page_chars)):
            _drop(el)
    _drop_phrases(doc, rules)


def _drop_phrases(doc: lxml.html.HtmlElement, rules: Boilerplate) -> None:
    """Notices and "more from" headings, page order. Only elements whose text mentions a
    phrase anywhere are looked into: their parts' texts are pieces of theirs."""
    def visit(el: lxml.html.HtmlElement) -> None:
        folded = fold(el.text_content())
        if not rules.mentions(folded):
            return
        if el.getparent() is not None and el.tag not in ("body", "html") and (
                el.tag in _BLOCKS or el.tag in ("a", "span", "strong", "b")):
            folded = folded.strip()
            if folded and rules.is_notice(folded):
                _drop(_outermost_short(el, _NOTICE_MAX_CHARS))
            elif folded and rules.is_more_from(folded):
                heading = _outermost_short(el, _HEADING_MAX_CHARS)
                following = heading.getnext()
                if following is not None and _link_density(following) > 0.5:
                    _drop(following)
                _drop(heading)
            if el.getparent() is None:
                return  # dropped itself
        for child in list(el):
            if isinstance(child.tag, str) and child.getparent() is not None:
                visit(child)

    visit(doc)


def _outermost_short(el: lxml.html.HtmlElement, limit: int) -> lxml.html.HtmlElement:
    """The largest ancestor holding no more text than `limit`: the whole notice block."""
    best = el
    for parent in el.iterancestors():
        if parent.tag in ("body", "html", "article", "main"):
            break
        if len(" ".join(parent.text_content().split())) > limit:
            break
        best = parent
    return best


def _link_density(el: lxml.html.HtmlElement) -> float:
    if next(el.iter("a"), None) is None:
        return 0.0
    total = len(" ".join(el.text_content().split()))
    if not total:
        return 0.0
    linked = sum(len(" ".join(a.text_content().split())) for a in el.iter("a"))
    return linked / total


def _article_parts(doc: lxml.html.HtmlElement) -> list[lxml.html.HtmlElement]:
    """The element(s) holding the article, in page order (rule 4)."""
    explicit = _ARTICLE_BODY(doc)
    if explicit:
        return [max(explicit, key=lambda e: len(e.text_content()))]
    scores: dict[lxml.html.HtmlElement, float] = {}
    for p in doc.iter("p", "pre", "td", "blockquote"):
        text = " ".join(p.text_content().split())
        if len(text) < _MIN_PARAGRAPH:
            continue
        score = 1 + sum(text.count(c) for c in ",،，、") + min(len(text) / 100, 3)
        parent = p.getparent()
        if parent is None:
            continue
        scores[parent] = scores.get(parent, 0.0) + score
        grand = parent.getparent()
        if grand is not None:
            scores[grand] = scores.get(grand, 0.0) + score / 2
    body = doc.find("body")
    if not scores:
        return [body if body is not None else doc]
    best = _best_block(scores)
    family = _family_blocks(doc, best, scores)
    if len(family) > 1:
        return family
    return _with_relatives(_climb(best), scores)


def _best_block(scores: dict[lxml.html.HtmlElement, float]) -> lxml.html.HtmlElement:
    """The element of highest score times (1 - link density), the first in `scores`'
    order on a tie. Density walks an element's whole subtree, and the candidates nest
    (a paragraph's parent, its grandparent, their parents...), so it is computed only for
    those whose score alone could still win, highest score first."""
    order = {el: i for i, el in enumerate(scores)}
    best, best_value = None, -math.inf
    for el in sorted(scores, key=scores.__getitem__, reverse=True):
        if scores[el] < best_value:
            break  # the value is at most the score: nothing further can reach the best
        value = scores[el] * (1 - _link_density(el))
        if value > best_value or (value == best_value and order[el] < order[best]):
            best, best_value = el, value
    assert best is not None
    return best


def _with_relatives(best: lxml.html.HtmlElement,
                    scores: dict[lxml.html.HtmlElement, float]) -> list[lxml.html.HtmlElement]:
    """Siblings that continue the article; failing those, the parent's siblings that come
    before it (a lead in a `story-intro` ahead of the container that holds the body; what
    follows at that level is more often related stories)."""
    kept = _with_siblings(best, scores)
    parent = best.getparent()
    if len(kept) > 1 or parent is None or parent.tag in ("body", "html"):
        return kept
    uncles = _with_siblings(parent, scores)
    if len(uncles) == 1:
        return kept
    return [*uncles[:uncles.index(parent)], best]


def _family_blocks(doc: lxml.html.HtmlElement, best: lxml.html.HtmlElement,
                   scores: dict[lxml.html.HtmlElement, float]) -> list[lxml.html.HtmlElement]:
    """Articles cut into blocks around images and ads repeat the block's class
    (story-body-1, story-body-2; article-text, article-text): all such blocks with
    paragraph text and few links, outermost only, in page order."""
    family = _class_family(best)
    if not family:
        return [best]
    blocks = [el for el in _CLASS_MENTIONS(doc, name=family)  # a walk in C, then exactly:
              if _class_family(el) == family
              and (scores.get(el, 0.0) > 0 or _lead_chars(el) >= _MIN_LEAD)
              and _link_density(el) < 0.3]
    outer = [el for el in blocks
             if not any(a in blocks for a in el.iterancestors())]
    return outer if best in outer else [best]


def _lead_chars(el: lxml.html.HtmlElement) -> int:
    """Text in headings of sentence length: a block that leads with a whole sentence set
    as a heading (BuzzFeed's list items) continues the article even without paragraphs."""
    return sum(len(text) for h in el.iter("h2", "h3", "h4")
               if len(text := " ".join(h.text_content().split())) >= _MIN_LEAD)


def _climb(root: lxml.html.HtmlElement) -> lxml.html.HtmlElement:
    """An article split over cousin containers (text, image, text, ...) comes back whole:
    climb while the parent adds a quarter more paragraph text and stays mostly paragraphs."""
    current = root
    chars = _paragraph_chars(current)
    while True:
        parent = current.getparent()
        if parent is None or parent.tag in ("body", "html"):
            return current
        parent_chars = _paragraph_chars(parent)
        text = len(parent.text_content())
        if parent_chars < chars * 1.25 or parent_chars * 2 < text or _link_density(parent) > 0.3:
            return current
        current, chars = parent, parent_chars


def _class_family(el: lxml.html.HtmlElement) -> str:
    """The first class name: story-body-1 and story-body-2 both say `story-body`."""
    classes = (el.get("class") or "").split()
    return classes[0] if classes else ""


def _with_siblings(best: lxml.html.HtmlElement,
                   scores: dict[lxml.html.HtmlElement, float]) -> list[lxml.html.HtmlElement]:
    """The best element and its siblings that continue the article, as Readability does:
    siblings that score well, share its class, or are themselves substantial paragraphs
    with few links (a lead paragraph in a container of its own)."""
    parent = best.getparent()
    if parent is None:
        return [best]
    threshold = max(10.0, scores.get(best, 0.0) * 0.2)
    kept = []
    for sibling in parent:
        if not isinstance(sibling.tag, str):
            continue
        if sibling is best:
            kept.append(sibling)
            continue
        bonus = threshold if _class_family(sibling) and \
            _class_family(sibling) == _class_family(best) else 0
        if scores.get(sibling, 0.0) + bonus >= threshold:
            kept.append(sibling)
            continue
        text = " ".join(sibling.text_content().split())
        density = _link_density(sibling)
        if sibling.tag == "p" and (len(text) > 80 and density < 0.25
                                   or 0 < len(text) <= 80 and density == 0 and ". " in text):
            kept.append(sibling)
        elif scores.get(sibling, 0.0) > 0 and density < 0.25 and _paragraph_chars(sibling) >= 80:
            kept.append(sibling)  # an intro or lead in a container of its own
    return kept


def _blocks(root: lxml.html.HtmlElement, rules: Boilerplate) -> list[str]:
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        text = "".join(pending)
        line = " ".join((text if text.isascii() else _INVISIBLE.sub("", text)).split())
        pending.clear()
        if line and not _is_boilerplate_line(line, rules):
            out.append(line)

    def walk(el: lxml.html.HtmlElement) -> None:
        is_block = el.tag in _BLOCKS or el.tag == "br"
        if is_block:
            flush()
        if not _other_stories(el):
            if el.text:
                pending.append(el.text)
            for child in el:
                if isinstance(child.tag, str):
                    walk(child)
                if child.tail:
                    pending.append(child.tail)
        if is_block:
            flush()

    walk(root)
    flush()
    return out


def _other_stories(el: lxml.html.HtmlElement) -> bool:
    """A paragraph or list made of links, or a link wrapping blocks (a card promoting
    another story): none of it is the article's text."""
    if el.tag in _TEXT_BLOCKS and el.tag != "li":
        return _link_density(el) > 0.6
    if el.tag in ("ul", "ol"):
        return _link_density(el) > 0.5
    return el.tag == "a" and any(isinstance(d.tag, str) and d.tag in _BLOCKS
                                 for d in el.iterdescendants())


def _drop_repeats(lines: list[str]) -> list[str]:
    """Short lines without digits that come three times or more are a gallery's or a
    widget's labels ("Weather threatens holiday plans" over each photo), not the article's
    prose (dates and numbers repeat in tables and digests, and stay)."""
    counts = Counter(line for line in lines
                     if len(line) <= _REPEAT_MAX_CHARS and not any(c.isdigit() for c in line))
    return [line for line in lines if counts.get(line, 0) < 3]


_PAGER_ARROW = re.compile(r"[<>«»‹›←→…|]{1,3}")


def _drop_pagers(lines: list[str]) -> list[str]:
    """A gallery's or a list's page numbers, one per block ("<<", "<", "1", "2", "3", ">"):
    a run of lines that are only arrows and consecutive numbers, three numbers or more."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        j, numbers = i, []
        while j < len(lines) and (lines[j].isdigit() and len(lines[j]) <= 4
                                  or _PAGER_ARROW.fullmatch(lines[j])):
            if lines[j].isdigit():
                numbers.append(int(lines[j]))
            j += 1
        pager = len(numbers) >= 3 and all(b == a + 1 for a, b in zip(numbers, numbers[1:],
                                                                        strict=False))
        if not pager:
            out.extend(lines[i:j])
        if j < len(lines):
            out.append(lines[j])
        i = j + 1
    return out


def _is_boilerplate_line(line: str, rules: Boilerplate) -> bool:
    folded = fold(line).strip()
    return rules.is_notice(folded) or rules.is_more_from(folded)

"""Page text -> its parsed tree, less what is never article text: scripts, styles,
embedded objects, form controls, comments, hidden elements, and the notices and "more
from" lists that monitor.extract.rules names."""

from __future__ import annotations

import re

import lxml.etree
import lxml.html

from monitor.extract.rules import HEADING_MAX_CHARS, LABEL_MAX_CHARS, NOTICE_MAX_CHARS, Boilerplate
from monitor.text import fold

NEVER_CONTENT = (
    "script", "style", "template", "iframe", "svg", "canvas", "input", "select", "textarea",
    "object", "embed", "video", "audio", "map", "dialog", "head", "link", "meta", "math",
    # A photo's caption and credit describe the photo, not the story; readers and the
    # reviewed texts of the benchmark leave them out.
    "figcaption",
)
_STRUCTURE_TAGS = re.compile(
    r"</?(?:div|span|section|font|center|b|i|em|strong|table|tbody|tr|td|ul|ol|li)\b[^>]*>", re.I
)
_HIDDEN = lxml.etree.XPath(
    "//*[@hidden or @aria-hidden='true' or contains(translate(@style, ' ', ''), 'display:none')"
    " or contains(translate(@style, ' ', ''), 'visibility:hidden')]")
# React's streamed rendering sends parts of the page in hidden `<div id="S:0">` elements
# that a script moves into place: they are the page.
_STREAMED = ("S:", "P:")
_CAPTIONS = lxml.etree.XPath('//@class[contains(., "wp-caption-text")]/..')
_CARDS = lxml.etree.XPath("//a[@href][.//div or .//p or .//h1 or .//h2 or .//h3 or .//h4 "
                          "or .//h5 or .//h6 or .//li or .//section or .//article]")
CARD_MAX_CHARS = 300
# Photo galleries: their captions describe photos. The XPath tests attribute nodes, then
# the words are checked in Python.
_GALLERY_WORDS = ("gallery", "carousel", "slideshow", "lightbox")
_GALLERIES = lxml.etree.XPath("//@class[" + " or ".join(
    f'contains(., "{w}")' for w in _GALLERY_WORDS) + "]/..")
_GALLERY_NAME = re.compile(r"(?:^|[-_ ])(?:photo[-_]?|article[-_]?)?(?:" +
                           "|".join(_GALLERY_WORDS) + r")(?:$|[-_ ])")
_PHRASE_TAGS = frozenset({"noscript", "a", "span", "strong", "b", "p", "div", "section", "li", "ul",
                          "ol", "h1", "h2", "h3", "h4", "h5", "h6", "td", "header", "aside",
                          "figcaption", "blockquote", "center", "footer", "label", "dt",
                          "dd", "article", "small", "em", "i"})


def parse(text: str, url: str | None) -> lxml.html.HtmlElement | None:
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


def strip(doc: lxml.html.HtmlElement, rules: Boilerplate) -> None:
    """Remove what is never article text, in place (tails stay: they are the parent's)."""
    # In one pass in C; each element's tail stays, as Element.drop_tree keeps it.
    lxml.etree.strip_elements(doc, lxml.etree.Comment, lxml.etree.ProcessingInstruction,
                              *NEVER_CONTENT, with_tail=False)
    for el in _CAPTIONS(doc):
        el.drop_tree()
    _drop_galleries(doc)
    for el in _CARDS(doc):  # a link wrapping blocks: a card promoting another page
        if el.getparent() is not None and len(el.text_content()) <= CARD_MAX_CHARS:
            el.drop_tree()
    for el in list(doc.iter("noscript")):
        if len(el) == 0 and "<" in (el.text or ""):  # markup read as text: a pixel, a frame
            el.drop_tree()
    for el in _HIDDEN(doc):
        if el.getparent() is not None and el.tag not in ("body", "html") and not (
                el.get("id", "").startswith(_STREAMED)):
            el.drop_tree()
    drop_phrases(doc, rules)


def _drop_galleries(doc: lxml.html.HtmlElement) -> None:
    """Elements named as photo galleries, unless one holds half the page's paragraph
    text (a page-wide wrapper that happens to carry the name)."""
    found = [el for el in _GALLERIES(doc) if _GALLERY_NAME.search(el.get("class", ""))]
    if not found:
        return
    page = sum(len(p.text_content()) for p in doc.iter("p"))
    for el in found:
        if el.getparent() is not None and el.tag not in ("body", "html") and (
                sum(len(p.text_content()) for p in el.iter("p")) * 2 < page):
            el.drop_tree()


def drop_phrases(doc: lxml.html.HtmlElement, rules: Boilerplate) -> None:
    """Notices, advertisement labels and "more from" headings, page order. Only elements
    whose text mentions a phrase anywhere are looked into: their parts' texts are pieces
    of theirs."""
    dropped: list[lxml.html.HtmlElement] = []

    def visit(el: lxml.html.HtmlElement) -> None:
        folded = fold(el.text_content())
        if not rules.mentions(folded):
            return
        if el.getparent() is not None and el.tag in _PHRASE_TAGS:
            folded = folded.strip()
            if folded and (rules.is_notice(folded) or len(folded) <= LABEL_MAX_CHARS
                           and rules.is_label(folded, _unlinked(el))):
                _outermost_short(el, NOTICE_MAX_CHARS).drop_tree()
                dropped.append(el)
                return
            if folded and rules.is_more_from(folded):
                heading = _outermost_short(el, HEADING_MAX_CHARS)
                following = heading.getnext()
                if following is not None and link_density(following) > 0.5:
                    following.drop_tree()
                heading.drop_tree()
                dropped.append(el)
                return
        for child in list(el):
            if dropped and not _attached(el, doc):
                return  # dropped with a notice found in an earlier child
            if isinstance(child.tag, str) and child.getparent() is not None:
                visit(child)

    visit(doc)


def _attached(el: lxml.html.HtmlElement, doc: lxml.html.HtmlElement) -> bool:
    """Whether `el` is still in `doc` (a drop higher up takes it along)."""
    top = el
    for ancestor in el.iterancestors():
        top = ancestor
    return top is doc


def _unlinked(el: lxml.html.HtmlElement) -> str:
    """The folded text of `el` outside its links."""
    linked = [" ".join(a.text_content().split()) for a in el.iter("a")]
    text = " ".join(el.text_content().split())
    for part in linked:
        text = text.replace(part, " ", 1)
    return fold(text).strip()


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


def link_density(el: lxml.html.HtmlElement) -> float:
    if next(el.iter("a"), None) is None:
        return 0.0
    total = len(" ".join(el.text_content().split()))
    if not total:
        return 0.0
    linked = sum(len(" ".join(a.text_content().split())) for a in el.iter("a"))
    return linked / total

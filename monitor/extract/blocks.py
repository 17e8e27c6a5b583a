"""A cleaned page tree -> its text blocks, in page order, each with what the block
classifier reads about it.

A block is the text between two block boundaries (an opening or closing block element,
or a `<br>`), white space collapsed: a paragraph, a heading, a list item, a table cell, one
line of a `<br>`-separated text. Each block knows its owner (the innermost block element
around it), the names and tags of its ancestors (as bit masks, see `_element_bits`), how
much of it is link text, and the range of blocks that each of its block ancestors holds,
from which the features of its surroundings are computed (monitor.extract.features).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

import lxml.html

BLOCK_TAGS = frozenset({
    "p", "div", "section", "article", "main", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5",
    "h6", "blockquote", "pre", "table", "tr", "td", "th", "dl", "dt", "dd", "header",
    "footer", "figcaption", "figure", "center", "address", "nav", "aside", "form", "body",
    "fieldset", "details", "summary", "caption", "thead", "tbody", "tfoot", "menu", "hgroup",
    "legend", "label", "option",
})
# Elements whose text is a block of its own: they own the text inside them.
TEXT_TAGS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "pre",
                       "td", "th", "dd", "dt", "figcaption", "address", "caption", "summary",
                       "legend", "label"})
# Tags a block may sit inside, each a bit of `Block.tags` (the owner and all ancestors).
_CONTEXT_TAGS = ("nav", "header", "footer", "aside", "form", "article", "main", "li",
                 "table", "a", "blockquote", "figure", "h1", "h2", "h3", "h4", "p", "pre",
                 "dl", "ul", "ol", "code", "strong", "em", "time", "button", "section",
                 "figcaption", "label", "details", "menu", "address", "noscript")
TAG_BIT = {tag: 1 << i for i, tag in enumerate(_CONTEXT_TAGS)}
# Words that class and id names use for a part of a page, each a bit of `Block.names`.
NAME_GROUPS: tuple[tuple[str, str], ...] = (
    ("nav", "nav navbar navigation menu breadcrumb breadcrumbs crumb crumbs skip jump"),
    ("footer", "footer foot copyright legal colophon bottom contentinfo"),
    ("header", "header masthead topbar top branding logo brand"),
    ("side", "sidebar side widget rail aside secondary sidenav toc right left complementary"),
    ("comment", "comment comments disqus replies reply respond discussion"),
    ("related", "related recommended recommendation recommendations more also next popular "
                "trending latest recent readnext similar suggested teaser promo"),
    ("share", "share sharing social follow sharebar addthis print email"),
    ("ad", "ad ads advert advertisement adslot dfp gpt sponsor sponsored outbrain taboola "
           "banner promoted affiliate"),
    ("meta", "meta byline author authors date time dateline posted published timestamp "
             "updated info details"),
    ("caption", "caption credit credits figure photo image img media gallery video thumbnail "
                "thumb picture carousel slider slideshow lightbox"),
    ("subscribe", "newsletter subscribe subscription signup login register paywall donate "
                  "donation membership cta"),
    ("modal", "cookie cookies consent gdpr modal popup overlay dialog notice alert toast"),
    ("content", "content article post entry story body text main blog prose richtext "
                "markdown copy single detail description"),
    ("title", "title headline heading hed"),
    ("tags", "tag tags taglist category categories topic topics label labels keywords"),
    ("card", "card cards tile tiles item items list grid product products collection "
             "listing result results feed river stream module"),
    ("pager", "pagination pager pages paging prev previous"),
    ("hidden", "hidden sr sronly visually screen reader offscreen invisible noprint"),
    ("forum", "message messages postbody thread topic question answer answers bbcode "
              "cooked usertext msg"),
    ("lead", "lead lede intro summary standfirst dek excerpt perex chapo subtitle subhead "
             "deck abstract"),
    ("bio", "bio about profile avatar user username signature contributor"),
    ("price", "price prices cart buy checkout rating review reviews star stars sku stock "
              "variant swatch"),
    ("doc", "doc docs documentation api reference sphinx rst highlight admonition note "
            "warning tip example"),
    ("wrap", "wrap wrapper container inner outer layout row col column section block "
             "region panel box"),
)
NAME_BIT = {name: 1 << i for i, (name, _) in enumerate(NAME_GROUPS)}
_NAME_TOKEN = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])")
_GROUP_OF: dict[str, int] = {}
for _i, (_, _words) in enumerate(NAME_GROUPS):
    for _word in _words.split():
        _GROUP_OF[_word] = _GROUP_OF.get(_word, 0) | (1 << _i)
# Words that run into others in one class name ("mainnav", "postfooter"): found inside.
_EMBEDDED = [(word, _GROUP_OF[word]) for word in (
    "nav", "menu", "footer", "header", "sidebar", "widget", "comment", "share", "social",
    "related", "cookie", "newsletter", "breadcrumb", "caption", "content", "article",
    "advert", "sponsor", "subscribe", "byline", "author", "gallery", "pagination", "body",
    "promo", "modal", "popup", "banner", "tags", "entry", "story", "post")]


@dataclass(slots=True)
class Blocks:
    """The blocks of one page as columns, in page order, and the block elements
    ("containers") that hold them: container `c` holds blocks `start[c]` to `end[c] - 1`."""

    texts: list[str] = field(default_factory=list)
    links: list[int] = field(default_factory=list)  # characters of link text
    owner: list[int] = field(default_factory=list)  # container of the block
    tags: list[int] = field(default_factory=list)  # TAG_BIT of the owner and its ancestors
    names: list[int] = field(default_factory=list)  # NAME_BIT of the owner and its ancestors
    near: list[int] = field(default_factory=list)  # NAME_BIT of the owner and 2 ancestors
    depth: list[int] = field(default_factory=list)
    elements: list[lxml.html.HtmlElement] = field(default_factory=list)  # per container
    parent: list[int] = field(default_factory=list)  # per container, -1 at the top
    start: list[int] = field(default_factory=list)
    end: list[int] = field(default_factory=list)
    own_names: list[int] = field(default_factory=list)  # per container


@lru_cache(maxsize=16384)
def _word_bits(word: str) -> int:
    bits = _GROUP_OF.get(word, 0)
    if bits or len(word) < 5:
        return bits
    for part, group in _EMBEDDED:
        if part in word:
            bits |= group
    return bits


@lru_cache(maxsize=8192)
def _element_bits(names: str) -> int:
    """The NAME_BIT groups that a class, id, role and itemprop name ("entry-content
    post-body", "sidebarWidget", "articleBody") mention, word by word."""
    bits = 0
    for word in _NAME_TOKEN.findall(names):
        bits |= _word_bits(word.lower())
    return bits


class _Walk:
    """One recursive walk of the tree that fills a Blocks."""

    def __init__(self) -> None:
        self.out = Blocks()
        self.pending: list[str] = []
        self.pending_links = 0
        self.stack: list[int] = []

    def flush(self, tags: int, names: int, near: int, depth: int) -> None:
        if not self.pending:
            return
        raw = "".join(self.pending)
        links = self.pending_links
        self.pending.clear()
        self.pending_links = 0
        text = " ".join(raw.split())
        if not text:
            return
        out = self.out
        out.texts.append(text)
        out.links.append(min(links, len(text)))
        out.owner.append(self.stack[-1])
        out.tags.append(tags)
        out.names.append(names)
        out.near.append(near)
        out.depth.append(depth)

    def add(self, text: str, in_link: bool) -> None:
        self.pending.append(text)
        if in_link:
            self.pending_links += len(text.strip())

    def open(self, el: lxml.html.HtmlElement, own: int) -> None:
        out = self.out
        out.parent.append(self.stack[-1] if self.stack else -1)
        out.elements.append(el)
        out.start.append(len(out.texts))
        out.end.append(len(out.texts))
        out.own_names.append(own)
        self.stack.append(len(out.elements) - 1)

    def close(self) -> None:
        self.out.end[self.stack.pop()] = len(self.out.texts)

    def visit(self, el: lxml.html.HtmlElement, tags: int, names: int, up1: int, up2: int,
              depth: int, in_link: bool) -> None:
        tag = el.tag
        if not isinstance(tag, str):
            return
        is_block = tag in BLOCK_TAGS
        if is_block or tag == "br":  # the text so far is the parent's
            self.flush(tags, names, up1 | up2, depth - 1)
        attrs = el.get("class"), el.get("id"), el.get("role"), el.get("itemprop")
        own = _element_bits(" ".join(a for a in attrs if a)) if any(attrs) else 0
        tags |= TAG_BIT.get(tag, 0)
        names |= own
        in_link = in_link or tag == "a"
        if is_block:
            self.open(el, own)
        if el.text:
            self.add(el.text, in_link)
        for child in el:
            self.visit(child, tags, names, own, up1, depth + 1, in_link)
            if child.tail:
                self.add(child.tail, in_link)
        if is_block:
            self.flush(tags, names, own | up1 | up2, depth)
            self.close()


def segment(body: lxml.html.HtmlElement) -> Blocks:
    """The blocks of `body` (rules in the module docstring)."""
    walk = _Walk()
    walk.open(body, 0)
    if body.text:
        walk.add(body.text, False)
    for child in body:
        walk.visit(child, TAG_BIT.get(str(body.tag), 0), 0, 0, 0, 1, False)
        if child.tail:
            walk.add(child.tail, False)
    walk.flush(0, 0, 0, 0)
    walk.close()
    return walk.out

"""Blocks -> the feature matrix the block classifier reads: one row per block, columns
named in `NAMES` (the order the model file was trained on).

Each block is described by its own text (length, links, punctuation), its tags and its
ancestors' class and id names, where it stands on the page (before or after the headline,
inside the container that Readability's paragraph scores pick), the containers around it
at three levels (their text, links and blocks), its neighbours, and the page as a whole.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import numpy.typing as npt

from monitor.extract.blocks import NAME_GROUPS, TAG_BIT, TEXT_TAGS, Blocks

OWNER_TAGS = ("p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "td", "th", "pre",
              "blockquote", "dd", "dt", "figcaption", "span", "section", "article", "a",
              "header", "footer", "nav", "aside", "form", "label", "body")
_OWNER_CODE = {tag: i for i, tag in enumerate(OWNER_TAGS)}
_LEVELS = 4  # the owner and three block ancestors
_SENTENCE_END = re.compile(r"[.!?؟!?](?:\s|$)|[。！？]")
# Scripts written without spaces: their characters count as words, two to a word.
_UNSPACED = re.compile("[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")
_DIGITS = re.compile(r"\d+")
_MIN_SCORED = 25  # characters a block needs to count towards its container's score

Matrix = npt.NDArray[np.float32]

# What kind of page this is, by its URL's words and by the types its metadata states
# (og:type, JSON-LD @type): a thread's replies are its text, an article's comments are not.
PAGE_KINDS: tuple[tuple[str, str, str], ...] = (
    ("article", r"blog|blogs|news|article|articles|story|stories|posts?|20\d\d|guides?|"
                r"insights|learn|resources",
     r"article|newsarticle|blogposting|reportagenewsarticle|howto|recipe|review"),
    ("forum", r"forums?|threads?|topics?|t|community|questions|discussion|viewtopic|"
              r"showthread|boards|comments|r",
     r"discussionforumposting|qapage|question|answer|comment"),
    ("product", r"products?|p|dp|item|itm|app|shop",
     r"product|offer|aggregateoffer|productgroup"),
    ("collection", r"collections?|category|categories|c|catalog|shop|browse|list|search",
     r"itemlist|collectionpage|searchresultspage|offercatalog"),
    ("documentation", r"docs?|documentation|api|reference|manual|library|wiki|learn|tutorial",
     r"techarticle|apireference"),
    ("service", r"services?|pricing|plans|insurance|solutions|about|contact|careers",
     r"service|localbusiness|organization|professionalservice|faqpage|webpage"),
)
_URL_WORDS = re.compile(r"[a-z0-9]+")
_KIND_URL = [re.compile(rf"(?:{words})") for _, words, _ in PAGE_KINDS]
_KIND_TYPE = [re.compile(rf"(?:{types})") for _, _, types in PAGE_KINDS]


_TEXT_NAMES = ["chars", "words", "link_density", "sentences", "commas", "ends_sentence",
               "digits", "separators", "copyright", "repeats", "is_title", "upper_start",
               "colon_end"]
_CONTAINER_NAMES = [f"c{level}_{name}" for level in range(_LEVELS)
                    for name in ("chars", "links", "blocks", "share", "text_blocks")]
NAMES: list[str] = [
    *_TEXT_NAMES,
    *(f"tag_{tag}" for tag in TAG_BIT),
    *(f"name_{name}" for name, _ in NAME_GROUPS),
    *(f"near_{name}" for name, _ in NAME_GROUPS),
    *(f"owner_{tag}" for tag in OWNER_TAGS),
    "depth", "position", "chars_before", "after_h1", "from_h1", "h1_same_container",
    *_CONTAINER_NAMES,
    "in_best", "in_best_parent", "best_share", "best_parent_share", "best_links",
    "page_chars", "page_blocks", "page_links",
    "prev_chars", "prev_links", "prev_owner", "next_chars", "next_links", "next_owner",
    "prev_ends", "next_ends", "same_owner_prev", "same_owner_next",
    *(f"kind_{kind}_{by}" for kind, _, _ in PAGE_KINDS for by in ("url", "type")),
    "is_end", "after_end",
]

def page_kinds(path: str, types: list[str]) -> list[float]:
    """Per PAGE_KINDS: whether a word of the URL's path names it, and whether a stated
    type does (`types`: og:type and JSON-LD @type values, lower case)."""
    words = _URL_WORDS.findall(path.lower())
    out = []
    for by_url, by_type in zip(_KIND_URL, _KIND_TYPE, strict=True):
        out.append(float(any(by_url.fullmatch(w) for w in words)))
        out.append(float(any(by_type.fullmatch(t) for t in types)))
    return out


def _text_columns(texts: list[str], title: str) -> list[list[float]]:
    counts = Counter(texts)
    title = title.casefold()
    rows = []
    for text in texts:
        n = len(text)
        words = text.count(" ") + 1
        if not text.isascii() and _UNSPACED.search(text):
            words = max(words, len(_UNSPACED.findall(text)) // 2)
        rows.append([
            n, words, 0.0, len(_SENTENCE_END.findall(text)),
            text.count(",") + text.count("،") + text.count("，") + text.count("、"),
            float(text[-1] in ".!?。؟\"”'’)"),
            len(_DIGITS.findall(text)) / words,
            text.count("|") + text.count("•") + text.count("·") + text.count("»"),
            float("©" in text or "copyright" in text.casefold()),
            counts[text], float(bool(title) and text.casefold() == title),
            float(text[0].isupper()), float(text[-1] == ":"),
        ])
    return rows


def _bits(values: list[int], width: int) -> Matrix:
    array = np.asarray(values, dtype=np.int64)[:, None]
    return ((array >> np.arange(width)) & 1).astype(np.float32)


def _container_levels(blocks: Blocks) -> npt.NDArray[np.int64]:
    """For each block, its owner and the owner's block ancestors, -1 past the top."""
    parent = np.asarray(blocks.parent + [-1], dtype=np.int64)  # index -1 maps to -1
    levels = [np.asarray(blocks.owner, dtype=np.int64)]
    for _ in range(_LEVELS - 1):
        levels.append(parent[levels[-1]])
    return np.stack(levels, axis=1)


def _scores(blocks: Blocks, chars: Matrix, links: Matrix) -> npt.NDArray[np.float64]:
    """Readability's paragraph scores, summed per container: each paragraph of 25
    characters or more adds 1 + its commas + up to 3 for its length to the container that
    holds it, half that to the next one up."""
    parent = blocks.parent
    score = np.zeros(len(blocks.elements) + 1)
    for i, text in enumerate(blocks.texts):
        n = chars[i]
        if n < _MIN_SCORED or links[i] > n * 0.5:
            continue
        owner = blocks.owner[i]
        if blocks.elements[owner].tag in TEXT_TAGS:
            owner = parent[owner]
        value = 1 + text.count(",") + text.count("،") + min(n / 100, 3)
        score[owner] += value
        if parent[owner] >= 0:
            score[parent[owner]] += value / 2
    return score[:-1]


def matrix(blocks: Blocks, title: str, headline: str, kinds: list[float],
           ends: list[bool]) -> Matrix:
    """The feature rows of `blocks` (NAMES), for a page titled `title` whose `<h1>` reads
    `headline`, of the `page_kinds` given; `ends` tells the blocks that are headings of
    what comes after an article."""
    n = len(blocks.texts)
    if not n:
        return np.zeros((0, len(NAMES)), dtype=np.float32)
    text_rows = np.asarray(_text_columns(blocks.texts, headline or title), dtype=np.float32)
    chars = text_rows[:, 0].copy()
    links = np.asarray(blocks.links, dtype=np.float32)
    text_rows[:, 2] = links / chars
    cum_chars = np.concatenate([[0.0], np.cumsum(chars)])
    cum_links = np.concatenate([[0.0], np.cumsum(links)])
    textual = np.asarray([blocks.elements[o].tag in TEXT_TAGS for o in blocks.owner])
    cum_textual = np.concatenate([[0], np.cumsum(textual)])
    page = float(cum_chars[-1])
    start = np.asarray(blocks.start + [0], dtype=np.int64)
    end = np.asarray(blocks.end + [0], dtype=np.int64)

    levels = _container_levels(blocks)
    container_cols = []
    for level in range(_LEVELS):
        c = levels[:, level]
        c_chars = cum_chars[end[c]] - cum_chars[start[c]]
        c_links = cum_links[end[c]] - cum_links[start[c]]
        container_cols += [np.log1p(c_chars), c_links / np.maximum(c_chars, 1),
                           np.log1p(end[c] - start[c]), c_chars / max(page, 1),
                           (cum_textual[end[c]] - cum_textual[start[c]]) / np.maximum(
                               end[c] - start[c], 1)]

    score = _scores(blocks, chars, links)
    all_chars = cum_chars[end[:-1]] - cum_chars[start[:-1]]
    all_links = cum_links[end[:-1]] - cum_links[start[:-1]]
    density = all_links / np.maximum(all_chars, 1)
    best = int(np.argmax(score * (1 - density))) if n else 0
    best_parent = max(blocks.parent[best], 0)
    index = np.arange(n)
    in_best = (index >= start[best]) & (index < end[best])
    in_best_parent = (index >= start[best_parent]) & (index < end[best_parent])

    owner_tag = [blocks.elements[o].tag for o in blocks.owner]
    owner_code = np.asarray([_OWNER_CODE.get(str(t), len(OWNER_TAGS)) for t in owner_tag])
    owner_onehot = (owner_code[:, None] == np.arange(len(OWNER_TAGS))).astype(np.float32)
    h1_blocks = [i for i, t in enumerate(owner_tag) if t == "h1"]
    first_h1 = h1_blocks[0] if h1_blocks else -1
    h1_owner = blocks.owner[first_h1] if h1_blocks else -1
    parent_of = levels[:, 1]
    h1_parent = parent_of[first_h1] if h1_blocks else -2

    log_chars = np.log1p(chars)
    sentence_ends = text_rows[:, 5]
    end_headings = np.asarray(ends, dtype=np.float32)
    owner = np.asarray(blocks.owner)
    columns = [
        np.log1p(text_rows[:, :2]), text_rows[:, 2:3], np.log1p(text_rows[:, 3:5]),
        text_rows[:, 5:9], np.log1p(text_rows[:, 9:10]), text_rows[:, 10:],
        _bits(blocks.tags, len(TAG_BIT)), _bits(blocks.names, len(NAME_GROUPS)),
        _bits(blocks.near, len(NAME_GROUPS)), owner_onehot,
        np.stack([
            np.asarray(blocks.depth, dtype=np.float32), index / max(n, 1),
            cum_chars[:-1] / max(page, 1),
            (index > first_h1) if h1_blocks else np.zeros(n),
            np.clip(index - first_h1, -50, 50) if h1_blocks else np.full(n, -99.0),
            (parent_of == h1_parent) | (owner == h1_owner),
            *container_cols,
            in_best, in_best_parent,
            np.full(n, all_chars[best] / max(page, 1)),
            np.full(n, all_chars[best_parent] / max(page, 1)),
            np.full(n, density[best]),
            np.full(n, np.log1p(page)), np.full(n, np.log1p(n)),
            np.full(n, float(cum_links[-1]) / max(page, 1)),
            _shift(log_chars, 1), _shift(text_rows[:, 2], 1), _shift(owner_code, 1),
            _shift(log_chars, -1), _shift(text_rows[:, 2], -1), _shift(owner_code, -1),
            _shift(sentence_ends, 1), _shift(sentence_ends, -1),
            _shift(owner, 1) == owner, _shift(owner, -1) == owner,
            *(np.full(n, kind) for kind in kinds),
            end_headings, np.minimum(np.cumsum(end_headings) - end_headings, 3),
        ], axis=1),
    ]
    out = np.concatenate([np.asarray(c, dtype=np.float32).reshape(n, -1) for c in columns],
                         axis=1)
    assert out.shape[1] == len(NAMES), (out.shape, len(NAMES))
    return out


def _shift(values: npt.NDArray[np.generic], by: int) -> npt.NDArray[np.float64]:
    """`values` moved `by` places (1: each row sees the previous one), -1 at the ends."""
    out = np.full(len(values), -1.0)
    if by > 0:
        out[by:] = values[:-by]
    else:
        out[:by] = values[-by:]
    return out


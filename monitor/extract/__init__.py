"""Article HTML (or plain text) -> title and clean article text, boilerplate removed.

Rules, in order:
1. Bytes are decoded whatever their charset, and the title, language and date are read
   from the markup, by monitor.page.
2. Never content: scripts, styles, embedded objects, form controls, hidden elements
   (monitor.extract.clean). Notices (`data/boilerplate.yaml`: "Sorry, you need to enable
   JavaScript...", cookie prompts) go with their block, advertisement labels where a block
   is only the label, and "more from" headings ("المزيد من", "Read also") with the list
   of links after them.
3. What is left is cut into blocks, one per paragraph, heading, list item, cell or line
   (monitor.extract.blocks), each described by its text, its tags, its ancestors' class
   names, its place on the page and its surroundings (monitor.extract.features).
4. A forest of decision trees trained on reviewed pages of many sites
   (monitor.extract.model, tools/train_extract.py) keeps the blocks that are article text.
   A page with text where it keeps none falls back to the blocks of the container that
   Readability's paragraph scores pick, so a page with real text is never empty; a page
   that is only a notice, a consent wall or a redirect (a script, or a meta refresh with
   little text) has no article.
5. Text is one line per block. The headline leads the text; `Article.body` is the text
   without the headline.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import numpy.typing as npt

from monitor.extract.blocks import Blocks
from monitor.extract.clean import link_density
from monitor.extract.features import NAMES, Matrix
from monitor.extract.model import Classifier, default_classifier
from monitor.extract.reader import Reading, read
from monitor.extract.rules import Boilerplate, default_boilerplate
from monitor.extract.walls import wall
from monitor.models import Article
from monitor.page import script_language
from monitor.text import fold

__all__ = ["Boilerplate", "assemble", "default_boilerplate", "extract", "extract_text", "wall"]

_IN_BEST = NAMES.index("in_best")
_LINKS = NAMES.index("link_density")
_REDIRECT_MAX_CHARS = 300
# Class names that sites give the summary under the headline: UK "standfirst", Czech
# and Slovak "perex", French "chapo"/"chapeau", US "dek"/"lede".
_STANDFIRST_CLASSES = ("standfirst", "perex", "chapo", "chapeau", "dek", "lede")
_REPEAT_MIN_CHARS = 40  # shorter lines repeat in real text ("Pros", "Step 2")
_REPEAT_MAX_CHARS = 120  # a heading this long is a sentence of the article, not a title


def extract(html: str | bytes, url: str | None = None,
            boilerplate: Boilerplate | None = None) -> Article:
    """The article's title and clean text from a page; an empty text when there is none."""
    reading = read(html, url, boilerplate or default_boilerplate())
    if reading is None:
        return Article(title="", text="")
    return assemble(reading)


def assemble(reading: Reading, classifier: Classifier | None = None) -> Article:
    """The Article of a page's reading: the blocks the classifier keeps, under the
    headline (rules 4 and 5)."""
    classifier = classifier or default_classifier()
    probability = classifier.probability(reading.features)
    lines = kept_lines(reading.blocks, probability >= classifier.cut, reading.features)
    title = reading.title
    if not lines or _is_redirect(reading, lines):
        return Article(title=title, text="", language=reading.language,
                       published=reading.published)
    headline = reading.headline or title
    if fold(lines[0]).strip() in {fold(title).strip(), fold(headline).strip()}:
        headline = lines[0]  # the article's own first block is the headline
    elif headline:
        lines.insert(0, headline)
    lead = _standfirst(reading.blocks)
    if lead and headline and " ".join(fold(lead).split()) not in " ".join(
            fold(" ".join(lines)).split()):
        lines.insert(1, lead)
    text = "\n".join(lines)
    return Article(title=title or lines[0], text=text,
                   language=reading.language or script_language(text),
                   published=reading.published, headline=headline)


def kept_lines(blocks: Blocks, keep: npt.NDArray[np.bool_], features: Matrix) -> list[str]:
    """The kept blocks' texts. A paragraph printed twice in two places (a page's mobile
    and desktop layouts) is read once; a pager's numbers and labels repeated three
    times or more (a gallery's) are dropped. Where none is kept, the blocks of the
    container that Readability's paragraph scores pick (rule 4)."""
    texts = blocks.texts
    if texts and not keep.any():
        keep = (features[:, _IN_BEST] > 0) & (features[:, _LINKS] < 0.5)
    keep = _whole_tables(blocks, keep)
    seen: dict[str, int] = {}
    lines = []
    for i in np.flatnonzero(keep).tolist():
        text, place = texts[i], blocks.parent[blocks.owner[i]]
        if seen.get(text, place) != place:
            continue
        lines.append(text)
        if len(text) >= _REPEAT_MIN_CHARS:
            seen.setdefault(text, place)
    return _drop_repeats(_drop_pagers(lines))


_TABLE_MAX_LINKS = 0.3


def _whole_tables(blocks: Blocks, keep: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """A table of data is read whole or not at all: a table with few links that follows
    kept text, or of which some cells are kept, keeps all its cells (a ranking's numbers
    and names are short cells that the classifier, reading each alone, takes for a
    widget's). A table of tables is a page's layout, and is left to the classifier."""
    tables = [c for c, el in enumerate(blocks.elements) if el.tag == "table"
              and blocks.end[c] > blocks.start[c] and el.find(".//table") is None]
    if not tables:
        return keep
    keep = keep.copy()
    for c in tables:
        start, end = blocks.start[c], blocks.end[c]
        if keep[start:end].all() or not (keep[start:end].any()
                                         or start > 0 and keep[start - 1]):
            continue
        chars = sum(len(t) for t in blocks.texts[start:end])
        if sum(blocks.links[start:end]) <= chars * _TABLE_MAX_LINKS:
            keep[start:end] = True
    return keep


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


def _standfirst(blocks: Blocks) -> str:
    """The summary under the headline where the site names it plainly by its class (a
    block element's: the walk that cut the blocks has them in page order)."""
    for el in blocks.elements:
        classes = el.get("class")
        if not classes or not any(c in classes for c in _STANDFIRST_CLASSES) or not any(
                c in classes.split() or f"__{c}" in classes or f"-{c}" in classes
                for c in _STANDFIRST_CLASSES):
            continue
        text = " ".join(el.text_content().split())
        if 40 <= len(text) <= 800 and link_density(el) < 0.3:
            return text
    return ""


def _is_redirect(reading: Reading, lines: list[str]) -> bool:
    """A page that sends the reader elsewhere with a meta refresh and says little itself."""
    return reading.refresh and sum(map(len, lines)) < _REDIRECT_MAX_CHARS


def extract_text(text: str, boilerplate: Boilerplate | None = None) -> Article:
    """The same cleaning for plain text: notice, label and "more from" lines are dropped."""
    rules = boilerplate or default_boilerplate()
    kept = []
    for line in text.splitlines():
        line = " ".join(line.split())
        folded = fold(line).strip()
        if folded and not (rules.is_notice(folded) or rules.is_label(folded)
                           or rules.is_more_from(folded)):
            kept.append(line)
    body = "\n".join(kept)
    return Article(title=kept[0] if kept else "", text=body, language=script_language(body))


"""Items of one feed are not merged as one story on the text the feed repeats in them (its
template) or on a likeness two feeds' copies would show (monitor.dedup rules 4 and 5)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from monitor import dedup
from monitor.feeds import parse_feed
from monitor.models import Item
from tests import made_feeds

FEEDS = Path(__file__).resolve().parent / "data" / "feeds"
DAY = 20_000  # days since the epoch


def items_of(doc: bytes) -> list[Item]:
    return list(parse_feed(doc, "f", "f", "https://example.org/").items)


def template_of(items: list[Item], today: int = DAY) -> dedup.Template:
    return dedup.EMPTY_TEMPLATE.learn([dedup.shingles(i.summary) for i in items], today)


def containments(items: list[Item], template: dedup.Template | None) -> list[float]:
    sigs = [s for s in (dedup.signature(i.summary, template) for i in items) if s is not None]
    return [dedup.similarity(a, b) for a, b in itertools.combinations(sigs, 2)]


@pytest.mark.parametrize(("doc", "before"), [
    (made_feeds.podcast_with_sponsors(), 0.7),  # notes mostly one sponsor list
    (made_feeds.comparison_teasers(), 0.6),  # "X vs. Elasticsearch", "X vs. Graphite"
    (made_feeds.leaked_widget(), 0.9),  # mostly a widget's leaked script
])
def test_a_feeds_template_is_no_evidence(doc: bytes, before: float) -> None:
    items = items_of(doc)
    alike = containments(items, None)
    assert np.median(alike) >= before  # one story, to the signatures of before
    template = template_of(items)
    assert len(template.excluded) > 50
    assert all(c < 0.3 for c in containments(items, template))


def test_the_template_is_what_the_items_repeat_not_what_each_says() -> None:
    items = items_of(made_feeds.podcast_with_sponsors())
    template = template_of(items)
    sponsors = dedup.shingles(made_feeds.SPONSORS)
    assert np.isin(sponsors, template.excluded).mean() > 0.9
    own = np.setdiff1d(dedup.shingles(items[0].summary), sponsors)
    assert np.isin(own, template.excluded).mean() < 0.1
    # Two items telling one story are no template: copies must still be found.
    twice = dedup.EMPTY_TEMPLATE.learn([sponsors, sponsors], DAY)
    assert len(twice.excluded) == 0


def test_a_text_that_is_mostly_template_gets_no_signature() -> None:
    items = items_of(made_feeds.leaked_widget())
    template = template_of(items)
    assert all(dedup.signature(i.summary) is not None for i in items)
    assert all(dedup.signature(i.summary, template) is None for i in items)


def test_the_template_lasts_while_items_show_it() -> None:
    items = items_of(made_feeds.podcast_with_sponsors())
    template = template_of(items)
    sponsors = dedup.shingles(made_feeds.SPONSORS)
    later = DAY + dedup.TEMPLATE_DAYS + 1
    # A poll of one new episode, a month on, with the sponsor list: kept, and dated then.
    shown = template.learn([dedup.shingles(items[0].summary)], later)
    assert np.isin(sponsors, shown.excluded).mean() > 0.9
    assert set(shown.days[np.isin(shown.excluded, sponsors)]) == {later}
    # Without it: what no item showed for TEMPLATE_DAYS is gone.
    other = dedup.shingles(items_of(made_feeds.comparison_teasers())[0].summary)
    assert not np.isin(sponsors, template.learn([other], later).excluded).any()
    assert template.learn([other], DAY + 1).excluded.size == template.excluded.size


def test_the_template_is_kept_compact() -> None:
    many = [np.arange(i * 100, i * 100 + 3000, dtype=np.uint32) for i in range(3)]
    template = dedup.EMPTY_TEMPLATE.learn(many, DAY)
    assert len(template.excluded) == dedup.TEMPLATE_MAX
    again = dedup.Template.from_text(template.to_text())
    assert again == template and len(template.to_text()) <= 8 * dedup.TEMPLATE_MAX
    assert dedup.Template.from_text("not base64 at all!") == dedup.EMPTY_TEMPLATE
    assert dedup.Template.from_text("AAAA") == dedup.EMPTY_TEMPLATE


@pytest.mark.parametrize(("name", "titles"), [
    # Two posts of one series whose summaries are its standing intro, word for word.
    ("feedjira__FeedBurnerXHTML.xml", ("RotoAuthority League Update: The Early Leader",
                                       "RotoAuthority League Update: Early Trades")),
    # One quote posted twice, as two numbered items.
    ("miniflux__encoding_WINDOWS-1251.xml", ("Цитата #17703", "Цитата #17715")),
])
def test_distinct_items_of_one_feed_with_one_text_stay_apart(name: str,
                                                               titles: tuple[str, str]) -> None:
    items = items_of((FEEDS / name).read_bytes())
    a, b = (next(i for i in items if i.title == t) for t in titles)
    sig_a, sig_b = dedup.signature(a.summary), dedup.signature(b.summary)
    assert sig_a is not None and sig_b is not None
    assert dedup.similarity(sig_a, sig_b) >= 0.95  # two feeds' copies, to containment
    assert not dedup.same_feed_story(a.title, b.title, sig_a, sig_b, same_url=False)
    assert dedup.same_feed_story(a.title, a.title, sig_a, sig_a, same_url=False)  # relisted


def test_one_page_of_one_feed_is_one_story_while_its_title_holds() -> None:
    # Republished under a new GUID, its headline reworded as the story develops.
    assert dedup.same_feed_story("Haftar forces enter Sirte",
                                 "Haftar forces enter Sirte, residents flee", None, None,
                                 same_url=True)
    # A podcast that links every episode to its home page.
    assert not dedup.same_feed_story("Taverncast 62 - Temporal Anomaly",
                                     "Taverncast 61 - Life in the Middle Ages", None, None,
                                     same_url=True)

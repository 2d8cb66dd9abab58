"""The README front page stays short and links every page of docs/; no relative link in them is broken."""
import glob
import os
import re

import pytest

from conftest import ROOT

PAGES = ["README.md"] + sorted(os.path.relpath(page, ROOT) for page in glob.glob(os.path.join(ROOT, "docs", "*.md")))


def read(page):
    with open(os.path.join(ROOT, page)) as f:
        return f.read()


def links(page):
    """Relative link targets of a markdown page (web addresses left out)."""
    return [target for target in re.findall(r"\]\(([^)\s]+)\)", read(page)) if not re.match(r"[a-z]+:", target)]


def anchors(page):
    """GitHub's anchors of a page's headings."""
    return {re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
            for line in read(page).splitlines() if line.startswith("#")}


def test_front_page_is_short_and_links_every_page_of_docs():
    assert len(read("README.md")) <= 10_000
    assert {os.path.normpath(target.split("#")[0]) for target in links("README.md")} >= set(PAGES[1:])


@pytest.mark.parametrize("page", PAGES)
def test_relative_links_point_to_what_exists(page):
    for target in links(page):
        path, _, anchor = target.partition("#")
        path = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
        assert os.path.exists(os.path.join(ROOT, path)), f"{page}: {target}"
        if anchor:
            assert anchor in anchors(path), f"{page}: {target}"

"""README is an owner's guide whose quick start fits on one screen; the reference material in
docs/ is reachable from it, and no link in either points nowhere (a file or a heading)."""

from __future__ import annotations

import re
from pathlib import Path

from cogs.help import README_SECTIONS

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
# What fits on one screen of a laptop's terminal or browser.
ONE_SCREEN = 40


def headings(page: Path) -> list[str]:
    """The page's headings, outside code blocks."""
    found, fenced = [], False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            found.append(line.lstrip("#").strip())
    return found


def anchors(page: Path) -> set[str]:
    """GitHub's anchors for the page's headings (lower case, punctuation dropped, spaces to
    hyphens, repeats numbered)."""
    seen: dict[str, int] = {}
    result = set()
    for heading in headings(page):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return result


def test_every_relative_link_reaches_a_file_and_heading() -> None:
    broken = []
    for page in PAGES:
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            path, _, anchor = target.partition("#")
            where = (page.parent / path).resolve() if path else page
            if not where.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and where.suffix == ".md" and anchor not in anchors(where):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_every_document_is_reachable_from_readme() -> None:
    linked = {
        (ROOT / target.partition("#")[0]).resolve()
        for target in LINK.findall((ROOT / "README.md").read_text())
    }
    for page in PAGES[1:]:
        assert page.resolve() in linked, f"README does not link {page.relative_to(ROOT)}"


def test_the_quick_start_fits_on_one_screen_and_says_billing_is_needed() -> None:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    assert len(section.strip().splitlines()) <= ONE_SCREEN
    assert "make run" in section and "make test" in section
    assert "billing" in section.lower()


def test_help_links_readme_sections_that_exist() -> None:
    """/help links these README headings (with DOCS_URL)."""
    present = anchors(ROOT / "README.md")
    assert {anchor for _, anchor in README_SECTIONS} <= present

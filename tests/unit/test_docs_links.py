"""The documentation holds together: every relative link of README.md and docs/*.md leads to a
file of the repository and, with an anchor, to a heading of that file (GitHub's slugs); the
five topic pages open with a Contents list and the README links to each; and no tracked file
points outside the repository or to a tracker's issue numbers."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TOPICS = ("operations", "restore", "copies", "immutability", "simulator")

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)


def prose(text: str) -> str:
    """The text a reader sees as markdown: fenced blocks and code spans are not links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's heading anchor: lowercase, punctuation other than - and _ dropped, spaces to -."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading's anchor; a repeated heading gets -1, -2... as GitHub numbers them."""
    seen: Counter[str] = Counter()
    found = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text())):
        base = slug(heading)
        found.add(base if seen[base] == 0 else f"{base}-{seen[base]}")
        seen[base] += 1
    return found


def relative_links(page: Path) -> list[str]:
    return [t for t in LINK.findall(prose(page.read_text())) if not re.match(r"[a-z][a-z0-9+.-]*:", t, re.I)]


def broken(page: Path, root: Path = ROOT) -> list[str]:
    """What a link of the page misses: the file (inside root) or the heading its anchor names."""
    problems = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.is_relative_to(root.resolve()):
            problems.append(f"{target}: outside the repository")
        elif not file.exists():
            problems.append(f"{target}: no such file")
        elif anchor and (file.suffix != ".md" or anchor not in anchors(file)):
            problems.append(f"{target}: no heading #{anchor} in {file.name}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_of_a_page_leads_to_a_file_and_heading_that_exist(page):
    assert broken(page) == []


def test_the_slug_rule_is_githubs_with_numbered_duplicates(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Off-site copies\n## The `smart-vault` command\n## Alarms\n## Alarms\n## Alarms\n")
    assert anchors(page) == {"off-site-copies", "the-smart-vault-command", "alarms", "alarms-1", "alarms-2"}
    assert slug("Retention per instance, and what it costs") == "retention-per-instance-and-what-it-costs"
    assert slug("Immutability: snapshot_lock & Recycle Bin") == "immutability-snapshot_lock--recycle-bin"


def test_a_missing_file_or_heading_is_reported_and_code_and_external_links_are_not_checked(tmp_path):
    (tmp_path / "other.md").write_text("# Other\n\n## Known heading\n")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n[ok](other.md#known-heading) [ok](#page) [web](https://example.com/x#y)\n"
        "[gone](missing.md) [bad](other.md#unknown) [self](#nowhere)\n"
        "`[code](missing-in-code.md)`\n\n```\n[fenced](missing-in-fence.md)\n```\n[out](../outside.md)\n"
    )
    (tmp_path.parent / "outside.md").write_text("# Outside the repository\n")
    assert broken(page, root=tmp_path) == [
        "missing.md: no such file",
        "other.md#unknown: no heading #unknown in other.md",
        "#nowhere: no heading #nowhere in page.md",
        "../outside.md: outside the repository",
    ]


@pytest.mark.parametrize("topic", TOPICS)
def test_each_topic_page_opens_with_its_purpose_and_a_contents_list_of_its_own_sections(topic):
    page = ROOT / "docs" / f"{topic}.md"
    lines = page.read_text().split("\n")
    assert lines[0].startswith("# ") and lines[1] == ""
    assert lines[2].strip() and not lines[2].startswith(("#", "-", "**Contents**")), "a one-line purpose"
    contents = lines.index("**Contents**")
    assert contents <= 6, "the Contents list comes right after the purpose"
    entries = []
    for line in lines[contents + 2 :]:
        if not line.lstrip().startswith("- ["):
            break
        entries.append(line)
    links = [m.group(1) for e in entries if (m := LINK.search(e))]
    assert len(links) == len(entries) >= 2
    assert all(link.startswith("#") for link in links), "Contents links to its own sections"
    assert {link[1:] for link in links} <= anchors(page)


def test_the_readme_links_to_every_topic_page():
    targets = {t.partition("#")[0] for t in relative_links(ROOT / "README.md")}
    assert {f"docs/{topic}.md" for topic in TOPICS} <= targets


def tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [
        ROOT / name
        for name in names.splitlines()
        if name.endswith((".py", ".md", ".json")) or Path(name).name == "Makefile"
    ]


# A path into a specification outside the repository, or an issue number of a tracker; the
# pattern is spelt in two parts so that this file does not match itself.
OUTSIDE = re.compile("shared" r"/spec|\bissues? \d", re.I)


def test_no_tracked_file_points_outside_the_repository_or_to_issue_numbers():
    files = [f for f in tracked_text_files() if f.exists()]
    assert len(files) > 100
    hits = [
        f"{f.relative_to(ROOT)}:{n}: {line.strip()}"
        for f in files
        for n, line in enumerate(f.read_text(errors="replace").split("\n"), 1)
        if OUTSIDE.search(line)
    ]
    assert hits == []


def test_the_check_catches_issue_numbers_and_the_outside_specification_but_not_plain_words():
    # Built from parts, as above, so that this file does not match itself.
    issue, spec = "issue", "/".join(("shared", "spec"))
    for text in (f"({issue} 9)", f"{issue} 20.5", f"{issue.title()}s 3 and 4", f"{spec}/simulation.md"):
        assert OUTSIDE.search(text), text
    for text in (f"no {issue} numbers", f"t{issue} 4", "the spec"):
        assert not OUTSIDE.search(text), text

"""The README is the front door: it stays small and every link in it, in its Chinese twin, in docs/ and in the
lab notes resolves. A relative link must name a file or folder of the repository and its #anchor a heading
there, slugged as GitHub slugs them; http(s) links are checked for form only, since the tests run offline."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
# The pages issue 27 asked for; the README's table of contents points at each.
DOCS_PAGES = ("using", "safety", "admin", "cli", "http-api", "deploy", "scale-out", "configuration",
              "performance", "architecture")
README_LIMIT = 10_240

FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
AUTOLINK = re.compile(r"<((?:https?|mailto):[^>\s]+)>")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$")
HTML_ANCHOR = re.compile(r"<a\s[^>]*(?:name|id)=\"([^\"]+)\"")


def documents(root: Path = ROOT) -> list[Path]:
    return [root / "README.md", root / "README.zh-CN.md", *sorted((root / "docs").glob("*.md")),
            *sorted((root / "bench" / "results").glob("*.md"))]


def prose(text: str) -> list[str]:
    """The lines outside fenced code blocks, with inline code removed: what GitHub renders as links."""
    lines, fenced = [], None
    for line in text.splitlines():
        fence = FENCE.match(line)
        if fence and fenced is None:
            fenced = fence.group(1)
        elif fence and fence.group(1) == fenced:
            fenced = None
        elif fenced is None:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its rendered text, lower case, without punctuation (what is not a
    letter, mark, digit, `_`, `-` or space), spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link shows its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "").strip().lower()
    kept = (ch for ch in text if ch in "-_ " or unicodedata.category(ch)[0] in "LM" or unicodedata.category(ch) == "Nd")
    return "".join(kept).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor a page has; a repeated heading's slug gets -1, -2, ... as on GitHub."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in prose(text):
        found.update(HTML_ANCHOR.findall(line))
        heading = HEADING.match(line)
        if heading:
            base = slug(heading.group(2))
            found.add(f"{base}-{seen[base]}" if base in seen else base)
            seen[base] = seen.get(base, 0) + 1
    return found


def links(text: str) -> list[str]:
    targets = []
    for line in prose(text):
        line = CODE_SPAN.sub("", line)
        targets += INLINE_LINK.findall(line) + AUTOLINK.findall(line)
        reference = REFERENCE.match(line)
        if reference:
            targets.append(reference.group(1))
    return targets


def problem(page: Path, target: str, root: Path = ROOT) -> str | None:
    """Why `target`, linked from `page`, doesn't resolve; None when it does."""
    parts = urlsplit(target)
    if parts.scheme in ("http", "https"):
        host = parts.hostname or ""
        if "." not in host and host != "localhost" or re.search(r"\s", target):
            return f"malformed URL {target!r}"
        return None
    if parts.scheme == "mailto":
        return None if "@" in parts.path else f"malformed address {target!r}"
    if parts.scheme or parts.netloc:
        return f"unexpected link {target!r}"
    path = unquote(parts.path)
    if not path and not parts.fragment:
        return "empty link"
    resolved = ((root / path.lstrip("/")) if path.startswith("/") else (page.parent / path)).resolve() if path else page
    if not resolved.is_relative_to(root.resolve()):
        return f"{target!r} leaves the repository"
    if not resolved.exists():
        return f"{target!r}: no such file"
    fragment = unquote(parts.fragment)
    if not fragment:
        return None
    if resolved.suffix == ".md":
        return None if fragment in anchors(resolved.read_text()) else f"{target!r}: no heading #{fragment} there"
    if resolved.is_file() and re.fullmatch(r"L\d+(-L\d+)?", fragment):  # GitHub's line anchors in a file
        return None
    return f"{target!r}: #{fragment} is no anchor of a {resolved.suffix or 'folder'}"


def problems(root: Path = ROOT) -> list[str]:
    found = []
    for page in documents(root):
        for target in links(page.read_text()):
            why = problem(page, target, root)
            if why:
                found.append(f"{page.relative_to(root)}: {why}")
    return found


def test_every_link_in_the_readmes_and_docs_resolves():
    assert problems() == []


def test_the_readme_stays_under_10_kb():
    size = len((ROOT / "README.md").read_bytes())
    assert size < README_LIMIT, f"README.md is {size:,} bytes: move detail into docs/"


def test_both_readmes_link_every_docs_page():
    pages = {path.stem for path in (ROOT / "docs").glob("*.md")}
    assert set(DOCS_PAGES) <= pages
    for readme in ("README.md", "README.zh-CN.md"):
        linked = {Path(urlsplit(target).path).stem for target in links((ROOT / readme).read_text())
                  if urlsplit(target).path.startswith("docs/")}
        assert pages - linked == set(), f"{readme} doesn't link these docs pages"


def test_the_checker_finds_broken_links_and_ignores_code(tmp_path: Path):
    # A hostile little repository: one good link of each kind, and one broken link of each kind.
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text(
        "# Page\n\n## Set up: `ZBOT_SAFETY` & the 1024² size, 画图\n\n## Again\n\n## Again\n\n"
        "```sh\n# not a heading\n[in a fence](missing.md)\n```\n")
    (tmp_path / "README.zh-CN.md").write_text("[back](README.md#zbot)\n")
    (tmp_path / "README.md").write_text(
        "# zbot\n\n"
        "[ok](docs/page.md#set-up-zbot_safety--the-1024-size-画图) [dup](docs/page.md#again-1) "
        "[folder](docs/) [here](#zbot) [web](https://example.com/x?y=1) <https://discord.com/developers>\n"
        "`[code](missing.md)` and [ref]\n\n"
        "[gone](docs/nope.md) [no heading](docs/page.md#again-2) [fence heading](docs/page.md#not-a-heading)\n"
        "[bad web](https://) [typo](htps//example.com) [out](../../etc/passwd) [folder anchor](docs/#x)\n\n"
        "[ref]: docs/also-gone.md\n")
    assert problems(tmp_path) == [
        "README.md: 'docs/nope.md': no such file",
        "README.md: 'docs/page.md#again-2': no heading #again-2 there",
        "README.md: 'docs/page.md#not-a-heading': no heading #not-a-heading there",
        "README.md: malformed URL 'https://'",
        "README.md: 'htps//example.com': no such file",
        "README.md: '../../etc/passwd' leaves the repository",
        "README.md: 'docs/#x': #x is no anchor of a folder",
        "README.md: 'docs/also-gone.md': no such file",
    ]

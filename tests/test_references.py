"""Every reference resolves inside the repository.

A reference in the code, the tests, the tutorials, the benchmarks or the docs is one of:

* a docs page, ``docs/<page>.md`` or ``docs/<page>.md#anchor`` (a markdown link on a page), whose
  file and heading exist;
* a source tag, ``[ARL] path::function``, defined with its pinned commit on ``docs/references.md``;
* a paper, ``[GSPO paper, Eq. 5]`` or ``arXiv 2507.18071``, listed on ``docs/references.md``;
* an equation tag (S1)…(S21) that a docs page shows as ``\\tag{S…}``.

Nothing may cite a file the repository does not ship, nor a section number (``§``) of anything
but a paper.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import yaml
from markdown.extensions.toc import slugify

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
REFERENCES = DOCS / "references.md"
SCANNED = ["sampo_ref", "toy_envs", "tests", "tutorials", "benchmarks", "docs"]
SUFFIXES = {".py", ".md", ".js", ".yml", ".toml"}
IGNORED = {"tex-mml-svg.js", "iframe-worker-shim.js"}  # vendored into docs/javascripts by the docs build (.gitignore)

# the project's background notes are not shipped: nothing may point at them (letters split so
# that this file does not match its own pattern)
UNSHIPPED = re.compile(r"\b(?:S[P]EC|D[E]SIGN|S[T]YLE)\b")
SECTION = re.compile(r"§\s*\d")
PAPER_SECTION = re.compile(r"(?:arXiv \d{4}\.\d{4,5}(?:v\d+)?|\[Background) $")  # "arXiv 2503.14476 §3.2"
DOCS_PATH = re.compile(r"(?<![\w/.])docs/((?:[\w-]+/)*[\w-]+\.md)(?:#([\w-]+))?")
MD_LINK = re.compile(r"\]\((?!https?:|mailto:)([^)\s#]*\.md)?(?:#([^)\s]+))?\)")
TAG = re.compile(r"(?<![\w\]=])\[([A-Z]{2,}(?:-[a-z]+)?|verl)\](?![(,]| \[)")  # not a link, a list, a usage line
PAPER = re.compile(r"\[([\w. -]+?) paper, ")
ARXIV = re.compile(r"arXiv:? ?(\d{4}\.\d{4,5})")
EQ_TAG = re.compile(r"\((S\d+)\)|\(S\d+[–-]S\d+\)|\bEq\. \(?(S\d+)\)?")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*$", re.M)
EXPLICIT_ID = re.compile(r"""\{[^}]*#([\w-]+)[^}]*\}|\bid=["']([\w-]+)["']""")


def scanned_files() -> list[Path]:
    """The repository's own text files (git ignores what the build vendors, such as MathJax)."""
    files = [ROOT / "README.md"]
    for top in SCANNED:
        files += [p for p in sorted((ROOT / top).rglob("*")) if p.suffix in SUFFIXES and p.is_file()
                  and "__pycache__" not in p.parts and p.name not in IGNORED]
    return files


@functools.cache
def anchors(page: Path) -> set[str]:
    """The ids mkdocs gives the headings of ``page`` (Python-Markdown's toc slugs), plus explicit ids."""
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)  # no headings inside code blocks
    ids: set[str] = set()
    for title in HEADING.findall(text):
        explicit = EXPLICIT_ID.search(title)
        if explicit:
            ids.add(explicit.group(1))
            continue
        plain = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title).replace("`", "").replace("*", "")
        slug, n = slugify(plain, "-"), 1
        while slug in ids:  # toc numbers repeated titles
            slug = f"{slugify(plain, '-')}_{n}"
            n += 1
        ids.add(slug)
    ids |= {a or b for a, b in EXPLICIT_ID.findall(text)}
    return ids


@functools.cache
def defined_sources() -> tuple[set[str], set[str], set[str]]:
    """(source tags, paper names, arXiv ids) defined on docs/references.md."""
    text = REFERENCES.read_text()
    tags, papers, arxiv = set(), set(), set()
    for row in re.findall(r"^\|(.*)\|\s*$", text, re.M):
        cells = [c.strip() for c in row.split("|")]
        tag = re.fullmatch(r"\[([\w-]+)\]", cells[0])
        if tag and re.search(r"`[0-9a-f]{7,40}`", cells[2]):
            tags.add(tag.group(1))
        paper = re.fullmatch(r"(.+) paper", cells[0])
        if paper and re.fullmatch(r"\d{4}\.\d{4,5}", cells[-1]):
            papers.add(paper.group(1))
            arxiv.add(cells[-1])
    return tags, papers, arxiv


@functools.cache
def equation_tags_shown() -> set[str]:
    return {t for p in DOCS.rglob("*.md") for t in re.findall(r"\\tag\{(S\d+)\}", p.read_text())}


def unresolved(text: str, origin: Path) -> list[str]:
    """Every reference in ``text`` (read from ``origin``) that does not resolve, one line each."""
    tags, papers, arxiv = defined_sources()
    shown = equation_tags_shown()
    problems = []
    for m in UNSHIPPED.finditer(text):
        problems.append(f"cites {m.group(0)!r}, a file the repository does not ship")
    for m in SECTION.finditer(text):
        if not PAPER_SECTION.search(text[max(0, m.start() - 40):m.start()]):
            problems.append(f"section number {text[m.start():m.start() + 6]!r} of no paper")
    targets = [(DOCS / page, anchor) for page, anchor in DOCS_PATH.findall(text)]
    if origin.suffix == ".md":
        targets += [((origin.parent / page) if page else origin, anchor) for page, anchor in MD_LINK.findall(text)]
    for page, anchor in targets:
        page = page.resolve()
        if not page.is_file():
            problems.append(f"links to a missing page {page.relative_to(ROOT)}")
        elif anchor and anchor not in anchors(page):
            problems.append(f"links to a missing anchor {page.relative_to(ROOT)}#{anchor}")
    problems += [f"uses the source tag [{t}], which docs/references.md does not define"
                 for t in TAG.findall(text) if t not in tags]
    problems += [f"cites the {p} paper, which docs/references.md does not list"
                 for p in PAPER.findall(text) if p not in papers]
    problems += [f"cites arXiv {a}, which docs/references.md does not list" for a in ARXIV.findall(text) if a not in arxiv]
    cited = {t for pair in EQ_TAG.findall(text) for t in pair if t}
    problems += [f"cites equation ({t}), which no docs page shows" for t in sorted(cited - shown)]
    return problems


def test_every_reference_resolves():
    files = scanned_files()
    assert len(files) > 100, f"only {len(files)} files scanned: the walk is wrong"
    bad = {str(p.relative_to(ROOT)): probs for p in files if p != Path(__file__)
           for probs in [unresolved(p.read_text(), p)] if probs}
    assert not bad, "references that do not resolve:\n" + "\n".join(f"{f}: {p}" for f, ps in bad.items() for p in ps)


def test_the_checker_catches_each_kind_of_bad_reference():
    origin = DOCS / "algorithms" / "grpo.md"
    good = ("[ARL] core_algos.py, [EMPG paper, Eq. 10], arXiv 2507.18071 §2, Eq. (S2), "
            "docs/algorithms/gspo.md#key-equations, [GSPO](gspo.md#key-equations), [Metrics](../metrics.md)")
    assert unresolved(good, origin) == []
    bad = {
        "S" + "PEC §4.2": ["does not ship", "section number"],
        "see §3": ["section number"],
        "docs/nope.md": ["missing page"],
        "docs/algorithms/gspo.md#no-such-heading": ["missing anchor"],
        "[GSPO](gspo.md#no-such-heading)": ["missing anchor"],
        "[ARLX] a.py": ["source tag [ARLX]"],
        "[Foo paper, Eq. 3]": ["Foo paper"],
        "arXiv 1234.56789": ["arXiv 1234.56789"],
        "Eq. (S99)": ["(S99)"],
    }
    for text, expected in bad.items():
        found = unresolved(text, origin)
        assert len(found) == len(expected) and all(e in f for e, f in zip(expected, found)), (text, found)


def test_the_references_page_defines_every_source_and_is_in_the_nav():
    tags, papers, arxiv = defined_sources()
    assert {"ARL", "ARL-dev", "VA", "verl", "TRL", "AW", "TW"} <= tags
    assert {"ARLArena", "GRPO", "GSPO", "GiGPO", "EMPG", "DAPO", "SAPO", "soft SAPO", "CISPO"} <= papers
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]
    assert "references.md" in str(nav), "docs/references.md is not in the mkdocs nav"

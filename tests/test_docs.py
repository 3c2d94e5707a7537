"""The docs site: it builds with --strict, renders math offline, and cannot drift from the code.

* every equation tag ``\\tag{S…}`` on a docs page is declared by at least one test that checks it
  numerically, with the marker ``@pytest.mark.equation("S…")``;
* every code block on a page is a named snippet section of the source (``file.py:section``, never
  line numbers), and the section exists; a missing one also stops the strict build;
* the built HTML loads MathJax from the site itself and nothing from a CDN;
* every formula on the built pages renders: MathJax itself (node + the vendored package) turns
  each into MathML with no error, no undefined macro and no raw backslash in its text;
* the site works opened from disk (``file://``): links point at ``.html`` files that exist, the
  search index is inlined into a script, and every figure opens full size;
* the pages and the README speak only of the project, never of how it was made.
"""

from __future__ import annotations

import ast
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TAG = re.compile(r"\\tag\{([^}]*)\}")
SNIPPET = re.compile(r"""--8<--\s+["']([^"']+)["']""")
SECTION_REF = re.compile(r"^(?P<path>[^:]+\.py):(?P<section>[a-z][-_0-9a-z]*)$")
MATHJAX = "javascripts/tex-mml-svg.js"


def doc_pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "_hooks" not in p.parts)


def docs_tags() -> dict[str, list[str]]:
    """Equation tag -> the pages that show it."""
    tags: dict[str, list[str]] = {}
    for page in doc_pages():
        for tag in TAG.findall(page.read_text()):
            tags.setdefault(tag, []).append(str(page.relative_to(DOCS)))
    return tags


def _is_equation_marker(node: ast.AST) -> bool:
    """``pytest.mark.equation(...)`` as written in the tests."""
    func = node.func if isinstance(node, ast.Call) else None
    return (isinstance(func, ast.Attribute) and func.attr == "equation"
            and isinstance(func.value, ast.Attribute) and func.value.attr == "mark")


def tags_declared_by_tests() -> dict[str, list[str]]:
    """Equation tag -> the tests whose ``@pytest.mark.equation`` declares it (read from the source)."""
    tags: dict[str, list[str]] = {}
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef):
                continue
            for deco in filter(_is_equation_marker, node.decorator_list):
                for arg in deco.args:
                    tags.setdefault(ast.literal_eval(arg), []).append(f"{path.name}::{node.name}")
    return tags


def test_every_equation_tag_in_the_docs_has_a_test():
    shown, tested = docs_tags(), tags_declared_by_tests()
    assert shown, "no \\tag{…} found in docs/: the pattern or the pages are wrong"
    untested = {tag: pages for tag, pages in shown.items() if tag not in tested}
    assert not untested, f"equation tags shown in the docs with no @pytest.mark.equation test: {untested}"
    malformed = [tag for tag in tested if not re.fullmatch(r"S\d+", tag)]
    assert not malformed, f"equation markers must name equation tags like 'S2', got {malformed}"


def snippet_references() -> list[tuple[str, str]]:
    """(page, reference) for every ``--8<-- "…"`` on a docs page."""
    return [(str(p.relative_to(DOCS)), ref) for p in doc_pages() for ref in SNIPPET.findall(p.read_text())]


def test_every_snippet_is_an_existing_named_section():
    refs = snippet_references()
    assert refs, "no snippet references found in docs/"
    for page, ref in refs:
        match = SECTION_REF.match(ref)
        assert match, f"{page}: snippet {ref!r} must be 'path.py:section' (a named section, never line numbers)"
        source = ROOT / match["path"]
        assert source.is_file(), f"{page}: snippet {ref!r} names a missing file"
        text = source.read_text()
        for end in ("start", "end"):
            assert f"# --8<-- [{end}:{match['section']}]" in text, f"{page}: {source.name} has no [{end}:{match['section']}]"


def snippets_config() -> dict:
    """The pymdownx.snippets settings of mkdocs.yml."""
    yaml = pytest.importorskip("yaml", reason="the docs extra (mkdocs, PyYAML) is not installed")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    for ext in config["markdown_extensions"]:
        if isinstance(ext, dict) and "pymdownx.snippets" in ext:
            return ext["pymdownx.snippets"]
    raise AssertionError("mkdocs.yml does not configure pymdownx.snippets")


def test_a_missing_snippet_section_stops_the_build():
    markdown = pytest.importorskip("markdown", reason="the docs extra (mkdocs) is not installed")
    snippets = pytest.importorskip("pymdownx.snippets", reason="the docs extra (pymdown-extensions) is not installed")
    config = snippets_config()
    assert config["check_paths"] is True
    config = {**config, "base_path": [str(ROOT / p) for p in config["base_path"]]}
    md = markdown.Markdown(extensions=["pymdownx.snippets"], extension_configs={"pymdownx.snippets": config})
    assert "group_stats(scores, group_index)" in md.convert('--8<-- "sampo_ref/algos/grpo.py:grpo_advantages"')
    with pytest.raises(snippets.SnippetMissingError, match="no_such_section"):
        md.convert('--8<-- "sampo_ref/algos/grpo.py:no_such_section"')


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site built with ``mkdocs build --strict`` (which vendors MathJax first: npm, once)."""
    pytest.importorskip("mkdocs", reason="mkdocs is not installed: pip install -e '.[dev]'")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                          "-d", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"mkdocs build --strict failed:\n{run.stdout}\n{run.stderr}"
    return out


@pytest.mark.slow
def test_site_builds_strict_and_serves_its_own_mathjax(site):
    assert (site / MATHJAX).stat().st_size > 1_000_000  # the whole of MathJax, fonts included
    pages = sorted(site.rglob("*.html"))
    with_math = [p for p in pages if 'class="arithmatex"' in p.read_text()]
    assert len(with_math) >= 10, f"only {len(with_math)} pages have math"
    for page in with_math:
        scripts = re.findall(r'<script[^>]*\ssrc="([^"]+)"', page.read_text())
        assert any(s.endswith(MATHJAX) for s in scripts), f"{page.relative_to(site)} does not load {MATHJAX}"
    for page in pages:
        html = page.read_text()
        urls = re.findall(r'<script[^>]*\ssrc="([^"]+)"', html) + re.findall(r'<link[^>]*\shref="([^"]+)"', html)
        remote = [u for u in urls if re.match(r"(https?:)?//", u)]
        assert not remote, f"{page.relative_to(site)} loads from the network: {remote}"


# ------------------------------------------------------------------ the rendered math


MATH = re.compile(r'<(?:span|div) class="arithmatex">(.*?)</(?:span|div)>', re.S)
RENDER = """
const MJ = require(process.argv[2] + "/es5/node-main.js");
const items = JSON.parse(require("fs").readFileSync(0, "utf8"));
MJ.init({loader: {load: ["input/tex"]}}).then((M) => {
  const out = items.map(([page, tex, display]) => [page, tex, M.tex2mml(tex, {display})]);
  process.stdout.write(JSON.stringify(out));
}).catch((err) => { console.error(err.message); process.exit(1); });
"""


def site_formulas(site: Path) -> list[tuple[str, str, bool]]:
    """(page, TeX, display?) for every formula arithmatex left in the built pages."""
    found = []
    for page in sorted(site.rglob("*.html")):
        for body in MATH.findall(page.read_text()):
            tex = html.unescape(body).strip()
            for opening, closing, display in (("\\(", "\\)", False), ("\\[", "\\]", True)):
                if tex.startswith(opening) and tex.endswith(closing):
                    found.append((str(page.relative_to(site)), tex[2:-2], display))
    return found


@pytest.mark.slow
def test_every_formula_renders_without_raw_tex(site, tmp_path):
    """MathJax's own TeX parser on every formula: no error, no undefined macro, no backslash left as text.

    MathJax prints the inside of \\text{…} and \\texttt{…} literally, so ``\\text{mean\\_norm}`` would
    show a backslash on the page; an undefined macro is shown in red.
    """
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the rendered-math check runs MathJax under node")
    sys.path.insert(0, str(DOCS / "_hooks"))
    import vendor

    with tarfile.open(vendor.fetch_tarball(vendor.MATHJAX, vendor.cache_dir())) as tar:
        tar.extractall(tmp_path, filter="data")
    formulas = site_formulas(site)
    assert len(formulas) > 200, f"only {len(formulas)} formulas found in the built site"
    script = tmp_path / "render.js"
    script.write_text(RENDER)
    run = subprocess.run([node, str(script), str(tmp_path / "package")], input=json.dumps(formulas),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    bad = []
    for page, tex, mml in json.loads(run.stdout):
        texts = re.findall(r"<(?:mtext|mi|mo|mn)[^>]*>([^<]*)<", mml)
        if "<merror" in mml or 'mathcolor="red"' in mml or any("\\" in s for s in texts):
            bad.append(f"{page}: {tex[:120]}")
    assert not bad, "formulas that do not render cleanly:\n" + "\n".join(bad)


# ------------------------------------------------------------------ the site opened from disk


@pytest.mark.slow
def test_site_works_from_disk(site):
    """``file://``: every link of every page is a file that exists (no directory URL); search is inlined."""
    broken = []
    for page in sorted(set(site.rglob("*.html")) - {site / "404.html"}):  # 404.html: for a web server only
        text = page.read_text()
        for url in re.findall(r'<a\s[^>]*href="([^"]+)"', text) + re.findall(r'<(?:script|img)\s[^>]*src="([^"]+)"', text):
            if re.match(r"([a-z][a-z0-9+.-]*:|#|//)", url):
                continue
            path = url.split("#")[0].split("?")[0]
            if path.endswith("/") or not (page.parent / path).is_file():
                broken.append(f"{page.relative_to(site)} -> {url}")
    assert not broken, "links that do not open from disk:\n" + "\n".join(broken[:20])
    assert (site / "search" / "search_index.js").read_text().startswith("var __index = "), "search index not inlined"


@pytest.mark.slow
def test_every_figure_opens_full_size(site):
    """Each content image is wrapped in a lightbox link to the image file itself."""
    for page in sorted(site.rglob("*.html")):
        text = page.read_text()
        for img in re.findall(r'<img\s[^>]*src="([^"]+\.png)"', text):
            assert re.search(rf'<a[^>]*class="glightbox"[^>]*href="{re.escape(img)}"', text) or \
                re.search(rf'<a[^>]*href="{re.escape(img)}"[^>]*class="glightbox"', text), \
                f"{page.relative_to(site)}: {img} does not open full size"


# ------------------------------------------------------------------ the pages speak of the project only


MADE_OF = re.compile(r"session|the issue|issue's|lent to|until this version", re.I)


def test_pages_speak_only_of_the_project():
    """No page, README or tutorial text speaks of how the project was made (who wrote it, for which ticket)."""
    texts = doc_pages() + [ROOT / "README.md"] + sorted((ROOT / "tutorials").rglob("*.md")) + \
        sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py"))
    hits = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}" for p in texts
            for n, line in enumerate(p.read_text().splitlines(), 1) if MADE_OF.search(line)]
    assert not hits, "text about how the project was made:\n" + "\n".join(hits)


def test_the_student_edition_hides_every_exercise_answer():
    """``make handout``'s site: no page pulls in the code of an exercise function."""
    sys.path.insert(0, str(DOCS / "_hooks"))
    import student

    pulled = {ref for _, ref in snippet_references()}
    assert pulled & student.HIDDEN, "no exercise answer is shown on the pages: the hidden set is stale"
    for page in doc_pages():
        hidden = student.hide_answers(page.read_text())
        left = [ref for ref in SNIPPET.findall(hidden) if ref in student.HIDDEN]
        assert not left, f"{page.relative_to(DOCS)} still shows {left}"
    grpo = student.hide_answers((DOCS / "algorithms" / "grpo.md").read_text())
    assert "Student edition" in grpo and "sampo_ref/algos/grpo.py:entry_points" in grpo  # the rest stays


def test_every_test_the_reliability_page_names_exists():
    """docs/reliability.md's table names the test that keeps each case true: each one exists."""
    named = set(re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", (ROOT / "docs" / "reliability.md").read_text()))
    missing = [f"{path}::{name}" for path, name in sorted(named)
               if not re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.M)]
    assert len(named) >= 25 and not missing, missing

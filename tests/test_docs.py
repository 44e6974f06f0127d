"""The documentation names what exists, points nowhere outside the project, and is found.

- Every repository path written in backticks (a code span or a fenced block) in README.md and
  docs/**/*.md exists: ``backend/...``, ``desktop/...``, ``bench/...``, ``tests/...``,
  ``resources/...``; so does every dotted module named there (``backend.x.y``), which may end in
  one of the module's attributes (``backend.proxy.frames.frame_prefix``).
- Every relative link between the documents leads to a file that exists.
- No file of the project (tracked, or new and not ignored) mentions the design notes kept outside
  it, or the folder they are in.
- README links to docs/ before its first section.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

#: A code span or a fenced block: the same run of backticks on both sides.
CODE = re.compile(r"(`+)(.+?)\1", re.DOTALL)
#: A repository path: one of the project's top folders, then names, slashes and dots.
PATH = re.compile(r"(?<![\w./~-])(?:backend|desktop|bench|tests|resources)/[\w./-]*")
#: A dotted module of the backend, perhaps ending in an attribute; not part of a longer name
#: (``feedpool.backend.wire``, a logger) nor a file name (``backend.log``).
DOTTED = re.compile(r"(?<![\w./-])backend(?:\.\w+)+(?![\w/-])")
FILE_SUFFIXES = frozenset({"log", "json", "csv", "txt", "md", "py", "key", "pem", "conf"})
#: A markdown link's target.
LINK = re.compile(r"\]\(([^)\s]+)\)")

#: What no file may mention, spelled so that this file does not.
OUTSIDE = (
    *(f"{name}.md" for name in ("DESIGN", "PROTOCOLS", "BROKERS-DHAN-NOREN")),
    "../" + "shared",
)


def _shown(document: Path) -> str:
    return str(document.relative_to(ROOT))


def _code(document: Path) -> list[str]:
    return [match.group(2) for match in CODE.finditer(document.read_text(encoding="utf-8"))]


def _module_problem(dotted: str) -> str:
    """Why ``dotted`` names no module or module attribute; empty if it does."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        try:
            found = importlib.util.find_spec(name) is not None
        except (ModuleNotFoundError, ValueError):
            found = False
        if not found:
            continue
        try:
            value = importlib.import_module(name)
        except Exception as exc:  # a module that exists but cannot be imported is a finding too
            return f"module {name} cannot be imported ({type(exc).__name__}: {exc})"
        for attribute in parts[end:]:
            if not hasattr(value, attribute):
                return f"{name} has no attribute {attribute!r}"
            value = getattr(value, attribute)
        return ""
    return "no such module"


def test_paths_and_modules_named_in_the_documents_exist():
    missing = []
    for document in DOCUMENTS:
        for code in _code(document):
            for path in PATH.findall(code):
                if not (ROOT / path.rstrip(".")).exists():
                    missing.append(f"{_shown(document)}: `{path}` does not exist")
            for dotted in DOTTED.findall(code):
                if dotted.rsplit(".", 1)[1] in FILE_SUFFIXES:
                    continue
                problem = _module_problem(dotted)
                if problem:
                    missing.append(f"{_shown(document)}: `{dotted}`: {problem}")
    missing = list(dict.fromkeys(missing))
    assert not missing, "\n".join(missing)


def test_links_between_the_documents_lead_somewhere():
    missing = []
    for document in DOCUMENTS:
        text = CODE.sub("", document.read_text(encoding="utf-8"))
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a web address, or a section of the same document
            path = target.split("#", 1)[0]
            if not (document.parent / path).exists():
                missing.append(f"{_shown(document)}: link to {target} leads nowhere")
    missing = list(dict.fromkeys(missing))
    assert not missing, "\n".join(missing)


def test_no_file_points_outside_the_project():
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    found = []
    for name in filter(None, listed.decode().split("\0")):
        path = ROOT / name
        if not path.is_file():
            continue  # moved or deleted in the working tree
        data = path.read_bytes()
        if b"\0" in data:
            continue  # not a text file
        found += [f"{name} mentions {text}" for text in OUTSIDE if text.encode() in data]
    assert not found, "\n".join(found)


def test_readme_leads_to_the_docs_before_its_first_section():
    readme = ROOT / "README.md"
    top = readme.read_text(encoding="utf-8").split("\n## ", 1)[0]
    top = CODE.sub("", top)
    links = [target for target in LINK.findall(top) if target.startswith("docs/")]
    assert links, f"{_shown(readme)}: no link to docs/ before the first section"
    assert (ROOT / "docs" / "README.md").is_file(), "docs/README.md does not exist"

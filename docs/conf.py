"""Sphinx configuration of the optuna-qlearn documentation.

Build (warnings are errors, as in the test suite)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Pages are Markdown (MyST) except the API reference. The guide's table of contents
and the optional parts of the API reference are filled in from what exists, so a
page or an optional module that is not there yet leaves no dangling reference.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))  # document the checkout, installed or not

project = "optuna-qlearn"
author = "optuna-qlearn developers"
copyright = "optuna-qlearn developers"
try:
    from optuna_qlearn import __version__ as release
except ImportError:  # pragma: no cover
    release = "0.0.0"
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.doctest",  # docstrings use ``.. testcode::`` like Optuna's
    "sphinx.ext.mathjax",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "examples/README.md"]
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_default_options = {"show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

html_theme = "furo" if importlib.util.find_spec("furo") else "alabaster"
html_title = f"optuna-qlearn {release}"
html_static_path: list[str] = []

#: The user guide, in reading order. Pages written by other parts of the project
#: appear once they exist; any other top-level page is appended after them.
GUIDE = [
    "quickstart",
    "how-it-works",
    "policy",
    "architecture",
    "fid",
    "lr",
    "dqn",
    "benchmarks",
    "dashboard",
    "distributed",
]
#: Pages that are not part of the guide's table of contents.
NOT_GUIDE = {"index", "api", "examples"}

#: Optional modules of the API reference: (module, heading), included when importable.
OPTIONAL_API = [
    ("optuna_qlearn.dqn", "Deep Q-network sampler"),
    ("optuna_qlearn.integration.lightning", "PyTorch Lightning"),
    ("optuna_qlearn.integration.huggingface", "Hugging Face Trainer"),
]


def _guide_pages() -> list[str]:
    present = {p.stem for p in DOCS.glob("*.md")} | {p.stem for p in DOCS.glob("*.rst")}
    pages = [p for p in GUIDE if p in present]
    pages += sorted(present - set(GUIDE) - NOT_GUIDE)
    return [*pages, "examples"]


def _examples_page() -> str:
    blocks = []
    for path in sorted(DOCS.glob("examples/*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        summary = doc.strip().split("\n\n")[0].replace("\n", " ")
        blocks.append(
            f"## {path.name}\n\n{summary}\n\n```{{literalinclude}} examples/{path.name}\n"
            ":language: python\n```\n"
        )
    return "\n".join(blocks) or "No examples yet.\n"


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


def _automodules(modules: list[tuple[str, str]], underline: str) -> str:
    return "\n".join(
        f"{heading}\n{underline * len(heading)}\n\n.. automodule:: {module}\n   :members:\n"
        for module, heading in modules
        if _importable(module)
    )


def _objective_modules() -> list[tuple[str, str]]:
    from optuna_qlearn import objectives

    # Public modules only (the seed grid's private home is reached through ``objectives``).
    names = [m for m in dict.fromkeys(objectives._LAZY.values()) if "._" not in m]
    names.append("optuna_qlearn.objectives.text_data")
    return [(m, f"``{m.rsplit('.', 1)[1]}``") for m in dict.fromkeys(names)]


def _fill_in(app: Any, docname: str, source: list[str]) -> None:
    if docname == "index":
        source[0] = source[0].replace("%GUIDE_PAGES%", "\n".join(_guide_pages()))
    elif docname == "examples":
        source[0] = source[0].replace("%EXAMPLES%", _examples_page())
    elif docname == "api":
        source[0] = source[0].replace("%OPTIONAL_API%", _automodules(OPTIONAL_API, "-"))
        source[0] = source[0].replace("%OBJECTIVES%", _automodules(_objective_modules(), "~"))


def setup(app: Any) -> dict[str, Any]:
    app.connect("source-read", _fill_in)
    return {"parallel_read_safe": True}

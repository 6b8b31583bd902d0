"""Ready to publish: one version, a license in the repository, metadata that says so."""

import importlib.metadata
import pathlib
import re
import pytest

import softmax

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _meson_version():
    text = (ROOT / "meson.build").read_text(encoding="utf-8")
    match = re.search(r"project\(.*?version:\s*'([^']+)'", text, re.S)
    assert match, "meson.build's project() has no version"
    return match.group(1)


def test_version_lives_in_meson_build_only():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in pyproject["project"]
    assert "version" in pyproject["project"]["dynamic"]
    init = (ROOT / "src" / "softmax" / "__init__.py").read_text(encoding="utf-8")
    assert not re.search(r"__version__\s*=\s*['\"]", init), "a version literal in __init__.py"


def test_installed_version_is_meson_build_version():
    # Holds for the installed distribution built from this tree (editable or
    # wheel); a stale install built from an older meson.build fails here.
    assert importlib.metadata.version("softmax") == _meson_version()
    assert softmax.__version__ == _meson_version()


def test_license_file_and_metadata():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("BSD 3-Clause License")
    assert "Copyright (c) 2026, the softmax developers" in text
    meta = importlib.metadata.metadata("softmax")
    assert meta["License-Expression"] == "BSD-3-Clause AND MIT"
    classifiers = meta.get_all("Classifier")
    assert any(c.startswith("Programming Language :: Python :: 3.1") for c in classifiers)
    assert any(c.startswith("Operating System ::") for c in classifiers)
    assert meta.get_all("Project-URL")


def test_changelog_names_the_current_version():
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## {_meson_version()}" in changelog

"""The package's public face: the lazy facade, documented import paths, entry points."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import harness


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys; print('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return set(out.split())


@pytest.mark.parametrize(
    "code",
    [
        "import harness",
        "import harness.shadow, harness.cassettes, harness.cli",
        "from harness.shadow import merge_shards",
    ],
)
def test_importing_the_facade_loads_neither_the_sdk_nor_httpx2(code: str) -> None:
    loaded = _modules_after(code)
    assert not {m for m in loaded if m.split(".")[0] in ("openai", "httpx2")}


@pytest.mark.parametrize("name", sorted(set(harness.__all__) - {"NOT_OPENAI_LABEL", "__version__"}))
def test_every_public_name_resolves_to_its_definition(name: str) -> None:
    value = getattr(harness, name)
    assert value.__module__.startswith("harness.")
    assert name in dir(harness)


@pytest.mark.parametrize("package", ["harness.shadow", "harness.cassettes"])
def test_every_name_a_subpackage_re_exports_resolves(package: str) -> None:
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, name


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        harness.nope  # noqa: B018


def test_documented_import_paths_work() -> None:
    from harness.cassettes import vcr_config
    from harness.cli import main
    from harness.shadow import AsyncShadowClient, ShadowClient

    assert ShadowClient is harness.ShadowClient and AsyncShadowClient is harness.AsyncShadowClient
    assert callable(vcr_config) and callable(main)


def test_console_script_and_module_entry_points() -> None:
    from importlib.metadata import entry_points

    scripts = {e.name: e.value for e in entry_points(group="console_scripts")}
    assert scripts["harness"] == "harness.cli:main"
    done = subprocess.run(
        [sys.executable, "-m", "harness", "--version"], capture_output=True, text=True, check=True
    )
    assert harness.__version__ in done.stdout

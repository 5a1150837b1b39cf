"""Packaging: pyproject.toml, environment.yml and the rules' conda environment list the same
packages with the same floors; the Snakemake floor is the Snakefile's min_version; LICENSE."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names that differ from the PyPI names
CONDA_NAMES = {"python-duckdb": "duckdb"}
# needed by the Snakemake process only, not by the jobs (workflow/envs/attention-dynamics.yaml)
DRIVER_ONLY = {"snakemake", "pygments"}


def _split(req: str) -> tuple[str, str]:
    """'numpy>=1.26' -> ('numpy', '>=1.26'); names normalised like pip does (lower case, '-')."""
    m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*(.*?)\s*", req)
    assert m, req
    name = re.sub(r"[-_.]+", "-", m.group(1)).lower()
    return CONDA_NAMES.get(name, name), m.group(2).replace(" ", "")


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _conda(path: Path) -> tuple[dict[str, str], list[str]]:
    deps = yaml.safe_load(path.read_text())["dependencies"]
    conda = dict(_split(d) for d in deps if isinstance(d, str) and d != "pip")
    pip = [p for d in deps if isinstance(d, dict) for p in d.get("pip", [])]
    return conda, pip


def test_environment_yml_lists_the_pyproject_packages():
    project = _pyproject()
    wanted = dict(_split(r) for r in project["dependencies"] + project["optional-dependencies"]["test"])
    conda, pip = _conda(ROOT / "environment.yml")
    assert conda.pop("python") == project["requires-python"]
    assert conda == wanted
    slurm = dict(_split(r) for r in project["optional-dependencies"]["slurm"])
    assert dict(_split(p.split("#")[0]) for p in pip if not p.startswith("-e")) == slurm


def test_rule_environment_lists_the_run_dependencies():
    project = _pyproject()
    run = dict(_split(r) for r in project["dependencies"])
    conda, pip = _conda(ROOT / "workflow" / "envs" / "attention-dynamics.yaml")
    assert conda.pop("python") == project["requires-python"] and not pip
    assert conda == {k: v for k, v in run.items() if k not in DRIVER_ONLY}


def test_snakemake_floor_is_the_snakefiles_min_version():
    floor = dict(_split(r) for r in _pyproject()["dependencies"])["snakemake"]
    need = re.search(r'min_version\("([0-9.]+)"\)', (ROOT / "Snakefile").read_text()).group(1)
    assert floor == f">={need.split('.')[0]}" or floor == f">={need}", (floor, need)


def test_license_file_is_mit():
    assert _pyproject()["license"] == {"text": "MIT"}
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "attention-dynamics contributors" in text


def test_no_citation_of_the_internal_notebook():
    """The project ships docs/science.md; the team's internal notebook is not part of it."""
    hits = []
    for path in ROOT.rglob("*"):
        parts = path.relative_to(ROOT).parts
        if not path.is_file() or parts[0] in {".git", ".venv", "results", ".snakemake", "build", "dist"} or \
                any(p.endswith(".egg-info") or p == "__pycache__" for p in parts):
            continue
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        hits += [f"{path.relative_to(ROOT)}:{i}" for i, line in enumerate(text.splitlines(), 1)
                 if re.search(r"SCIENCE(\.md| §)", line) and path.name != "test_packaging.py"]
    assert not hits, hits


def test_snakemake_files_are_snakefmt_formatted():
    """`snakefmt --check Snakefile workflow/` (line length from pyproject.toml); CI runs it too."""
    import shutil
    import subprocess

    exe = shutil.which("snakefmt")
    if exe is None:
        import pytest

        pytest.skip("snakefmt not installed (test extra)")
    out = subprocess.run([exe, "--check", "Snakefile", "workflow/"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr

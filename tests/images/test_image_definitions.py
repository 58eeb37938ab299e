"""Dockerfiles, Makefiles, the release workflow, and one source of truth for image tags.

No Docker engine here: the Dockerfiles are proven by hadolint and by reading what they
install; the config they ship is proven by the other tests in this folder.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.stacks import effective_config

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGES = REPO_ROOT / "images"
WORKFLOW = REPO_ROOT / ".github" / "workflows" / "images.yml"
BIN = Path(sys.executable).parent

# image folder -> (stack config key, release tag prefix)
IMAGE_KEYS = {
    "default": ("eodh-jupyterhub:notebookImage", "default-"),
    "hub": ("eodh-jupyterhub:hubImage", "hub-"),
}

DEFAULT_PINS = {
    "jupyterlab": "4.4.0",
    "pyeodh": "0.1.4",
    "shapely": "2.0.7",
    "geopandas": "1.0.1",
    "boto3": "1.37.1",
    "s3contents": "0.11.2",
    "hybridcontents": "0.4.0",
    "python-dotenv": "1.0.1",
}
HUB_PINS = {"boto3": "1.37.20", "eodh-jpyauth": "0.1.3"}


def make_variable(folder: str, name: str) -> str:
    """The variable as make itself evaluates it (includes, overrides and all)."""
    result = subprocess.run(
        [
            "make",
            "-s",
            "--no-print-directory",
            "-C",
            str(IMAGES / folder),
            "--eval",
            f"print-var: ; @echo $({name})",
            "print-var",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k not in ("image", "version", "docker")},
    )
    return result.stdout.strip()


def image_ref(folder: str) -> str:
    return f"{make_variable(folder, 'image')}:{make_variable(folder, 'version')}"


def pip_pins(dockerfile: str) -> dict[str, str]:
    """name -> version of every `name==version` in the Dockerfile's pip install."""
    joined = dockerfile.replace("\\\n", " ")
    pins: dict[str, str] = {}
    for line in joined.splitlines():
        if "pip install" in line:
            pins.update(re.findall(r"([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.\-]+)", line))
    return pins


def instructions(dockerfile: str, keyword: str) -> list[str]:
    joined = dockerfile.replace("\\\n", " ")
    return [
        line.strip()[len(keyword) :].strip()
        for line in joined.splitlines()
        if line.strip().upper().startswith(keyword + " ")
    ]


# Dockerfiles -------------------------------------------------------------------------


@pytest.mark.parametrize("folder", sorted(IMAGE_KEYS))
def test_dockerfile_passes_hadolint(folder: str) -> None:
    result = subprocess.run(
        [str(BIN / "hadolint"), "--no-color", "--failure-threshold", "info", "Dockerfile"],
        cwd=IMAGES / folder,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


@pytest.mark.parametrize("folder", sorted(IMAGE_KEYS))
def test_every_ignored_hadolint_rule_is_justified(folder: str) -> None:
    lines = (IMAGES / folder / "Dockerfile").read_text().splitlines()
    for number, line in enumerate(lines):
        if "hadolint" in line and "ignore" in line:
            assert number > 0, "an ignore needs a justification above it"
            above = lines[number - 1].strip()
            assert above.startswith("#") and "hadolint" not in above and len(above) > 20, (
                f"{folder}/Dockerfile:{number + 1} ignores a rule without a reason above it"
            )
    # No blanket ignores from a config file either.
    assert not (IMAGES / folder / ".hadolint.yaml").exists()
    assert not (REPO_ROOT / ".hadolint.yaml").exists()


def test_default_image_contents() -> None:
    dockerfile = (IMAGES / "default" / "Dockerfile").read_text()
    assert instructions(dockerfile, "FROM") == ["quay.io/jupyter/base-notebook:python-3.12"]
    assert pip_pins(dockerfile) == DEFAULT_PINS
    apt = " ".join(i for i in instructions(dockerfile, "RUN") if "apt-get install" in i)
    for package in ("curl", "git", "nano", "unzip"):
        assert re.search(rf"\b{package}\b", apt), package
    awscli = " ".join(i for i in instructions(dockerfile, "RUN") if "awscli" in i)
    assert "awscli-exe-linux-" in awscli and "gpg --batch --verify" in awscli
    assert "aws/install" in awscli
    copies = instructions(dockerfile, "COPY")
    assert any(
        c.endswith("jupyter_server_config.py /etc/jupyter/jupyter_server_config.py") for c in copies
    ), copies
    # The server runs as jovyan (uid 1000), never root.
    assert instructions(dockerfile, "USER")[-1] == "1000"


def test_hub_image_contents() -> None:
    dockerfile = (IMAGES / "hub" / "Dockerfile").read_text()
    assert instructions(dockerfile, "FROM") == ["quay.io/jupyterhub/k8s-hub:4.2.0"]
    assert pip_pins(dockerfile) == HUB_PINS
    assert instructions(dockerfile, "USER")[-1] == "1000"


@pytest.mark.parametrize("package", ["s3contents", "hybridcontents", "jupyterlab"])
def test_tests_run_the_versions_the_image_pins(package: str) -> None:
    """The S3 drive is proven here with the same contents-manager stack the image ships."""
    assert importlib.metadata.version(package) == DEFAULT_PINS[package]


# Makefiles ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("folder", "image", "version"),
    [
        ("default", "public.ecr.aws/eodh/eodh-default-notebook", "python-3.12-0.2.11"),
        ("hub", "public.ecr.aws/eodh/eodh-jupyter-hub", "4.2.0-0.2.0"),
    ],
)
def test_makefile_builds_and_pushes_its_image(folder: str, image: str, version: str) -> None:
    assert make_variable(folder, "image") == image
    assert make_variable(folder, "version") == version
    assert make_variable(folder, "docker") == "docker"
    dry_run = subprocess.run(
        [
            *("make", "-n", "-s", "--no-print-directory", "-C", str(IMAGES / folder)),
            *("docker=podman", "container-build", "container-push"),
        ],
        capture_output=True,
        text=True,
        check=True,
        # Run from `make -C ... test`, the parent's flags would reach this make too.
        env={k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")},
    ).stdout.splitlines()
    assert dry_run[0].startswith("podman build ") and f"--tag {image}:{version}" in dry_run[0]
    assert dry_run[0].endswith(" .")
    assert dry_run[1] == f"podman push {image}:{version}"


@pytest.mark.parametrize("folder", sorted(IMAGE_KEYS))
def test_image_has_a_readme(folder: str) -> None:
    readme = (IMAGES / folder / "README.md").read_text()
    assert "make container-build" in readme


# One source of truth -----------------------------------------------------------------


def test_stack_image_tags_match_the_makefiles(stack: str) -> None:
    config = effective_config(stack)
    drift = [
        f"stack {stack}: {key} is {config.get(key)!r} but images/{folder}/Makefile "
        f"builds {image_ref(folder)!r}"
        for folder, (key, _) in IMAGE_KEYS.items()
        if config.get(key) != image_ref(folder)
    ]
    assert not drift, "\n".join(drift)


# Workflow ----------------------------------------------------------------------------


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def test_workflow_runs_on_each_images_release_tag() -> None:
    # PyYAML reads the `on:` key as True.
    triggers = workflow()[True]
    assert set(triggers) == {"push"}
    assert sorted(triggers["push"]["tags"]) == sorted(f"{p}*" for _, p in IMAGE_KEYS.values())


def test_workflow_authenticates_through_oidc_only() -> None:
    text = WORKFLOW.read_text()
    flow = workflow()
    assert flow["permissions"] == {}
    [job] = flow["jobs"].values()
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    uses = [step["uses"] for step in job["steps"] if "uses" in step]
    assert any(u.startswith("aws-actions/configure-aws-credentials@") for u in uses)
    for step in job["steps"]:
        if step.get("uses", "").startswith("aws-actions/configure-aws-credentials@"):
            assert "role-to-assume" in step["with"]
            assert not {"aws-access-key-id", "aws-secret-access-key"} & step["with"].keys()
    assert "secrets." not in text, "no stored secrets: OIDC only"
    # Third-party code runs with id-token: write, so every action is pinned to a commit.
    assert all(re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", u) for u in uses), uses


def test_workflow_passes_zizmor() -> None:
    zizmor = shutil.which("zizmor", path=str(BIN)) or "zizmor"
    result = subprocess.run(
        [zizmor, "--offline", "--persona=pedantic", "--no-progress", str(WORKFLOW)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings" in result.stdout + result.stderr


def tag_check_script() -> str:
    [job] = workflow()["jobs"].values()
    [step] = [s for s in job["steps"] if s.get("id") == "image"]
    return step["run"]


@pytest.mark.parametrize("folder", sorted(IMAGE_KEYS))
def test_workflow_accepts_the_makefile_version_tag(folder: str, tmp_path: Path) -> None:
    output = tmp_path / "github_output"
    tag = IMAGE_KEYS[folder][1] + make_variable(folder, "version")
    subprocess.run(
        ["bash", "-e", "-c", tag_check_script()],
        cwd=REPO_ROOT,
        env={**os.environ, "TAG": tag, "GITHUB_OUTPUT": str(output)},
        check=True,
        capture_output=True,
    )
    assert output.read_text().strip() == f"dir=images/{folder}"


@pytest.mark.parametrize("tag", ["default-python-3.12-9.9.9", "hub-0.0.0", "other-1.0"])
def test_workflow_refuses_a_tag_that_does_not_match_a_makefile(tag: str, tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", "-e", "-c", tag_check_script()],
        cwd=REPO_ROOT,
        env={**os.environ, "TAG": tag, "GITHUB_OUTPUT": str(tmp_path / "out")},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "::error::" in result.stdout

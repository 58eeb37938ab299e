"""Every tool command in docs/migration.md is one its tool accepts, and every make target it
names exists: the doc is parsed, placeholders filled in, and each command line handed to the
tool's own argument parser (stopped right after parsing: nothing runs)."""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "migration.md"
FILLED = {"<env>": "dev", '"$APP"': "jupyterhub", "<org>": "eodhp"}


def _fill(line: str) -> str:
    for placeholder, value in FILLED.items():
        line = line.replace(placeholder, value)
    return line


def tool_commands() -> list[tuple[str, list[str]]]:
    found = []
    for line in DOC.read_text().splitlines():
        match = re.search(r"python -m (tools\.\w+)(.*)", line)
        if match:
            args = shlex.split(_fill(match.group(2)), comments=True)
            found.append((match.group(1), args))
    return found


class Parsed(Exception):
    pass


@pytest.mark.parametrize(("module", "args"), tool_commands(), ids=lambda v: str(v))
def test_each_tool_command_parses(module: str, args: list[str], monkeypatch) -> None:
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, argv=None, namespace=None):
        original(self, argv, namespace)  # exits 2 on an unknown or missing argument
        raise Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    with pytest.raises(Parsed):
        importlib.import_module(module).main(args)


def test_the_doc_names_every_tool_it_relies_on() -> None:
    assert {m for m, _ in tool_commands()} == {
        "tools.argocd_application",
        "tools.import_plan",
        "tools.import_secrets",
        "tools.adopt_release",
    }


def test_every_make_target_exists() -> None:
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.M))
    named = set(re.findall(r"make ([a-z][a-z-]*) STACK=", DOC.read_text()))
    assert named and named <= targets


def test_a_wrong_flag_would_be_caught(monkeypatch) -> None:
    with pytest.raises(SystemExit):
        test_each_tool_command_parses("tools.adopt_release", ["dev", "--aply"], monkeypatch)

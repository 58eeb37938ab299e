"""The render's YAML is what PyYAML's own emitter writes, whichever emitter wrote it."""

from __future__ import annotations

import sys

import pytest
import yaml

from tests.support.recordings import recording_for
from tools import render


def pure_python(data: object) -> str:
    return yaml.dump(
        render._integral_floats(data),
        Dumper=render._ReadableDumper,
        sort_keys=True,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )


def test_a_rendered_stacks_values_are_written_as_the_pure_python_emitter_writes_them() -> None:
    from tests.chart.hub_pod import release_values

    values = release_values(recording_for("prod"))
    assert render._dump_yaml(values) == pure_python(values)


@pytest.mark.parametrize(
    "text",
    [
        "Welcome \U0001f680\nto the hub\n",  # beyond U+FFFF: libyaml escapes it in a quoted line
        "line one\x85line two\n",  # NEL
        "plain ünïcödé and 日本\nsecond line\n",
        "tab\there, 'quotes' and \"quotes\": {braces}\n",
    ],
    ids=["astral", "nel", "bmp-unicode", "punctuation"],
)
def test_strings_libyaml_would_escape_are_written_as_pyyaml_writes_them(text: str) -> None:
    data = {"hub": {"extraFiles": {"spawn.html": {"stringData": text}}}}
    assert render._dump_yaml(data) == pure_python(data)


def test_a_hub_file_with_an_emoji_stays_a_readable_literal_block() -> None:
    data = {"spawn.html": "<p>Welcome \U0001f680</p>\n<p>Pick a workspace</p>\n"}
    written = render._dump_yaml(data)
    assert written.startswith("spawn.html: |")
    assert "\U0001f680" in written
    assert yaml.safe_load(written) == data


@pytest.mark.skipif(not hasattr(yaml, "CSafeDumper"), reason="PyYAML built without libyaml")
def test_every_code_point_libyaml_writes_differently_takes_the_pure_python_emitter() -> None:
    # Every code point was compared once (libyaml differs on U+0085 and beyond U+FFFF only);
    # here the C1 controls, Latin-1, the line and paragraph separators, the BOM, CJK, the
    # private use area, the replacement character and the planes beyond.
    sample = [*range(0x80, 0x100), 0x2028, 0x2029, 0x3042, 0xE000, 0xFEFF, 0xFFFD, 0xFFFF]
    differing = []
    for code in [*sample, 0x10000, 0x1F680, sys.maxunicode]:
        data = {"k": f"a{chr(code)}b\nc\n"}
        fast = yaml.dump(data, Dumper=render._FastReadableDumper, allow_unicode=True, width=100)
        if fast != yaml.dump(data, Dumper=render._ReadableDumper, allow_unicode=True, width=100):
            differing.append(code)
    assert differing
    assert all(render._LIBYAML_ESCAPES.match(chr(code)) for code in differing)

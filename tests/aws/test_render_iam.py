"""`make render` writes every IAM policy document as reviewable JSON under build/<env>/iam/."""

from __future__ import annotations

import json
from pathlib import Path

from eodh_jupyterhub.offline import Recording
from tests.aws.support import documents
from tools.render import render


def test_render_writes_each_policy_document(
    up_recording: Recording, stack: str, tmp_path: Path
) -> None:
    render(stack, tmp_path)
    iam = tmp_path / stack / "iam"
    expected = documents(up_recording)
    assert sorted(p.name for p in iam.iterdir()) == sorted(f"{n}.json" for n in expected)
    for name, document in expected.items():
        text = (iam / f"{name}.json").read_text()
        assert json.loads(text) == document
        # Pretty and deterministic: sorted keys, two-space indent, trailing newline.
        assert text == json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    first = {p.name: p.read_text() for p in iam.iterdir()}
    render(stack, tmp_path)
    assert {p.name: p.read_text() for p in iam.iterdir()} == first

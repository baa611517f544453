"""Every checkov check the template skips says why, in the resource it is skipped for.

`make checkov` fails on any check neither passed nor skipped; this keeps a skip from
becoming a silent way around it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from maaskit.local import cfn_yaml

TEMPLATE = Path(__file__).parents[2] / "template.yaml"


def _skips() -> list[tuple[str, Any]]:
    resources = cfn_yaml.load(TEMPLATE)["Resources"]
    return [
        (logical_id, skip)
        for logical_id, resource in resources.items()
        for skip in ((resource.get("Metadata") or {}).get("checkov") or {}).get("skip") or []
    ]


def test_each_skip_names_one_check_and_gives_a_reason() -> None:
    skips = _skips()
    assert skips, "no skips found: was the Metadata layout changed?"
    for logical_id, skip in skips:
        assert set(skip) == {"id", "comment"}, (logical_id, skip)
        assert re.fullmatch(r"CKV_AWS_\d+", skip["id"]), (logical_id, skip)
        assert len(skip["comment"].split()) >= 8, f"{logical_id} {skip['id']}: say why"


def test_a_check_is_skipped_at_most_once_per_resource() -> None:
    pairs = [(logical_id, skip["id"]) for logical_id, skip in _skips()]
    assert len(pairs) == len(set(pairs))

"""The README's reason table and config are the user's reference: keep them complete."""

import os
import re

from mmcurate.schemas.reasons import REASONS
from tests.util import REPO


def test_readme_lists_every_reason_with_its_status():
    text = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    rows = dict(re.findall(r"^\| `([a-z_]+\.[a-z_0-9]+)` \| (dropped|failed) \|", text, re.M))
    assert rows == {name: status for name, (status, _, _) in REASONS.items()}


def test_ci_calls_the_readme_test_command():
    readme = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    ci = open(os.path.join(REPO, ".ci", "run"), encoding="utf-8").read()
    assert "make test" in readme and "make test" in ci

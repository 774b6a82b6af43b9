"""docs/reliability.md names the tests behind each guarantee: every one of them must exist."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_test_named_in_the_reliability_page_exists():
    # given the reliability page and the tests it cites
    text = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    cited = sorted(set(re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", text)))
    assert len(cited) >= 30
    # then each cited test is a function in the file it names
    missing = [
        f"{path}::{name}"
        for path, name in cited
        if not (ROOT / path).is_file()
        or not re.search(rf"^def {name}\(", (ROOT / path).read_text(encoding="utf-8"), re.M)
    ]
    assert missing == []

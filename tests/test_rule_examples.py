"""Every rule's bad examples trigger exactly that rule; its good examples trigger nothing."""

from __future__ import annotations

import pytest

from lora_lint.rulepack import BUILTIN_RULES, load_rules
from tests.rule_harness import codes, lint_source

RULES = load_rules([BUILTIN_RULES])
CASES = [
    pytest.param(rule, kind, example, id=f"{rule.code}-{rule.name}-{kind}{i}")
    for rule in RULES
    for kind in ("bad", "good")
    for i, example in enumerate(rule.examples.get(kind, []))
]


def test_every_rule_has_bad_and_good_examples():
    missing = [rule.code for rule in RULES if not rule.examples.get("bad") or not rule.examples.get("good")]
    assert missing == []


@pytest.mark.parametrize(("rule", "kind", "example"), CASES)
def test_rule_example(rule, kind, example, tmp_path):
    options = {rule.code: example["options"]} if example.get("options") else None
    results = lint_source(
        example["source"], example["format"], tmp_path, options, files=example.get("files"), settings=example.get("settings")
    )
    assert not any(r.error for r in results), [r.error.message for r in results if r.error]
    if kind == "bad":
        hit = codes(results, min_severity="info")
        assert rule.code in hit, f"{rule.code} did not fire; got {hit}"
        others = [c for c in codes(results) if c != rule.code]
        assert others == [], f"bad example of {rule.code} also triggers {others}"
    else:
        assert codes(results) == [], f"good example of {rule.code} triggers {codes(results)}"

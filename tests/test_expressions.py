"""Compiled rule expressions mean exactly what simpleeval makes of them, errors included."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from simpleeval import EvalWithCompoundTypes

from lora_lint import expressions, rulepack
from lora_lint.engine import Linter
from lora_lint.project import load_project
from lora_lint.rulepack import BUILTIN_RULES, Rule, RulePackError, load_rules

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

NAMES = {
    "r": 16,
    "lora_alpha": 32.0,
    "target_modules": ["q_proj", "v_proj"],
    "extras": {"adapter": "qlora", "values": 3},
    "item": {"key": "lora_r", "suggestion": None, "source": "x"},
    "rows": [{"r": 8, "percent": 0.5}, {"r": 16, "percent": 1.5}],
    "options": {"min": 1, "max": 2},
    "none": None,
    "text": "abc",
    "big": list(range(150)),
}

SAME_AS_SIMPLEEVAL = [
    "r is not None and r <= 0",
    "r >= 8 and lora_alpha / r or 'zero'",
    "0 < lora_alpha / r <= options.max < 3",
    "item.key + ' = ' + item.source",
    "item.suggestion if item.suggestion else 'none'",
    "extras.get('adapter') in ('lora', 'qlora') and not extras.get('gptq')",
    "extras.values",  # a dict method wins over the key, as in simpleeval
    "str(target_modules) == target_modules",
    "[x.r for x in rows if options.min <= x.percent <= options.max]",
    "any(x.percent > 1 for x in rows)",
    "sorted([t for t in target_modules], key=len)[-1:]",
    "{'a': r, 'b': [r, 2 * r]}['b'][1] - r % 5",
    "{r, 1} | {2}",
    "len(text * 2) + abs(-r) + round(lora_alpha / 3, 2)",
    "-r // 3 + (r ^ 5) & 7",
    "max",  # a function named as a value
    "'x' + 'y' * 3",
    "target_modules + ['o_proj']",
    "len([a for a in big[:60] for b in big[:60] if b < 20]) + len([a for a in big[:60] for b in big[:60]])",  # < limit
]

ERRORS_OF_SIMPLEEVAL = [
    "undefined_name > 1",
    "r / 0",
    "none.key",
    "item.missing",
    "r.__class__",
    "text.format(1)",
    "r ** 5000000",
    "open('x')",
    "text + r",
    "[x for x in range(3)]",
    "[a for a in big for b in big]",  # simpleeval's limit on the elements of one evaluation
    "len([a for a in big[:80] for b in big[:80]]) + len([a for a in big[:80] for b in big[:80]])",  # all together
    "(lambda: 1)()",
    "",
]


def _simpleeval(expression: str, names: dict) -> tuple[str, object]:
    evaluator = EvalWithCompoundTypes(functions=dict(expressions.FUNCTIONS), names=dict(names))
    try:
        return "value", evaluator.eval(expression)
    except Exception as exc:  # noqa: BLE001
        return "error", f"{type(exc).__name__}: {exc}"


def _compiled(expression: str, names: dict) -> tuple[str, object]:
    code = expressions.compile_expression(expression)
    try:
        return "value", expressions.evaluate(expression, code, {**expressions.names_for(names)})
    except Exception as exc:  # noqa: BLE001
        return "error", f"{type(exc).__name__}: {exc}"


@pytest.mark.parametrize("expression", SAME_AS_SIMPLEEVAL)
def test_compiled_expressions_give_simpleevals_values(expression):
    assert expressions.compile_expression(expression) is not None
    expected = _simpleeval(expression, NAMES)
    assert expected[0] == "value", expected
    got = _compiled(expression, NAMES)
    assert got == expected and type(got[1]) is type(expected[1])


@pytest.mark.parametrize("expression", ERRORS_OF_SIMPLEEVAL)
def test_every_error_is_simpleevals_own(expression):
    expected = _simpleeval(expression, NAMES)
    assert expected[0] == "error"
    assert _compiled(expression, NAMES) == expected


@pytest.mark.parametrize("expression", ["r.__class__", "text.format(1)", "r ** 2", "(lambda: 1)()", "__builtins__", "x := 1"])
def test_what_simpleeval_refuses_is_never_compiled(expression):
    assert expressions.compile_expression(expression) is None


def test_compiled_code_reaches_no_builtins_nor_objects_outside_plain_data():
    class Secret:
        payload = "leaked"

    names = expressions.names_for({"obj": Secret(), "d": {"k": 1}})
    # Attribute access on anything but plain data is handed to simpleeval, which returns the value the
    # rule asks for without running compiled code on it.
    assert expressions.evaluate("obj.payload", expressions.compile_expression("obj.payload"), names) == "leaked"
    with pytest.raises(Exception, match="not defined"):
        expressions.evaluate("open", expressions.compile_expression("open"), names)


def test_every_builtin_rule_expression_is_compiled():
    load_rules([BUILTIN_RULES])
    left = sorted(text for text, code in rulepack._CODE.items() if code is None)
    assert left == []


def test_rules_agree_with_simpleeval_on_the_examples():
    linter = Linter(load_project(os.getcwd(), None))
    results = [r for r in linter.lint_paths([str(EXAMPLES)]) if r.facts]
    assert results
    checked = 0
    for result in results:
        names = expressions.names_for(result.facts)
        for rule in linter.rules:
            names["options"] = linter.options[rule.code]
            records = [None] if rule.for_each is None else (result.facts.get(rule.for_each) or [])
            for record in records:
                names["item"] = record
                plain = {k: v for k, v in names.items() if k not in expressions.HELPERS}
                for text in [rule.when] + [field for _, field, _, _, _ in rule._message_parts if field]:
                    assert _compiled(text, plain) == _simpleeval(text, plain), (rule.code, text)
                    checked += 1
    assert checked > 500


def test_a_broken_rule_names_its_file_and_expression(tmp_path):
    data = {
        "code": "X001", "name": "broken", "severity": "error", "summary": "s", "when": "r > missing_fact",
        "message": "m", "why": "w", "fix": "f",
    }  # fmt: skip
    rule = Rule(data, str(tmp_path / "X001.yaml"))
    with pytest.raises(RulePackError, match=r"X001.yaml: rule X001 cannot evaluate 'r > missing_fact': 'missing_fact' is not"):
        rule.evaluate({"r": 1}, {})

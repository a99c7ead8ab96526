"""The rule-expression language: every construct it evaluates, everything it refuses, errors that name the rule."""

from __future__ import annotations

import marshal
import re
from pathlib import Path

import pytest

from lora_lint.expressions import FUNCTIONS, ExpressionError, compile_tree, parse
from lora_lint.rulepack import BUILTIN_RULES, RulePackError, load_rules

FACTS = {
    "r": 16,
    "lora_alpha": 8,
    "ratio": 0.5,
    "name": "Llama",
    "missing": None,
    "options": {"min_ratio": 1.0, "label": "cap"},
    "item": {"key": "lora_r", "suggestion": None, "items": 3, "choices": ["q_proj", "v_proj"]},
    "layers": [{"name": "q", "r": 8}, {"name": "v", "r": 64}],
    "pairs": [("a", 1), ("b", 2)],
    "words": ["b", "A", "c"],
}


def evaluate(source: str, names: dict | None = None):
    tree = parse(source)
    assert marshal.loads(marshal.dumps(tree)) == tree  # plain data: cached with the rule pack
    return compile_tree(tree)(FACTS if names is None else names)


@pytest.mark.parametrize(
    "source",
    [
        "1", "2.5", "'text'", "None", "True", "b'x'", "-r", "+r", "~r", "not r",
        "r + lora_alpha", "r - 3", "r * 2", "r / 3", "r // 3", "r % 5", "2 ** 10", "(-2) ** 3", "r << 2", "r >> 1",
        "r | 1", "r & 4", "r ^ 5", "'ab' * 3", "'a' + name", "[1] + [2]", "'%s-%d' % ('x', r)",
        "r == 16", "r != 16", "r < 20", "r <= 16", "r > 1", "r >= 17", "1 < r < 20", "1 < r < 10", "3 > r < 20",
        "'L' in name", "'x' not in name", "missing is None", "missing is not None", "2 in [1, 2]",
        "r and lora_alpha", "missing and r", "missing or r", "0 or '' or missing", "r > 1 and lora_alpha > 1 and 'x'",
        "'big' if r > 8 else 'small'", "'big' if r > 80 else 'small'",
        "[r, lora_alpha]", "(r, lora_alpha)", "(r,)", "()", "{r, 16}", "{'a': r, 'b': [1]}", "{}",
        "[*words, 'z']", "(*words,)", "{*words}", "{**{'a': 1}, 'b': 2}",
        "words[0]", "words[-1]", "words[1:]", "words[::-1]", "words[:2]", "name[1:3]", "pairs[1][0]",
        "[w.lower() for w in words]", "[w for w in words if w != 'A']", "sorted(w for w in words if w.islower())",
        "{w.upper() for w in words}", "{k: v for k, v in pairs}", "[(x, y) for x in [1, 2] for y in 'ab' if x > 1]",
        "[k for (k, v) in pairs if v > 1]", "any(w == 'A' for w in words)", "all([w for w in words])",
        "len(words)", "abs(-r)", "min(r, lora_alpha)", "max(words, key=len)", "round(ratio, 1)",
        "round(2.567, ndigits=2)", "sqrt(r)", "log2(r)", "sorted(words)", "sorted(words, reverse=True)",
        "int('7')", "float('2e-4')", "str(r)", "list('ab')", "tuple(words)", "dict(pairs)", "set('aab')",
        "sorted(words, key=len)", "min(*words)", "name.lower()", "name.replace('L', 'l')", "', '.join(words)",
        "name.startswith('Ll')", "'a|b'.split('|')", "name.upper().lower()", "words.index('A')",
        "pairs.count(('a', 1))", "{'a': 1}.get('b', 0)", "sorted({'b': 1, 'a': 2}.keys())", "list({'a': 1}.items())",
        "(16).bit_length()", "ratio.is_integer()", "{1, 2}.union({3})",
    ],
)  # fmt: skip
def test_constructs_evaluate_as_python_does(source):
    names = dict(FACTS, **FUNCTIONS, __builtins__={})  # globals: comprehensions see them too
    assert evaluate(source) == eval(source, names)  # the reference, on test text only


def test_dots_read_dictionaries():
    assert evaluate("options.min_ratio") == 1.0
    assert evaluate("item.key + '!'") == "lora_r!"
    assert evaluate("item.items") == 3  # a key, even where a dict method has the same name
    assert evaluate("item.get('key')") == "lora_r"  # a call is a method call
    assert evaluate("item.choices[1]") == "v_proj"
    assert evaluate("[layer.name for layer in layers if layer.r > options.min_ratio * 10]") == ["v"]
    assert evaluate("item.suggestion is None and not item.get('version_dependent')") is True


def test_boolean_operators_short_circuit():
    # the right side would fail: it is never evaluated
    assert evaluate("missing is not None and missing.key") is False
    assert evaluate("r or missing.key") == 16
    assert evaluate("missing.key if missing else 'none'") == "none"
    assert evaluate("missing is not None and 1 < missing.key < 3") is False
    assert evaluate("20 < r < missing.key") is False


def test_names_and_functions():
    assert evaluate("sorted(words, key=str)") == ["A", "b", "c"]
    assert evaluate("len", {}) is len  # a function by name
    assert evaluate("len", {"len": 3}) == 3  # a fact of the same name wins, as it always did
    with pytest.raises(ExpressionError, match="name 'nope' is not defined"):
        evaluate("nope")


@pytest.mark.parametrize(
    ("source", "refusal"),
    [
        ("r.__class__", "starting with '_'"),
        ("_architecture", "starting with '_'"),
        ("item._secret", "starting with '_'"),
        ("name.__len__()", "starting with '_'"),
        ("[x for _x in words]", "starting with '_'"),
        ("lambda: 1", "lambda is not allowed"),
        ("(lambda: 1)()", "lambda is not allowed"),
        ("(x := 1)", "assignment"),
        ("x = 1", "invalid syntax"),
        ("r >", "invalid syntax"),
        ("r; r", "invalid syntax"),
        ("", "invalid syntax"),
        ("open('/etc/passwd')", "unknown function 'open'"),
        ("eval('1')", "unknown function 'eval'"),
        ("__import__('os')", "unknown function '__import__'"),
        ("getattr(r, 'x')", "unknown function 'getattr'"),
        ("'{0.__class__}'.format(r)", "unknown method 'format'"),
        ("'{x}'.format_map(options)", "unknown method 'format_map'"),
        ("item.choices.append(1)", "unknown method 'append'"),
        ("options.clear()", "unknown method 'clear'"),
        ("words[0]()", "only functions and methods by name"),
        ("len(**options)", r"\*\*arguments"),
        ("f'{r}'", "f-string"),
        ("r @ r", "the @ operator"),
        ("'" + "x" * 100_001 + "'", "more than 100,000 characters"),
        ("[x for x.y in words]", "only assign to names"),
        ("[x async for x in words]", "async"),
        ("await r", "await"),
    ],
)
def test_refused_when_parsed(source, refusal):
    with pytest.raises(ExpressionError, match=refusal):
        parse(source)


@pytest.mark.parametrize(
    ("source", "refusal"),
    [
        ("10 ** 10000000", "too large"),
        ("2 ** r ** r ** r", "too large"),
        ("'x' * 100001", "more than 100,000 items"),
        ("[0] * 50000 + [0] * 50001", "more than 100,000 items"),
        ("1 << 100000", "too large"),
        ("[x for x in 'a' * 10001]", "more than 10,000 steps"),
        ("[1 for x in 'a' * 200 for y in 'b' * 200]", "more than 10,000 steps"),
        ("r.real", "r is an int, not a dict: cannot read .real"),
        ("missing.key", "missing is None, not a dict: cannot read .key"),
        ("item.nope", "item has no key 'nope'"),
        ("options.label.x", "options.label is a str, not a dict"),
        ("words[0].x", "the value is a str, not a dict"),
        ("r.bit_length() + name.bit_length()", "a str has no method 'bit_length'"),
        ("words.get(0)", "a list has no method 'get'"),
        ("[k for k, v in [(1, 2, 3)]]", "cannot unpack 3 values into 2 names"),
    ],
)
def test_refused_when_evaluated(source, refusal):
    with pytest.raises(ExpressionError, match=refusal):
        evaluate(source)


def test_a_function_passed_by_value_is_still_only_a_whitelisted_one():
    # `str.lower` reads an attribute of the `str` function: refused, as is any attribute of a non-dict
    with pytest.raises(ExpressionError, match="str is a type, not a dict"):
        evaluate("sorted(words, key=str.lower)")


def test_every_builtin_rule_expression_parses_to_plain_data():
    for rule in load_rules([BUILTIN_RULES]):
        trees = [rule._when_tree] + [part[2] for part in rule._message_parts if part[2] is not None]
        assert all(marshal.loads(marshal.dumps(tree)) == tree for tree in trees), rule.code


RULE = """\
code: ACME001
name: acme-rank-cap
severity: error
summary: ACME caps LoRA rank
when: {when}
message: {message}
why: Because.
fix: Lower it.
"""


def write_rule(folder: Path, when: str = "r > 32", message: str = "r {r} is too high") -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / "ACME001-acme-rank-cap.yaml"
    path.write_text(RULE.format(when=when, message=message))
    return path


@pytest.mark.parametrize(
    ("when", "message", "refusal"),
    [
        ("r.__class__", "x", "cannot use 'r.__class__' in when: names and attributes starting with '_'"),
        ("\"(lambda: 1)()\"", "x", "in when: lambda is not allowed"),
        ("\"r > 1 and system('x')\"", "x", "in when: unknown function 'system'"),
        ("r >", "x", "in when: invalid syntax"),
        ("r > 1", "\"r {r.__class__}\"", "cannot use 'r.__class__' in message"),
        ("r > 1", "\"r {open('f')}\"", "in message: unknown function 'open'"),
        ("r > 1", "\"r {r!x}\"", "use !r, !s or !a"),
        ("r > 1", "\"r {r\"", "message 'r {r'"),
    ],
)
def test_rule_pack_errors_name_the_file_and_the_rule_when_loaded(tmp_path, monkeypatch, when, message, refusal):
    monkeypatch.setenv("LORA_LINT_CACHE_DIR", str(tmp_path / "cache"))
    path = write_rule(tmp_path / "policy", when, message)
    with pytest.raises(RulePackError, match=re.escape(refusal)) as error:
        load_rules([tmp_path / "policy"])
    assert str(error.value).startswith(f"{path}: rule ACME001: ")


def test_evaluation_errors_name_the_file_and_the_rule(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_LINT_CACHE_DIR", str(tmp_path / "cache"))
    path = write_rule(tmp_path / "policy", when="r > options.max_rank", message="r {r.nope}")
    (rule,) = load_rules([tmp_path / "policy"])
    message = f"{path}: rule ACME001: cannot evaluate 'r > options.max_rank': options has no key 'max_rank'"
    with pytest.raises(RulePackError, match=re.escape(message)):
        rule.evaluate({"r": 64}, {})
    message = f"{path}: rule ACME001: cannot evaluate 'r.nope': r is an int, not a dict: cannot read .nope"
    with pytest.raises(RulePackError, match=re.escape(message)):
        rule.evaluate({"r": 64}, {"max_rank": 32})


def test_message_fields_format_and_convert(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_LINT_CACHE_DIR", str(tmp_path / "cache"))
    write_rule(tmp_path / "policy", message="\"{r:,} {ratio:.1%} {name!r} {name!s} {'é'!a} {name:d} {{literal}}\"")
    (rule,) = load_rules([tmp_path / "policy"])
    facts = {"r": 12345, "ratio": 0.25, "name": "x"}
    # a format spec that does not fit the value falls back to str(), as before
    assert rule.evaluate(facts, {}) == [("12,345 25.0% 'x' x '\\xe9' x {literal}", None)]


def test_the_parsed_pack_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_LINT_CACHE_DIR", str(tmp_path / "cache"))
    write_rule(tmp_path / "policy")
    first = load_rules([tmp_path / "policy"])
    assert len(list((tmp_path / "cache").glob("rules-*.marshal"))) == 1
    (again,) = load_rules([tmp_path / "policy"])
    assert again._when_tree == first[0]._when_tree
    assert again.evaluate({"r": 64}, {}) == [("r 64 is too high", None)]


def test_a_refused_rule_is_a_usage_error_on_the_command_line(tmp_path, monkeypatch, capsys):
    from lora_lint.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LORA_LINT_CACHE_DIR", str(tmp_path / "cache"))
    write_rule(tmp_path / "policy", when="r.__class__")
    (tmp_path / "train.yml").write_text("base_model: TinyLlama/TinyLlama_v1.1\nadapter: lora\nlora_r: 16\nlora_alpha: 32\n")
    assert main(["check", "train.yml", "--rules", "policy"]) == 2
    err = capsys.readouterr().err
    assert "ACME001-acme-rank-cap.yaml: rule ACME001: cannot use 'r.__class__' in when" in err and "Traceback" not in err


def test_a_quiet_run_renders_messages_only_to_report_them(tmp_path, monkeypatch, capsys):
    """--quiet defers rendering: a failing run still reports the message, or a field that cannot be evaluated."""
    from lora_lint.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LORA_LINT_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "train.yml").write_text("base_model: TinyLlama/TinyLlama_v1.1\nadapter: lora\nlora_r: 64\nlora_alpha: 32\n")
    write_rule(tmp_path / "policy")
    assert main(["check", "-q", "--select", "ACME001", "train.yml", "--rules", "policy"]) == 1
    assert "ACME001 [error] r 64 is too high" in capsys.readouterr().out
    write_rule(tmp_path / "policy", message="r {r.nope}")
    assert main(["check", "-q", "--select", "ACME001", "train.yml", "--rules", "policy"]) == 2
    err = capsys.readouterr().err
    assert "rule ACME001: cannot evaluate 'r.nope': r is an int, not a dict" in err and "Traceback" not in err


def test_a_deferred_message_is_the_message_rendered_at_once(tmp_path):
    from lora_lint.engine import Linter
    from lora_lint.project import Project

    config = Path(__file__).resolve().parent.parent / "examples" / "axolotl" / "good-qlora.yml"
    eager = Linter(Project(tmp_path)).lint_paths([str(config)])
    deferred = Linter(Project(tmp_path), render_messages=False).lint_paths([str(config)])
    assert eager[0].findings and not any(isinstance(f._message, str) for f in deferred[0].findings)
    assert [f.as_dict() for f in eager[0].findings] == [f.as_dict() for f in deferred[0].findings]

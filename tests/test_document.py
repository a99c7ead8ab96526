"""YAML loading: merge keys, keys kept as written, and the duplicates and positions they imply."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from lora_lint.document import InputError, load_yaml

NESTED_MERGE = """\
base: &base
  lora_r: 8
  lora_alpha: 16
run:
  <<: *base
  lora_r: 16
"""


def positions(text: str) -> dict[tuple, tuple[int, int]]:
    return {path: (loc.line, loc.column) for path, loc in load_yaml("c.yml", text).positions.items()}


def duplicate_keys(text: str) -> list[tuple[str, int, int | None]]:
    return [(n.data["key"], n.location.line, n.data["first_line"]) for n in load_yaml("c.yml", text).notes if n.kind == "duplicate-key"]


def test_explicit_key_overrides_merged_one_without_a_duplicate() -> None:
    doc = load_yaml("c.yml", NESTED_MERGE)
    assert doc.data["run"] == {"lora_r": 16, "lora_alpha": 16} == yaml.safe_load(NESTED_MERGE)["run"]
    assert doc.notes == []
    where = positions(NESTED_MERGE)
    assert where[("run", "lora_r")] == (6, 3)  # the overriding key, where it is written
    assert where[("run", "lora_alpha")] == (3, 3)  # a merged key, where the anchor wrote it
    assert doc.positions[("run", "lora_alpha")].key == "run.lora_alpha"


@pytest.mark.parametrize(
    "text",
    [
        "base: &b {lora_r: 8, lora_alpha: 16}\n<<: *b\nlora_r: 16\n",
        "base: &b {lora_r: 8, lora_alpha: 16}\nlora_r: 16\n<<: *b\n",  # the merge written after the override
        "base: &b {lora_r: 8}\nother: &o {lora_alpha: 16, lora_r: 4}\n<<: [*b, *o]\nlora_r: 16\n",
    ],
)
def test_top_level_merges_follow_yaml(text: str) -> None:
    doc = load_yaml("c.yml", text)
    expected = yaml.safe_load(text)
    assert doc.data == expected and (doc.data["lora_r"], doc.data["lora_alpha"]) == (16, 16)
    assert doc.notes == []
    assert doc.positions[("lora_r",)].line == text.splitlines().index("lora_r: 16") + 1


def test_first_of_several_merged_mappings_wins() -> None:
    text = "a: &a {x: 1}\nb: &b {x: 2, y: 3}\nc: {<<: [*a, *b]}\n"
    doc = load_yaml("c.yml", text)
    assert doc.data["c"] == {"x": 1, "y": 3} == yaml.safe_load(text)["c"]
    assert positions(text)[("c", "x")] == (1, 8)


def test_a_key_written_twice_is_still_a_duplicate_next_to_a_merge() -> None:
    text = NESTED_MERGE + "  lora_r: 32\n"
    assert duplicate_keys(text) == [("run.lora_r", 7, 6)]
    assert load_yaml("c.yml", text).data["run"]["lora_r"] == 32


def test_merge_of_a_non_mapping_is_an_input_error() -> None:
    with pytest.raises(InputError, match="merge key"):
        load_yaml("c.yml", "a: &a [1, 2]\nb:\n  <<: *a\n")


def test_chained_merges_are_flattened_once() -> None:
    """Each anchor merges the previous one twice: expanded naively this is 2**60 entries."""
    text = "a0: &a0 {k0: 1}\n" + "".join(f"a{i}: &a{i} {{<<: [*a{i - 1}, *a{i - 1}], k{i}: {i}}}\n" for i in range(1, 60))
    started = time.perf_counter()
    doc = load_yaml("c.yml", text)
    assert time.perf_counter() - started < 1
    assert doc.data["a59"] == {f"k{i}": i or 1 for i in range(60)}


def test_a_mapping_merging_itself_terminates() -> None:
    assert load_yaml("c.yml", "a: &a {x: 1, <<: *a}\n").data == {"a": {"x": 1}}


def test_keys_are_the_text_written() -> None:
    text = "1: 2\ntrue: 5\nnull: 3\nyes: 1\n2e-4: x\n"
    doc = load_yaml("c.yml", text)
    assert list(doc.data) == ["1", "true", "null", "yes", "2e-4"]
    assert doc.notes == []  # neither a bogus duplicate (true == 1) nor value notes about keys
    assert doc.positions[("true",)].key == "true"


def test_the_same_key_text_twice_is_a_duplicate() -> None:
    assert duplicate_keys("1: a\n'1': b\n") == [("1", 2, 1)]
    assert duplicate_keys("l:\n  - x: 1\n    x: 2\n") == [("l[0].x", 3, 2)]  # spelled with the list index


def test_unsafe_tag_on_a_key_is_refused() -> None:
    with pytest.raises(InputError, match="unsupported YAML tag"):
        load_yaml("c.yml", "!!python/name:os.system : 1\n")


def _shape(node: yaml.Node) -> tuple:
    mark = (node.start_mark.line, node.start_mark.column, node.end_mark.line, node.end_mark.column)
    if isinstance(node, yaml.ScalarNode):
        return (node.tag, node.value, node.style, mark)
    if isinstance(node, yaml.MappingNode):
        return (node.tag, mark, node.flow_style, [(_shape(k), _shape(v)) for k, v in node.value])
    return (node.tag, mark, node.flow_style, [_shape(item) for item in node.value])


def test_compose_loader_builds_the_safe_loaders_nodes() -> None:
    """The memoized tag resolution changes nothing: same nodes, tags and marks as PyYAML's safe loader."""
    from lora_lint.document import _ComposeLoader, _SafeLoader

    assert not _SafeLoader.yaml_path_resolvers  # the skipped path hooks would otherwise matter
    root = Path(__file__).resolve().parent.parent
    files = sorted((root / "examples").rglob("*.y*ml")) + sorted((root / "rules").glob("*.yaml"))
    tricky = "a: [yes, No, ~, '', 0x1F, 1_000, 2e-4, 1.5e+3, .inf, 2024-01-31, !!str 5, '5', 5, \"true\", true]\nb: &x {c: 1}\nd: *x\n"
    texts = [tricky, tricky] + [path.read_text(encoding="utf-8") for path in files]
    assert len(texts) > 40
    for text in texts:
        assert _shape(yaml.compose(text, Loader=_ComposeLoader)) == _shape(yaml.compose(text, Loader=_SafeLoader))


def test_the_tag_memo_is_emptied_between_files_once_it_holds_too_much_text(monkeypatch) -> None:
    from lora_lint import document

    monkeypatch.setattr(document, "_TAG_MEMO_MAX_TEXT", 1000)
    load_yaml("a.yml", f"prompt: {'x' * 2000}\n")
    assert document._memo_tag.cache_info().currsize > 0
    load_yaml("b.yml", "r: 8\n")  # emptied before composing this one, which then adds its own tags
    assert document._memo_text < 1000
    assert load_yaml("c.yml", f"prompt: {'x' * 2000}\n").data == {"prompt": "x" * 2000}


def test_keys_recorded_while_building_equal_a_walk_of_the_data() -> None:
    """The YAML builder records every written key as it goes; readers would otherwise walk the data for them."""
    from lora_lint.document import load_yaml
    from lora_lint.readers.common import key_uses

    root = Path(__file__).resolve().parent.parent
    texts = [path.read_text(encoding="utf-8") for path in sorted((root / "examples").rglob("*.y*ml"))]
    texts.append("base: &b {lr: 1, nested: {a: [1, {b: 2}]}}\nrun:\n  <<: *b\n  lr: 2\nlist: [{x: 1}, {x: 2}]\n")
    for text in texts:
        doc = load_yaml("config.yaml", text)
        recorded = key_uses(doc)
        doc.uses = None
        assert recorded == key_uses(doc)

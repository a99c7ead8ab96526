"""Counting each distinct layer once gives exactly the name-by-name count.

:func:`~lora_lint.arch.blocks.blocks_of` groups a model's repeated layers, and
``_Counter.run_by_blocks`` counts on those groups whenever the adapter settings cannot tell
layers apart. Both must be invisible: the grouped modules expand back to the module list, and
the grouped count equals the per-name count (:meth:`_Counter.run`, itself checked against PEFT
in ``test_arch_vs_peft.py``) field for field, adapted layers and their order included, over
every catalog model and random adapter settings.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lora_lint.arch import AdapterSpec, UnsupportedArchitecture, architecture_for
from lora_lint.arch.blocks import Block, blocks_of, expand
from lora_lint.arch.counting import _Counter
from lora_lint.arch.model import ALL_LINEAR_KINDS, Builder, Module
from lora_lint.arch.resolve import CATALOG_PATH

CATALOG = json.loads(Path(CATALOG_PATH).read_text())["models"]
TASKS = (None, "SEQ_CLS")


@cache
def _architecture(model_id: str, task: str | None):
    try:
        return architecture_for(CATALOG[model_id], task)
    except UnsupportedArchitecture:
        return None


def _architectures():
    for model_id in sorted(CATALOG):
        for task in TASKS:
            arch = _architecture(model_id, task)
            if arch is not None:
                yield model_id, task, arch


def test_blocks_expand_to_the_module_list_of_every_catalog_model() -> None:
    grouped = 0
    for model_id, task, arch in _architectures():
        parts = blocks_of(arch.modules)
        assert tuple(expand(parts)) == arch.modules, (model_id, task)
        grouped += sum(len(part.indices) - len(part.templates) for part in parts if isinstance(part, Block))
    assert grouped > 10_000  # most layers of most models share a template


def test_layers_described_once_equal_every_layer_described(monkeypatch: pytest.MonkeyPatch) -> None:
    """A family's variants (``Builder.repeat``) are right: describing every layer gives the same modules."""
    shared = {(model_id, task): arch.modules for model_id, task, arch in _architectures()}

    def every_layer(builder: Builder, stack: str, count: int, layer: Callable[..., None], variant: object = None) -> None:
        for index in range(count):
            layer(builder, f"{stack}.{index}", index)

    monkeypatch.setattr(Builder, "repeat", every_layer)
    for (model_id, task), modules in shared.items():
        assert architecture_for(CATALOG[model_id], task).modules == modules, (model_id, task)


def test_layers_differ_in_template_where_their_modules_differ() -> None:
    def linear(name: str, width: int) -> Module:
        return Module(name, "Linear", (("weight", (width, 8)),), 8, width)

    modules = (
        linear("embed", 8),
        linear("model.layers.0.q_proj", 8),
        linear("model.layers.1.q_proj", 16),  # other shape
        linear("model.layers.2.q_proj", 8),
        linear("model.layers.3.k_proj", 8),  # other name
        linear("model.norm", 8),
        linear("model.layers.4.q_proj", 8),  # a new run after a module outside the stack
        linear("model.layers.4.mlp.up", 8),
    )
    parts = blocks_of(modules)
    assert [type(part).__name__ for part in parts] == ["Module", "Block", "Module", "Block"]
    assert parts[1].template_of == (0, 1, 0, 2) and parts[1].instances == (2, 1, 1)
    assert parts[3].indices == ("4",) and [m.name for m in parts[3].templates[0]] == ["q_proj", "mlp.up"]
    assert tuple(expand(parts)) == modules


def _one_in(n: int) -> st.SearchStrategy[bool]:
    return st.sampled_from([False] * (n - 1) + [True])


@st.composite
def _case(draw):
    model_id = draw(st.sampled_from(sorted(CATALOG)))
    task = draw(st.sampled_from(TASKS))
    arch = _architecture(model_id, task)
    leaves = list(arch.leaf_names) if arch else []
    odd = ["mlp", "self_attn", "lm_head", "not_a_module", "0", "layers.0.mlp.up_proj"]
    entries = st.sampled_from(leaves * 6 + odd)  # mostly real module names, sometimes names PEFT refuses
    spec = AdapterSpec(r=draw(st.integers(1, 64)), lora_alpha=draw(st.sampled_from([8, 16.0])), task_type=task)
    kind = draw(st.sampled_from(["list"] * 4 + ["all-linear", "linear+list", "default", "regex"]))
    if kind in ("list", "linear+list"):
        spec.target_modules = draw(st.lists(entries, min_size=1, max_size=5, unique=not draw(_one_in(6))))
    if kind in ("all-linear", "linear+list"):
        spec.target_linear = draw(st.booleans())
        if not spec.target_linear:
            spec.target_modules = draw(st.sampled_from(["all-linear", "ALL-LINEAR"]))
    if kind == "regex":
        spec.target_modules = draw(st.sampled_from([r".*\.(q_proj|v_proj)", r".*layers\.1\..*proj", r".*\.1\..*"]))
    if draw(_one_in(3)):
        spec.exclude_modules = draw(st.one_of(st.lists(entries, max_size=2), st.just(r".*\.1\..*")))
    if draw(_one_in(3)):
        spec.modules_to_save = draw(st.lists(st.sampled_from(["lm_head", "embed_tokens", "score", "norm", "mlp", "head"]), max_size=2))
    if draw(_one_in(8)):
        spec.layers_to_transform = [0, 2]
    if draw(_one_in(8)):
        spec.rank_pattern = {draw(entries): 4}
    spec.bias = draw(st.sampled_from(["none", "none", "all", "lora_only"]))
    spec.use_dora = draw(st.booleans())
    spec.lora_dropout = draw(st.sampled_from([0.0, 0.0, 0.0, 0.1]))
    return arch, spec


@settings(max_examples=600, deadline=None)
@given(_case())
def test_counting_by_blocks_equals_counting_by_name(case) -> None:
    arch, spec = case
    if arch is None:
        return
    by_blocks = _Counter(arch, spec).run_by_blocks()
    if by_blocks is None:
        return
    by_name = _Counter(arch, spec).run()
    assert by_blocks == by_name
    assert repr(by_blocks) == repr(by_name)
    layers, expanded = by_blocks.layers, tuple(by_name.layers)
    assert len(layers) == len(expanded) and bool(layers) == bool(expanded)
    assert layers.max_rank() == max((layer.r for layer in expanded), default=None)
    assert layers.total("per_rank") == sum(layer.per_rank for layer in expanded)
    linear = layers.of_kinds(ALL_LINEAR_KINDS)
    assert tuple(linear) == tuple(layer for layer in expanded if layer.kind in ALL_LINEAR_KINDS)
    assert linear.total("in_features") == sum(layer.in_features for layer in expanded if layer.kind in ALL_LINEAR_KINDS)
    assert layers.where(lambda layer: layer.r > 16) == [layer for layer in expanded if layer.r > 16]
    names = {layer.name for layer in expanded}
    for name in {arch.input_embedding, arch.output_layer, "model", "model.layers.1", "model.layers.1.mlp", *list(names)[:3]}:
        if name:
            assert layers.contains(name) == (name in names)
            assert layers.contains(name, below=True) == any(n == name or n.startswith(name + ".") for n in names)


@pytest.mark.parametrize(
    ("model_id", "spec"),
    [
        ("meta-llama/Llama-3.1-8B", AdapterSpec(target_modules=["q_proj", "v_proj"])),
        ("meta-llama/Llama-3.1-8B", AdapterSpec(target_linear=True)),
        ("meta-llama/Llama-3.1-8B", AdapterSpec(target_linear=True, target_modules=["embed_tokens"])),
        ("meta-llama/Llama-3.1-8B", AdapterSpec(target_modules="all-linear", modules_to_save=["lm_head"], bias="all")),
        ("Qwen/Qwen3-30B-A3B", AdapterSpec(target_modules=["q_proj", "gate_proj", "up_proj", "down_proj"])),
        ("google/gemma-3-1b-pt", AdapterSpec(target_modules=["q_proj"], exclude_modules=["k_proj"], use_dora=True)),
        # settings that can tell layers apart: every layer's names are matched
        ("meta-llama/Llama-3.1-8B", AdapterSpec(target_modules=r".*\.layers\.1\..*proj")),
        ("meta-llama/Llama-3.1-8B", AdapterSpec(target_modules=["q_proj"], layers_to_transform=[1, 5])),
        ("meta-llama/Llama-3.1-8B", AdapterSpec(target_modules=["q_proj"], rank_pattern={r"layers\.1\.self_attn\.q_proj": 4})),
        ("meta-llama/Llama-3.1-8B", AdapterSpec(target_modules=["q_proj", "v_proj"], exclude_modules=r".*\.[02]\..*")),
    ],
)
def test_common_settings_are_counted_by_blocks(model_id: str, spec: AdapterSpec) -> None:
    arch = _architecture(model_id, None)
    by_blocks = _Counter(arch, spec).run_by_blocks()
    assert by_blocks is not None and by_blocks == _Counter(arch, spec).run()


@pytest.mark.parametrize(
    ("model_id", "spec"),
    [
        ("meta-llama/Llama-3.1-8B", AdapterSpec(target_modules=["layers.1.self_attn.q_proj"])),  # dotted: by name
        ("meta-llama/Llama-3.1-8B", AdapterSpec(target_modules=["mlp"])),  # a container: PEFT refuses it by name
        ("meta-llama/Llama-3.1-8B", AdapterSpec(target_modules=r".*mlp")),
        ("meta-llama/Llama-3.1-8B", AdapterSpec(target_modules=["q_proj"], bias="weird")),
        ("meta-llama/Llama-3.1-8B", AdapterSpec(target_linear=True, layers_to_transform=[1])),
        # PEFT's MoE conversion turns a regex into the names it matches, in every layer
        ("Qwen/Qwen3-30B-A3B", AdapterSpec(target_modules=r".*layers\.1\..*proj")),
    ],
)
def test_other_settings_are_counted_by_name(model_id: str, spec: AdapterSpec) -> None:
    arch = _architecture(model_id, None)
    assert _Counter(arch, spec).run_by_blocks() is None


def _reference_block_linears(arch):
    """The memory shape's block linears by walking every module name (what the grouped walk must equal)."""
    from lora_lint.memory.shape import _layer_index

    indexed = [(m, _layer_index(m.name)) for m in arch.modules if m.kind in ALL_LINEAR_KINDS]
    return [m for m, index in indexed if index is not None], [m for m, index in indexed if index == 0]


def test_memory_shape_reads_the_grouped_modules_like_the_module_list() -> None:
    from lora_lint.memory.shape import _block_linears

    for model_id, task, arch in _architectures():
        in_blocks, first_block = _block_linears(arch)
        reference_in_blocks, reference_first = _reference_block_linears(arch)
        assert sum(n for _, n in in_blocks) == len(reference_in_blocks), model_id
        assert sum(m.in_features * m.out_features * n for m, n in in_blocks) == sum(
            m.in_features * m.out_features for m in reference_in_blocks
        ), model_id
        assert sorted(first_block, key=repr) == sorted(reference_first, key=repr), model_id


def test_repeat_shares_one_description_per_variant_and_falls_back_to_every_layer() -> None:
    def layer(b: Builder, p: str, i: int) -> None:
        b.linear(f"{p}.proj", 8, 16 if i % 2 else 8, False)

    shared = Builder()
    shared.repeat("model.layers", 4, layer, lambda i: i % 2)
    (block,) = shared.finish()
    assert block.template_of == (0, 1, 0, 1) and block.instances == (2, 2)

    def gated(b: Builder, p: str, i: int) -> None:  # a module named on the layer itself leaves its prefix
        b.other(p, ("gate", (1,)))
        layer(b, p, i)

    one_by_one = Builder()
    one_by_one.repeat("model.layers", 2, gated)
    assert [m.name for m in expand(one_by_one.finish())] == [
        "model.layers.0", "model.layers.0.proj", "model.layers.1", "model.layers.1.proj"
    ]

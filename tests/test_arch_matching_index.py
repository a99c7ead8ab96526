"""The counter's name index finds exactly the module names PEFT's suffix rule matches.

PEFT tries every name of ``named_modules()`` against the target list (equal, or ending in
``"." + entry``); the counter looks only at names sharing an entry's last component. Both
must select the same names in the same order, for any list of entries: plain leaves, dotted
paths, full names, and odd spellings that match nothing.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lora_lint.arch import AdapterSpec, architecture_for
from lora_lint.arch.counting import _Counter

ARCHITECTURES = [
    architecture_for({"model_type": "gpt2", "n_layer": 3}),
    architecture_for({"model_type": "llama", "num_hidden_layers": 3, "hidden_size": 64, "num_attention_heads": 4}),
    architecture_for(
        {"model_type": "qwen3_moe", "num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4, "num_experts": 4}
    ),
    architecture_for({"model_type": "gemma3", "text_config": {"num_hidden_layers": 2}, "vision_config": {"num_hidden_layers": 2}}),
]


def _peft_matches(names: tuple[str, ...], targets: list[str]) -> list[str]:
    return [name for name in names if any(name == t or name.endswith("." + t) for t in targets)]


@st.composite
def _case(draw):
    arch = draw(st.sampled_from(ARCHITECTURES))
    names = arch.module_names
    def entry(name: str) -> st.SearchStrategy[str]:
        parts = name.split(".")
        return st.integers(0, len(parts) - 1).map(lambda k: ".".join(parts[k:]))
    listed = st.sampled_from(names).flatmap(entry)
    odd = st.sampled_from(["", ".", "q_proj.", ".q_proj", "layers", "0", "nope", "self_attn.q", "h.0"])
    return arch, draw(st.lists(st.one_of(listed, odd), max_size=6))


@settings(max_examples=200, deadline=None)
@given(_case())
def test_candidates_are_the_names_peft_matches(case) -> None:
    arch, targets = case
    counter = _Counter(arch, AdapterSpec(target_modules=targets))
    assert list(counter._candidates(targets)) == _peft_matches(arch.module_names, targets)


def test_every_name_is_indexed_once_under_its_last_component() -> None:
    for arch in ARCHITECTURES:
        positions = sorted(p for group in arch.names_by_leaf.values() for p in group)
        assert positions == list(range(len(arch.module_names)))
        for leaf, group in arch.names_by_leaf.items():
            assert all(arch.module_names[p].rpartition(".")[2] == leaf for p in group)

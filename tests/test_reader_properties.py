"""Whatever the input, readers return setups or raise InputError: never anything else."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lora_lint.document import InputError
from lora_lint.lora_setup import KNOWN_SETTINGS, LoraSetup
from lora_lint.readers import NotALoraConfig, read_file
from lora_lint.readers.axolotl import KEY_SETTINGS as AXOLOTL_KEYS
from lora_lint.readers.llamafactory import KEY_SETTINGS as LLAMAFACTORY_KEYS
from lora_lint.readers.peft import FIELD_SETTINGS

EXAMPLES = Path(__file__).parent.parent / "examples"
EXAMPLE_FILES = sorted(p for p in EXAMPLES.rglob("*") if p.suffix in (".yml", ".yaml", ".json", ".py"))
INTERESTING_KEYS = sorted(
    set(AXOLOTL_KEYS) | set(LLAMAFACTORY_KEYS) | set(FIELD_SETTINGS)
    | {"adapter", "finetuning_type", "peft_type", "lora_target", "peft_config", "model", "_component_", "datasets", "dataset"}
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["lora", "qlora", "all", "LORA", "all-linear", "2e-4", "q_proj,v_proj", "torchtune.models.llama3_2.lora_llama3_2_1b"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(INTERESTING_KEYS) | st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
configs = st.dictionaries(st.sampled_from(INTERESTING_KEYS) | st.text(max_size=10), values, max_size=10)

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def read_safely(name: str, raw: bytes) -> list[LoraSetup]:
    try:
        setups = read_file(name, raw)
    except InputError:
        return []
    except NotALoraConfig as reason:
        assert "\n" not in str(reason) and str(reason)  # one line, said when the file is named
        return []
    assert isinstance(setups, list)
    for setup in setups:
        assert isinstance(setup, LoraSetup)
        assert set(setup.settings) <= KNOWN_SETTINGS
        for note in setup.notes:
            assert note.location.line >= 1 and note.location.column >= 1
    return setups


@FAST
@given(config=configs, name=st.sampled_from(["config.yml", "adapter_config.json", "train.yaml"]))
def test_random_configs(config: dict, name: str) -> None:
    raw = json.dumps(config).encode() if name.endswith(".json") else yaml.safe_dump(config).encode()
    read_safely(name, raw)


@FAST
@given(data=st.data(), path=st.sampled_from(EXAMPLE_FILES))
def test_mutated_examples(data: st.DataObject, path: Path) -> None:
    lines = path.read_text().splitlines(keepends=True)
    mutation = data.draw(st.sampled_from(["delete", "duplicate", "retype", "truncate", "splice"]))
    index = data.draw(st.integers(0, max(len(lines) - 1, 0)))
    if mutation == "delete":
        del lines[index]
    elif mutation == "duplicate":
        lines.insert(index, lines[index])
    elif mutation == "retype" and ":" in lines[index]:
        key = lines[index].split(":", 1)[0]
        replacement = data.draw(st.sampled_from(['"16"', "[1, 2]", "{a: 1}", "yes", "2e-4", "-1", "null", "''", "1.0", "~"]))
        lines[index] = f"{key}: {replacement}\n"
    elif mutation == "truncate":
        lines = lines[:index]
    else:
        lines.insert(index, data.draw(st.text(max_size=20)) + "\n")
    read_safely(path.name if path.suffix != ".json" else str(path), "".join(lines).encode())


@FAST
@given(raw=st.binary(max_size=200), name=st.sampled_from(["a.yml", "a.json", "a.py", "adapter_config.json"]))
def test_random_bytes(raw: bytes, name: str) -> None:
    read_safely(name, raw)


@FAST
@given(source=st.text(alphabet="LoraConfig(r=8, )*[]{}'\"\n:=.-0123456789abc_", max_size=80))
def test_random_python(source: str) -> None:
    read_safely("train.py", ("LoraConfig" + source).encode())

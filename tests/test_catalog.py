"""The built-in model catalog, checked against transformers itself.

Every entry is turned into a transformers config and built on the meta device (no
memory, no download). The config must keep the catalog's numbers, the model must have
the parameter total the model's publisher states where that total is pinned here, and
lora-lint's own count must equal transformers' for every family lora-lint describes.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from lora_lint.arch import AdapterSpec, UnsupportedArchitecture, architecture_for, count_parameters
from lora_lint.arch.resolve import CATALOG_PATH

CATALOG = json.loads(Path(CATALOG_PATH).read_text(encoding="utf-8"))
MODELS: dict[str, dict] = CATALOG["models"]

PUBLISHED_TOTALS = {
    "meta-llama/Llama-2-7b-hf": 6_738_415_616,
    "meta-llama/Meta-Llama-3-8B": 8_030_261_248,
    "meta-llama/Llama-3.1-405B": 405_853_388_800,
    "codellama/CodeLlama-34b-hf": 33_743_970_304,
    "mistralai/Mistral-7B-v0.1": 7_241_732_096,
    "mistralai/Mixtral-8x7B-v0.1": 46_702_792_704,
    "mistralai/Mistral-Small-3.1-24B-Base-2503": 24_011_361_280,
    "openai-community/gpt2": 124_439_808,
    "microsoft/Phi-3-mini-4k-instruct": 3_821_079_552,
    "google/gemma-7b": 8_537_680_896,
    "google/gemma-3-4b-pt": 4_300_079_472,
    "google/gemma-3-27b-pt": 27_432_406_640,
    "Qwen/Qwen2-7B": 7_615_616_512,
    "Qwen/Qwen3-30B-A3B": 30_532_122_624,
    "Qwen/Qwen2-VL-7B-Instruct": 8_291_375_616,
    "meta-llama/Llama-3.2-11B-Vision": 10_670_220_835,
    "llava-hf/llava-1.5-7b-hf": 7_063_427_072,
    "openai/gpt-oss-20b": 20_914_757_184,
    "deepseek-ai/DeepSeek-V2.5": 235_741_434_880,
    "bigcode/starcoder2-15b": 15_957_889_024,
    "CohereForAI/c4ai-command-r7b-12-2024": 8_028_033_024,
    "EleutherAI/pythia-12b": 11_846_072_320,
    "togethercomputer/RedPajama-INCITE-Base-3B-v1": 2_775_864_320,
    # the safetensors totals the Hub lists for these checkpoints (tied output layers stored once)
    "openai/whisper-tiny": 37_760_640,
    "openai/whisper-large-v3": 1_543_490_560,
    "google/vit-base-patch16-224": 86_567_656,
    # the safetensors total the publisher lists (123,611,012,096) less its 2,942,324,736 MTP weights,
    # which transformers does not build
    "nvidia/NVIDIA-Nemotron-3-Super-120B-A12B-BF16": 120_668_687_360,
    # the Hub's safetensors total (31,273,088,876) less the persistent buffers saved with the weights: one
    # layer_scalar per layer (60) and the vision tower's std_bias and std_scale (2 x 1152)
    "google/gemma-4-31B": 31_273_088_876 - 60 - 2 * 1152,
}

COUNTED_TOTALS = {
    # exact totals of the published safetensors as counted by public tools (a shape-checking loader,
    # training logs); the publisher's card gives only a rounded figure
    "allenai/Olmo-3-7B-Instruct": 7_298_011_136,
    "swiss-ai/Apertus-8B-Instruct-2509": 8_053_338_176,
}

PUBLISHED_BILLIONS = {
    # the publisher's rounded (total, active) in billions, for an entry whose intermediate size is
    # derived from exactly these figures
    "ai21labs/AI21-Jamba-1.5-Large": (398, 94),
}

TASK_AUTO_CLASSES = {
    "CAUSAL_LM": "AutoModelForCausalLM",
    "SEQ_CLS": "AutoModelForSequenceClassification",
    "SEQ_2_SEQ_LM": "AutoModelForSeq2SeqLM",
}


@pytest.fixture(scope="module", autouse=True)
def offline() -> Any:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        yield


def transformers_config(config: dict) -> Any:
    """``AutoConfig.for_model(**config)``, or a skip when transformers does not know the family."""
    import transformers
    from transformers import AutoConfig
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    model_type = config.get("model_type")
    if model_type not in CONFIG_MAPPING:
        pytest.skip(f"transformers {transformers.__version__} does not know model_type {model_type!r}")
    return AutoConfig.for_model(**config)


def meta_numel(config: Any, class_name: str) -> int:
    """Parameters of the model ``class_name`` (a model or an Auto class) builds from ``config``, on meta."""
    import torch
    import transformers

    model_class = getattr(transformers, class_name, None)
    with torch.device("meta"):
        if model_class is None:
            model = transformers.AutoModelForCausalLM.from_config(config)
        elif class_name.startswith("Auto"):
            model = model_class.from_config(config)
        else:
            model = model_class(config)
    return sum(parameter.numel() for parameter in model.parameters())


@cache
def catalog_numel(model_id: str) -> int:
    """Parameters of the class the entry's ``architectures`` names, built from the entry."""
    entry = MODELS[model_id]
    return meta_numel(transformers_config(entry), entry["architectures"][0])


REWRITTEN_BY_TRANSFORMERS = {("t5", "tie_word_embeddings")}
"""Published keys transformers replaces on purpose: T5Config always ties the output layer and keeps
the published flag only to decide whether decoder outputs are scaled (T5 v1.1 / Flan-T5 untie)."""


def assert_kept(expected: dict, actual: dict, where: str) -> None:
    """Every number, flag and name of ``expected`` that transformers keeps has the catalog's value."""
    for key, value in expected.items():
        if key not in actual or (expected.get("model_type"), key) in REWRITTEN_BY_TRANSFORMERS:
            continue
        if isinstance(value, dict) and isinstance(actual[key], dict):
            assert_kept(value, actual[key], f"{where}.{key}")
        elif isinstance(value, (bool, int, str)) and not isinstance(value, float):
            assert actual[key] == value, f"{where}.{key}: catalog {value!r}, transformers {actual[key]!r}"


# ---------------------------------------------------------------- the catalog as data


def test_catalog_size_and_shape() -> None:
    assert len(MODELS) >= 80
    lowered = [model_id.lower() for model_id in MODELS]
    assert len(set(lowered)) == len(lowered), "ids must differ in more than case"
    for model_id, entry in MODELS.items():
        assert isinstance(entry.get("model_type"), str), model_id
        assert isinstance(entry.get("architectures"), list) and entry["architectures"], model_id


def test_aliases_point_at_catalog_ids() -> None:
    lowered_ids = {model_id.lower() for model_id in MODELS}
    for alias, target in CATALOG["aliases"].items():
        assert target in MODELS, f"{alias} -> {target}"
        assert alias.lower() not in lowered_ids, f"{alias} is already a catalog id"


# ---------------------------------------------------------------- against transformers


@pytest.mark.parametrize("model_id", sorted(MODELS))
def test_entry_round_trips_through_transformers(model_id: str) -> None:
    entry = MODELS[model_id]
    config = transformers_config(entry)
    assert_kept(entry, config.to_dict(), model_id)
    numel = catalog_numel(model_id)
    assert numel > 0
    if model_id in PUBLISHED_TOTALS:
        assert numel == PUBLISHED_TOTALS[model_id]


@pytest.mark.parametrize("model_id", sorted(MODELS))
def test_lora_lint_counts_what_transformers_builds(model_id: str) -> None:
    try:
        arch = architecture_for(MODELS[model_id])
    except UnsupportedArchitecture as unsupported:
        pytest.skip(f"not described by lora-lint's architecture model: {unsupported}")
    counted = count_parameters(arch, AdapterSpec(r=8, target_linear=True))
    config = transformers_config(arch.config)
    built = meta_numel(config, arch.model_class or TASK_AUTO_CLASSES[arch.task_type])
    assert counted.base_params == built


def test_published_totals_are_catalog_entries() -> None:
    assert set(PUBLISHED_TOTALS) | set(COUNTED_TOTALS) | set(PUBLISHED_BILLIONS) <= set(MODELS)


@pytest.mark.parametrize("model_id", sorted(COUNTED_TOTALS))
def test_entries_build_the_counted_totals(model_id: str) -> None:
    assert catalog_numel(model_id) == COUNTED_TOTALS[model_id]


@pytest.mark.parametrize("model_id", sorted(PUBLISHED_BILLIONS))
def test_entries_round_to_the_published_billions(model_id: str) -> None:
    """Total and top-k active parameters, truncated to whole billions as model cards state them."""
    import torch
    import transformers

    entry = MODELS[model_id]
    with torch.device("meta"):
        model = getattr(transformers, entry["architectures"][0])(transformers_config(entry))
    total = sum(parameter.numel() for parameter in model.parameters())
    experts = sum(parameter.numel() for name, parameter in model.named_parameters() if ".experts." in name)
    idle = experts * (entry["num_experts"] - entry["num_experts_per_tok"]) // entry["num_experts"]
    assert (total // 10**9, (total - idle) // 10**9) == PUBLISHED_BILLIONS[model_id]


def test_every_source_names_a_catalog_entry() -> None:
    """``sources`` says where an entry's numbers were read; it must not outlive or misname its entry."""
    sources: dict[str, str] = CATALOG["sources"]
    assert sources, "entries added since the first release carry their source"
    for model_id, source in sources.items():
        assert model_id in MODELS, f"source for {model_id}, which is not a catalog entry"
        assert isinstance(source, str) and len(source) > 20, model_id

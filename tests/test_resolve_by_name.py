"""Base models named by a local path that is not on this machine, and legacy hub names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lora_lint.arch.resolve import is_local_path, path_model_names, resolve_base_model


@pytest.fixture(autouse=True)
def empty_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))


def resolve(name: str, config_dir: Path | None = None):
    return resolve_base_model(name, config_dir=config_dir, cwd=Path("/nonexistent"), user_models=None)


@pytest.mark.parametrize(
    ("path", "model_id"),
    [
        ("/content/Llama-2-7b-hf", "meta-llama/Llama-2-7b-hf"),
        ("/home/u/models/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-7B"),
        ("/home/u/models/Qwen2.5-7B-Instruct/", "Qwen/Qwen2.5-7B"),
        ("./Mistral-7B-v0.1", "mistralai/Mistral-7B-v0.1"),
        ("../../Llama2-7b-chat/", "meta-llama/Llama-2-7b-hf"),  # separators vary in folder names
        ("~/models/gemma-2-9b-it", "google/gemma-2-9b"),
        ("C:\\models\\gemma-2-9b", "google/gemma-2-9b"),
        ("/models/Llama-2-7B-GPTQ", "meta-llama/Llama-2-7b-hf"),  # a quantized download
        ("/data/meta-llama/Meta-Llama-3-8B-Instruct", "meta-llama/Meta-Llama-3-8B"),  # org/name folders
        ("saves/qwen3-4b/lora/sft", "Qwen/Qwen3-4B"),  # a run's output, under its model's name
        ("/out/Llama-3.2-1B/checkpoint-500", "meta-llama/Llama-3.2-1B"),
        (("/root/.cache/huggingface/hub/models--meta-llama--Meta-Llama-3-8B/snapshots/"
          "8cde5ca8380496c9a6cc7ef3a8b46a0372a1d920"), "meta-llama/Meta-Llama-3-8B"),
    ],
)  # fmt: skip
def test_local_paths_resolve_by_the_model_they_name(path: str, model_id: str) -> None:
    found = resolve(path)
    assert found is not None
    assert (found.model_id, found.source, found.path) == (model_id, "local-name", path)
    assert found.config["model_type"]


@pytest.mark.parametrize(
    "path",
    [
        "/data/acme-finetune",
        "/out/checkpoint-500",
        # the HF cache names the hub repo exactly: a fine-tune under another organisation stays unknown
        "/cache/models--acme--Llama-2-7b-hf/snapshots/0123456789abcdef0123456789abcdef01234567",
        "/path/to/model",
    ],
)
def test_paths_naming_no_known_model_stay_unknown(path: str) -> None:
    assert resolve(path) is None


def test_a_folder_that_is_here_wins_over_its_name(tmp_path: Path) -> None:
    folder = tmp_path / "Llama-2-7b-hf"
    folder.mkdir()
    config = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "vocab_size": 256}
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    found = resolve(str(folder))
    assert found is not None and found.source == "local-dir" and found.config["hidden_size"] == 64


def test_hub_ids_are_not_paths() -> None:
    assert not is_local_path("meta-llama/Llama-2-7b-hf") and not is_local_path("gpt2")
    assert is_local_path("/content/x") and is_local_path("a/b/c") and is_local_path("~/x") and is_local_path("C:\\x")
    assert path_model_names("/a/models--org--name/snapshots/abc") == ["org/name"]


@pytest.mark.parametrize(
    ("name", "model_id"),
    [
        ("decapoda-research/llama-7b-hf", "huggyllama/llama-7b"),
        ("decapoda-research/llama-13b-hf", "huggyllama/llama-13b"),
        ("yahma/llama-7b-hf", "huggyllama/llama-7b"),
        ("lmsys/vicuna-7b-v1.5", "meta-llama/Llama-2-7b-hf"),
        ("Qwen/Qwen2.5-Math-1.5B", "Qwen/Qwen2.5-1.5B"),
        ("unsloth/tinyllama-bnb-4bit", "TinyLlama/TinyLlama_v1.1"),
        ("ISTA-DASLab/Meta-Llama-3-8B-Instruct-AQLM-2Bit-1x16", "meta-llama/Meta-Llama-3-8B"),  # AQLM re-upload
        ("someone/Mistral-7B-v0.1-colab-sharded", "mistralai/Mistral-7B-v0.1"),  # re-sharded re-upload
        ("google/gemma-4-31B-it", "google/gemma-4-31B"),
        ("unsloth/gemma-4-E2B-it", "google/gemma-4-E2B"),
    ],
)
def test_legacy_and_mirror_names(name: str, model_id: str) -> None:
    found = resolve(name)
    assert found is not None and (found.model_id, found.source) == (model_id, "catalog")

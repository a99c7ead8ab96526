"""Base-model resolution: user entries, local folders, the Hugging Face cache, the catalog."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lora_lint.arch.resolve import (
    CATALOG_PATH,
    ModelConfigError,
    known_model_ids,
    resolve_base_model,
    torchtune_model_id,
)

TINY = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "vocab_size": 256}


@pytest.fixture(autouse=True)
def empty_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test sees an empty hub cache, never the machine's own."""
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


def write_config(folder: Path, config: dict | None = None, name: str = "config.json") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(json.dumps(config or TINY), encoding="utf-8")
    return path


def resolve(name: str, *, config_dir: Path | None = None, cwd: Path | None = None, user_models=None):
    return resolve_base_model(name, config_dir=config_dir, cwd=cwd or Path("/nonexistent"), user_models=user_models)


# ---------------------------------------------------------------- local folders


def test_absolute_directory(tmp_path: Path) -> None:
    config_file = write_config(tmp_path / "my-model")
    found = resolve(str(tmp_path / "my-model"))
    assert found is not None
    assert (found.source, found.path, found.config) == ("local-dir", str(config_file), TINY)
    assert found.model_id == str(tmp_path / "my-model")


def test_relative_to_the_config_folder_before_cwd(tmp_path: Path) -> None:
    write_config(tmp_path / "configs" / "models" / "tiny", {**TINY, "hidden_size": 32})
    write_config(tmp_path / "cwd" / "models" / "tiny", {**TINY, "hidden_size": 16})
    found = resolve("models/tiny", config_dir=tmp_path / "configs", cwd=tmp_path / "cwd")
    assert found is not None and found.config["hidden_size"] == 32


def test_relative_to_cwd(tmp_path: Path) -> None:
    write_config(tmp_path / "cwd" / "models" / "tiny")
    found = resolve("./models/tiny", config_dir=tmp_path / "configs", cwd=tmp_path / "cwd")
    assert found is not None and found.source == "local-dir"


def test_path_straight_to_a_config_file(tmp_path: Path) -> None:
    config_file = write_config(tmp_path / "exported", name="base.json")
    found = resolve("exported/base.json", cwd=tmp_path)
    assert found is not None and found.path == str(config_file)


def test_folder_without_config_json_is_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert resolve("empty", cwd=tmp_path) is None


def test_local_folder_shadows_the_catalog(tmp_path: Path) -> None:
    write_config(tmp_path / "meta-llama" / "Llama-2-7b-hf")
    found = resolve("meta-llama/Llama-2-7b-hf", cwd=tmp_path)
    assert found is not None and found.source == "local-dir"


@pytest.mark.parametrize("content", ["{not json", "[1, 2]"])
def test_unreadable_config_is_an_error(tmp_path: Path, content: str) -> None:
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text(content, encoding="utf-8")
    with pytest.raises(ModelConfigError, match="config.json"):
        resolve("broken", cwd=tmp_path)


# ---------------------------------------------------------------- Hugging Face cache


def add_snapshot(cache: Path, repo: str, commit: str, config: dict, *, main: bool = False, mtime: int = 0) -> Path:
    repo_dir = cache / ("models--" + repo.replace("/", "--"))
    config_file = write_config(repo_dir / "snapshots" / commit, config)
    if mtime:
        os.utime(config_file, (mtime, mtime))
    if main:
        (repo_dir / "refs").mkdir(exist_ok=True)
        (repo_dir / "refs" / "main").write_text(commit, encoding="utf-8")
    return config_file


def test_cache_prefers_the_snapshot_main_points_to(empty_hf_cache: Path) -> None:
    current = add_snapshot(empty_hf_cache, "acme/tiny", "aaa111", {**TINY, "hidden_size": 8}, main=True, mtime=1000)
    add_snapshot(empty_hf_cache, "acme/tiny", "bbb222", {**TINY, "hidden_size": 9}, mtime=2000)
    found = resolve("acme/tiny")
    assert found is not None
    assert (found.source, found.path, found.config["hidden_size"]) == ("hf-cache", str(current), 8)


def test_cache_without_refs_takes_the_newest_snapshot(empty_hf_cache: Path) -> None:
    add_snapshot(empty_hf_cache, "acme/tiny", "old", {**TINY, "hidden_size": 8}, mtime=1000)
    add_snapshot(empty_hf_cache, "acme/tiny", "new", {**TINY, "hidden_size": 9}, mtime=2000)
    found = resolve("acme/tiny")
    assert found is not None and found.config["hidden_size"] == 9


def test_cache_matches_ids_case_insensitively(empty_hf_cache: Path) -> None:
    add_snapshot(empty_hf_cache, "Acme/Tiny", "aaa", TINY, main=True)
    found = resolve("acme/tiny")
    assert found is not None and found.source == "hf-cache"


def test_cache_under_hf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    add_snapshot(tmp_path / "home" / "hub", "gpt2", "abc", TINY, main=True)
    found = resolve("gpt2")
    assert found is not None and found.source == "hf-cache"


def test_cache_shadows_the_catalog(empty_hf_cache: Path) -> None:
    add_snapshot(empty_hf_cache, "meta-llama/Llama-2-7b-hf", "abc", TINY, main=True)
    found = resolve("meta-llama/Llama-2-7b-hf")
    assert found is not None and (found.source, found.config) == ("hf-cache", TINY)


def test_cached_repo_without_config_falls_through_to_the_catalog(empty_hf_cache: Path) -> None:
    (empty_hf_cache / "models--gpt2" / "snapshots" / "abc").mkdir(parents=True)
    found = resolve("gpt2")
    assert found is not None and found.source == "catalog"


# ---------------------------------------------------------------- user entries


def test_user_entry_as_a_config(tmp_path: Path) -> None:
    found = resolve("acme/private-7b", user_models={"acme/private-7b": TINY})
    assert found is not None
    assert (found.model_id, found.source, found.config, found.path) == ("acme/private-7b", "user", TINY, None)


def test_user_entry_with_a_path(tmp_path: Path) -> None:
    config_file = write_config(tmp_path / "weights" / "private")
    found = resolve("acme/private", cwd=tmp_path, user_models={"acme/private": {"path": "weights/private"}})
    assert found is not None and (found.source, found.path) == ("user", str(config_file))


def test_user_entry_same_as_a_catalog_model() -> None:
    found = resolve("acme/llama-finetune", user_models={"acme/llama-finetune": {"same-as": "NousResearch/Llama-2-7b-hf"}})
    assert found is not None
    assert (found.model_id, found.source) == ("acme/llama-finetune", "user")
    assert found.config["hidden_size"] == 4096 and found.config["vocab_size"] == 32000


def test_user_entry_key_is_case_insensitive_and_wins_over_the_catalog() -> None:
    found = resolve("META-LLAMA/llama-2-7b-hf", user_models={"meta-llama/Llama-2-7b-hf": TINY})
    assert found is not None and (found.source, found.config) == ("user", TINY)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"same-as": "acme/nothing-like-it"}, "not in the built-in catalog"),
        ({"path": "no/such/folder"}, "no config.json"),
        ("meta-llama/Llama-2-7b-hf", "must be a table"),
    ],
)
def test_malformed_user_entries_are_errors(tmp_path: Path, entry, message: str) -> None:
    with pytest.raises(ModelConfigError, match=message):
        resolve("acme/model", cwd=tmp_path, user_models={"acme/model": entry})


# ---------------------------------------------------------------- built-in catalog


@pytest.mark.parametrize(
    ("name", "model_id"),
    [
        ("meta-llama/Llama-2-7b-hf", "meta-llama/Llama-2-7b-hf"),
        ("META-LLAMA/LLAMA-2-7B-HF", "meta-llama/Llama-2-7b-hf"),
        ("gpt2", "openai-community/gpt2"),
        ("NousResearch/Llama-2-7b-hf", "meta-llama/Llama-2-7b-hf"),
        ("meta-llama/Meta-Llama-3-8B-Instruct", "meta-llama/Meta-Llama-3-8B"),
        ("google/gemma-3-1b-it", "google/gemma-3-1b-pt"),
        ("meta-llama/Meta-Llama-3.1-8B", "meta-llama/Llama-3.1-8B"),
        # quantized re-uploads: the suffix goes, the bare name is matched under any organisation
        ("unsloth/llama-3-8b-bnb-4bit", "meta-llama/Meta-Llama-3-8B"),
        ("unsloth/Llama-3.2-1B-Instruct-unsloth-bnb-4bit", "meta-llama/Llama-3.2-1B"),
        ("TheBloke/Llama-2-7B-GPTQ", "meta-llama/Llama-2-7b-hf"),
        ("nvidia/Qwen3-30B-A3B-NVFP4", "Qwen/Qwen3-30B-A3B"),
        ("hugging-quants/Meta-Llama-3.1-405B-BNB-NF4-BF16", "meta-llama/Llama-3.1-405B"),
        ("casperhansen/llama-3-70b-fp16", "meta-llama/Meta-Llama-3-70B"),
        ("Qwen/Qwen2.5-7B-Instruct-GPTQ-Int4", "Qwen/Qwen2.5-7B"),
        ("RedHatAI/Meta-Llama-3.1-8B-Instruct-quantized.w4a16", "meta-llama/Llama-3.1-8B"),
        # mirror organisations: matched by name even without a suffix
        ("unsloth/mistral-7b-v0.3", "mistralai/Mistral-7B-v0.3"),
    ],
)
def test_catalog_names_and_aliases(name: str, model_id: str) -> None:
    found = resolve(name)
    assert found is not None
    assert (found.model_id, found.source, found.path) == (model_id, "catalog", None)
    assert found.config["model_type"]


@pytest.mark.parametrize(
    "name",
    [
        "acme/Llama-2-7b-hf",  # a fine-tune that reuses the name is not assumed to be the base model
        "acme/not-a-model",
        "axolotl-quants/Llama-4-Scout-17B-16E-Linearized-bnb-nf4-bf16",  # a different module layout
        "",
        "   ",
    ],
)
def test_unknown_names_resolve_to_none(name: str) -> None:
    assert resolve(name) is None


@pytest.mark.parametrize(
    ("name", "model_id"),
    [
        ("Qwen/Qwen3.5-35B-A3B-Base", "Qwen/Qwen3.5-35B-A3B"),  # base and instruct share one architecture
        ("ByteDance-Seed/Seed-OSS-36B-Instruct", "ByteDance-Seed/Seed-OSS-36B-Base"),
        ("nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16", "nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16"),
        ("unsloth/Qwen3.5-27B-bnb-4bit", "Qwen/Qwen3.5-27B"),
        ("RedHatAI/GLM-4.5-Air-FP8-dynamic", "zai-org/GLM-4.5-Air"),
        ("allenai/Olmo-3-7B-Instruct-SFT", "allenai/Olmo-3-7B-Instruct"),  # one architecture for every post-training stage
        ("swiss-ai/Apertus-8B-2509", "swiss-ai/Apertus-8B-Instruct-2509"),
        ("ai21labs/AI21-Jamba-1.5-Large", "ai21labs/AI21-Jamba-1.5-Large"),
    ],
)
def test_newer_catalog_entries_and_their_re_uploads(name: str, model_id: str) -> None:
    found = resolve(name)
    assert found is not None and (found.model_id, found.source) == (model_id, "catalog")


def test_catalog_sources_do_not_change_what_resolves() -> None:
    """The ``sources`` table is documentation: its keys are entries, never extra names to match."""
    sources = json.loads(Path(CATALOG_PATH).read_text(encoding="utf-8"))["sources"]
    for model_id in sources:
        found = resolve(model_id)
        assert found is not None and found.model_id == model_id
        assert "sources" not in found.config


def test_catalog_configs_are_copies() -> None:
    first = resolve("gpt2")
    assert first is not None
    first.config["n_layer"] = 1
    again = resolve("gpt2")
    assert again is not None and again.config["n_layer"] == 12


def test_known_model_ids() -> None:
    ids = known_model_ids()
    assert ids == sorted(ids) and len(ids) >= 80
    assert {"meta-llama/Llama-2-7b-hf", "mistralai/Mistral-7B-v0.1", "openai-community/gpt2"} <= set(ids)
    assert "NousResearch/Llama-2-7b-hf" not in ids  # aliases are not catalog ids


# ---------------------------------------------------------------- torchtune builders


@pytest.mark.parametrize(
    ("builder", "model_id"),
    [
        ("torchtune.models.llama3.lora_llama3_8b", "meta-llama/Meta-Llama-3-8B"),
        ("torchtune.models.llama2.qlora_llama2_7b", "meta-llama/Llama-2-7b-hf"),
        ("lora_llama3_1_8b", "meta-llama/Llama-3.1-8B"),
        ("lora_llama3_2_1b", "meta-llama/Llama-3.2-1B"),
        ("torchtune.models.llama3_3.lora_llama3_3_70b", "meta-llama/Llama-3.3-70B-Instruct"),
        ("lora_mistral_7b", "mistralai/Mistral-7B-v0.1"),
        ("torchtune.models.qwen2_5.lora_qwen2_5_7b_instruct", "Qwen/Qwen2.5-7B-Instruct"),
        ("lora_gemma_2b", "google/gemma-2b"),
        ("lora_phi3_mini", "microsoft/Phi-3-mini-4k-instruct"),
        ("lora_code_llama2_7b", "codellama/CodeLlama-7b-hf"),
        ("qwen3_moe_30b_a3b_instruct", "Qwen/Qwen3-30B-A3B"),
        ("torchtune.models.clip.clip_vision_encoder", None),
        ("lora_llama3_8b_but_not_really", None),
    ],
)
def test_torchtune_builders(builder: str, model_id: str | None) -> None:
    assert torchtune_model_id(builder) == model_id


def test_every_torchtune_builder_resolves_in_the_catalog() -> None:
    catalog = json.loads(Path(CATALOG_PATH).read_text(encoding="utf-8"))
    for builder in catalog["torchtune_builders"]:
        target = torchtune_model_id(builder)
        assert target is not None and resolve(target) is not None, builder


# ---------------------------------------------------------------- cost on the static path


def test_resolution_imports_nothing_heavy_and_loads_the_catalog_lazily(tmp_path: Path) -> None:
    write_config(tmp_path / "local")
    script = f"""
import sys
from pathlib import Path
from lora_lint.arch import resolve
found = resolve.resolve_base_model("local", config_dir=None, cwd=Path({str(tmp_path)!r}), user_models=None)
assert found.source == "local-dir"
assert resolve._catalog.cache_info().currsize == 0, "catalog read for a local model"
assert resolve.resolve_base_model("gpt2", config_dir=None, cwd=Path("."), user_models=None).source == "catalog"
heavy = sorted(m for m in ("torch", "transformers", "peft", "numpy") if m in sys.modules)
assert not heavy, heavy
"""
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "no-cache")}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------- coverage of real configs


def base_model_coverage(corpus: Path) -> tuple[list[str], list[str]]:
    """Distinct ``base_model:`` names in a folder of axolotl configs: (resolved, unresolved)."""
    names = set()
    for path in corpus.rglob("*.y*ml"):
        match = re.search(r"^base_model:\s*['\"]?([^'\"#\s]+)", path.read_text(encoding="utf-8"), re.MULTILINE)
        if match:
            names.add(match.group(1))
    resolved = sorted(name for name in names if resolve(name) is not None)
    return resolved, sorted(names - set(resolved))


AXOLOTL_CORPUS = Path(
    os.environ.get("LORA_LINT_AXOLOTL_CORPUS") or Path(__file__).resolve().parents[2] / "shared" / "corpus" / "axolotl"
)


@pytest.mark.skipif(not AXOLOTL_CORPUS.is_dir(), reason="no axolotl corpus (set LORA_LINT_AXOLOTL_CORPUS to a folder)")
def test_axolotl_corpus_coverage() -> None:
    resolved, unresolved = base_model_coverage(AXOLOTL_CORPUS)
    share = len(resolved) / (len(resolved) + len(unresolved))
    print(f"\nresolved {len(resolved)} of {len(resolved) + len(unresolved)} base models ({share:.1%})")
    print("unresolved:", *unresolved, sep="\n  ")
    assert share >= 0.70

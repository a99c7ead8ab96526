"""Configuration-level rules on the cases their examples do not cover: framework defaults, rsLoRA, resumed
adapters, suppressions and project options."""

from __future__ import annotations

import json

import pytest

from tests.rule_harness import codes, lint_source

AXOLOTL = "base_model: NousResearch/Llama-2-7b-hf\nadapter: lora\nlora_target_linear: true\n"
LLAMAFACTORY = "model_name_or_path: meta-llama/Meta-Llama-3-8B\nstage: sft\nfinetuning_type: lora\nlora_target: all\n"
TORCHTUNE = "model:\n  _component_: torchtune.models.llama3_1.lora_llama3_1_8b\n  lora_attn_modules: [q_proj, v_proj]\n"


def findings(source: str, fmt: str, folder, options: dict | None = None) -> list:
    results = lint_source(source, fmt, folder, options)
    assert not any(r.error for r in results), [r.error.message for r in results if r.error]
    # Architecture rules (LL2xx) depend on the base model's size; they have their own tests.
    return [f for r in results for f in r.findings if not f.code.startswith("LL2")]


def hits(source: str, fmt: str, folder, options: dict | None = None) -> list[str]:
    return sorted(f.code for f in findings(source, fmt, folder, options))


def message(source: str, fmt: str, folder, code: str) -> str:
    (found,) = [f for f in findings(source, fmt, folder) if f.code == code]
    return found.message


# Each framework's default alpha


@pytest.mark.parametrize(
    ("source", "fmt", "scale"),
    [
        ("r: 64\ntarget_modules: [q_proj]\n", "lora-config", "0.125"),
        ("from peft import LoraConfig\nLoraConfig(r=16, target_modules=['q_proj'])\n", "python", "0.5"),
        ('{"peft_type": "LORA", "r": 32, "target_modules": ["q_proj"]}', "peft", "0.25"),
        (TORCHTUNE + "  lora_rank: 64\n", "torchtune", "0.25"),
        ("model: m\npeft_config:\n  name: lora\n  r: 32\n", "llamafactory", "0.5"),
    ],
)
def test_fixed_default_alpha_at_a_higher_rank_is_an_error(tmp_path, source, fmt, scale):
    assert "LL108" in hits(source, fmt, tmp_path)
    assert f"scaled by alpha/r = {scale}" in message(source, fmt, tmp_path, "LL108")


@pytest.mark.parametrize(
    ("source", "fmt"),
    [
        ("target_modules: [q_proj]\n", "lora-config"),  # PEFT's r 8 with its alpha 8
        ("r: 4\ntarget_modules: [q_proj]\n", "lora-config"),  # alpha 8 at r 4 scales up, not down
        (TORCHTUNE + "  lora_rank: 16\n", "torchtune"),  # torchtune's alpha 16 at r 16
        (LLAMAFACTORY + "lora_rank: 64\n", "llamafactory"),  # LLaMA-Factory's alpha = 2 x rank
        ("r: 64\nuse_rslora: true\ntarget_modules: [q_proj]\n", "lora-config"),  # rsLoRA: 8 / sqrt(64) = 1
    ],
)
def test_default_alpha_that_keeps_the_scale_is_fine(tmp_path, source, fmt):
    assert [c for c in hits(source, fmt, tmp_path) if c in ("LL105", "LL106", "LL108")] == []


def test_axolotl_has_no_default_alpha(tmp_path):
    assert hits(AXOLOTL + "lora_r: 64\n", "axolotl", tmp_path) == ["LL506"]
    assert "lora_r and lora_alpha are not set" in message(AXOLOTL, "axolotl", tmp_path, "LL506")


def test_axolotl_resuming_an_adapter_takes_its_saved_rank_and_alpha(tmp_path):
    assert "LL506" not in hits(AXOLOTL + "lora_model_dir: my-org/my-adapter\n", "axolotl", tmp_path)


# alpha/r grading


@pytest.mark.parametrize(
    ("r", "alpha", "expected"),
    [(64, 16, ["LL105"]), (64, 15, ["LL106"]), (32, 16, ["LL105"]), (16, 16, []), (8, 32, []), (8, 33, ["LL107"])],
)
def test_alpha_over_r_bands(tmp_path, r, alpha, expected):
    assert hits(f"r: {r}\nlora_alpha: {alpha}\ntarget_modules: [q_proj]\n", "lora-config", tmp_path) == expected


def test_alpha_below_rank_is_only_information(tmp_path):
    (found,) = findings(AXOLOTL + "lora_r: 32\nlora_alpha: 16\n", "axolotl", tmp_path)
    assert (found.code, found.severity, found.line) == ("LL105", "info", 5)
    assert "scaled by alpha/r = 0.5" in found.message
    assert codes(lint_source(AXOLOTL + "lora_r: 32\nlora_alpha: 16\n", "axolotl", tmp_path)) == []


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"LL105": {"intended_alpha_over_r": 0.5}}, []),
        ({"alpha-below-rank": {"intended_alpha_over_r": 2.0}}, ["LL105"]),
        ({"LL106": {"min_alpha_over_r": 0.6}}, ["LL106", "LL105"]),
        ({"LL106": {"min_alpha_over_r": 0.6}, "LL105": {"far_below_alpha_over_r": 0.6}}, ["LL106"]),
    ],
)
def test_alpha_thresholds_are_project_options(tmp_path, options, expected):
    source = "r: 32\nlora_alpha: 16\ntarget_modules: [q_proj]\n"
    assert sorted(hits(source, "lora-config", tmp_path, options)) == sorted(expected)


def test_rslora_is_judged_by_its_own_scale(tmp_path):
    source = "r: 64\nlora_alpha: {}\nuse_rslora: true\ntarget_modules: [q_proj]\n"
    assert hits(source.format(128), "lora-config", tmp_path) == ["LL109"]
    text = message(source.format(128), "lora-config", tmp_path, "LL109")
    assert "alpha/sqrt(r) = 16" in text and "lora_alpha 16 gives scale 2" in text
    assert hits(source.format(16), "lora-config", tmp_path) == []  # scale 2
    assert hits(source.format(4), "lora-config", tmp_path) == []  # 4/64 would be LL106 without rsLoRA


def test_rslora_at_a_small_rank_is_not_reported(tmp_path):
    assert hits("r: 8\nlora_alpha: 16\nuse_rslora: true\ntarget_modules: [q_proj]\n", "lora-config", tmp_path) == []


def test_every_named_init_method_explains_itself(tmp_path):
    for method in ("pissa", "olora", "loftq", "eva", "corda", "gaussian", "orthogonal"):
        source = f"r: 16\nlora_alpha: 16\ninit_lora_weights: {method}\ntarget_modules: [q_proj]\n"
        assert hits(source, "lora-config", tmp_path) == ["LL110"], method


# Resuming a saved adapter


def save_adapter(folder, r: int = 16, targets: tuple[str, ...] = ("q_proj", "v_proj")) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    config = {"peft_type": "LORA", "r": r, "lora_alpha": r, "target_modules": list(targets)}
    (folder / "adapter_config.json").write_text(json.dumps(config))


def test_resume_with_another_rank_is_an_error(tmp_path):
    save_adapter(tmp_path / "stage1", r=8)
    source = AXOLOTL.replace("lora_target_linear: true\n", "") + (
        "lora_model_dir: stage1\nlora_r: 16\nlora_alpha: 16\nlora_target_modules: [q_proj, v_proj]\n"
    )
    (found,) = findings(source, "axolotl", tmp_path)
    assert (found.code, found.line) == ("LL303", 3)
    assert "r 8 there, 16 here" in found.message


def test_resume_from_the_newest_checkpoint_of_an_output_folder(tmp_path):
    save_adapter(tmp_path / "out" / "checkpoint-100", r=16, targets=("q_proj", "v_proj"))
    save_adapter(tmp_path / "out" / "checkpoint-200", r=16, targets=("q_proj", "k_proj", "v_proj"))
    source = "r: 16\nlora_alpha: 16\ntarget_modules: [q_proj, v_proj]\nresume_adapter: out\n"
    assert "target_modules [k_proj, q_proj, v_proj] there" in message(source, "lora-config", tmp_path, "LL303")


def test_resume_with_the_same_shapes_is_fine(tmp_path):
    save_adapter(tmp_path / "stage1", targets=("v_proj", "q_proj"))
    source = "r: 16\nlora_alpha: 16\ntarget_modules: [q_proj, v_proj]\nresume_adapter: stage1\n"
    assert hits(source, "lora-config", tmp_path) == []


def test_llamafactory_new_adapter_on_top_of_a_saved_one_is_no_resume(tmp_path):
    save_adapter(tmp_path / "sft", r=8)
    source = LLAMAFACTORY + "lora_rank: 16\nadapter_name_or_path: sft\n"
    assert "LL303" in hits(source, "llamafactory", tmp_path)
    assert "LL303" not in hits(source + "create_new_adapter: true\n", "llamafactory", tmp_path)


# Suppressions


def test_suppression_comment_silences_the_finding_on_its_line(tmp_path):
    source = AXOLOTL + "lora_r: 32\nlora_alpha: 16  # lora-lint: disable=LL105 -- scale tuned with lr 2e-4\n"
    assert hits(source, "axolotl", tmp_path) == []


def test_suppression_by_name_on_the_line_before(tmp_path):
    source = AXOLOTL + "lora_r: 32\n# lora-lint: disable=alpha-below-rank -- QLoRA recipe\nlora_alpha: 16\n"
    assert hits(source, "axolotl", tmp_path) == []


def test_unused_suppression_is_reported_where_it_is(tmp_path):
    source = AXOLOTL + "lora_r: 16  # lora-lint: disable=LL105 -- no longer needed\nlora_alpha: 16\n"
    (found,) = findings(source, "axolotl", tmp_path)
    assert (found.code, found.severity, found.line) == ("LL009", "warning", 4)
    assert "disable=LL105" in found.message


# Format-specific behaviour


def test_string_numbers_are_only_reported_where_pyyaml_keeps_them(tmp_path):
    plain = "r: 16\nlora_alpha: 16\ntarget_modules: [q_proj]\nlearning_rate: 1e-4\n"
    assert hits(plain, "lora-config", tmp_path) == ["LL004"]
    assert "LL004" not in hits(AXOLOTL + "lora_r: 16\nlora_alpha: 16\nlearning_rate: 1e-4\n", "axolotl", tmp_path)
    assert "LL004" not in hits(LLAMAFACTORY + "lora_rank: 8\nlearning_rate: 1e-4\n", "llamafactory", tmp_path)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("bf16: true\n", []),
        ("bf16: false\n", ["LL401"]),
        ("bnb_config_kwargs:\n  bnb_4bit_quant_type: fp4\nbf16: true\n", ["LL402"]),
    ],
)
def test_axolotl_qlora_takes_compute_dtype_from_training_precision(tmp_path, extra, expected):
    qlora = AXOLOTL.replace("adapter: lora", "adapter: qlora")
    source = qlora + "load_in_4bit: true\nlora_r: 16\nlora_alpha: 16\n" + extra
    assert hits(source, "axolotl", tmp_path) == expected


def test_torchtune_qlora_is_not_a_bitsandbytes_config(tmp_path):
    source = TORCHTUNE.replace("lora_llama3_1_8b", "qlora_llama3_1_8b") + "  lora_rank: 16\n  lora_alpha: 16\n"
    assert hits(source, "torchtune", tmp_path) == []


def test_plain_lora_config_4bit_defaults_are_bitsandbytes_defaults(tmp_path):
    source = "r: 16\nlora_alpha: 16\ntarget_modules: [q_proj]\nload_in_4bit: true\n"
    assert hits(source, "lora-config", tmp_path) == ["LL401", "LL402"]


def test_axolotl_target_parameters_count_as_targets(tmp_path):
    source = "base_model: m\nadapter: lora\nlora_r: 16\nlora_alpha: 16\n"
    source += "lora_target_parameters:\n  - mlp.experts.gate_up_proj\n"
    assert "LL503" not in hits(source, "axolotl", tmp_path)
    assert "LL503" in hits(source.split("lora_target_parameters")[0], "axolotl", tmp_path)


@pytest.mark.parametrize(
    ("options", "expected"),
    [(None, []), ({"LL305": {"max_learning_rate": 1e-3}}, ["LL305"]), ({"LL301": {"high_rank": 16}}, ["LL301"])],
)
def test_training_thresholds_are_project_options(tmp_path, options, expected):
    source = "r: 16\nlora_alpha: 16\ntarget_modules: [q_proj]\nlearning_rate: 0.002\ndataset_examples: 500\n"
    assert hits(source, "lora-config", tmp_path, options) == expected


def test_dataset_size_from_the_project_setting(tmp_path):
    from lora_lint.project import Project

    project = Project(tmp_path)
    project.dataset_examples = 300
    results = lint_source("r: 64\nlora_alpha: 64\ntarget_modules: [q_proj]\n", "lora-config", tmp_path, project=project)
    assert codes(results) == ["LL301"]

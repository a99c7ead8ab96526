"""Architecture facts of a setup: resolution, positions of unmatched targets, budget sweep, torchtune."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lora_lint.arch import AdapterSpec, architecture_for, count_parameters
from lora_lint.arch.facts import FACT_KEYS, architecture_facts, rank_sweep
from lora_lint.commands import params
from lora_lint.lora_setup import Location, LoraSetup

TINY = {
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 256,
}


def _setup(**settings) -> LoraSetup:
    setup = LoraSetup(path="cfg/lora.yaml", format="lora-config", start=Location(1, 1, ""))
    for name, value in settings.items():
        setup.set(name, value, Location(4, 17, name) if name == "target_modules" else None)
    return setup


def _facts(setup: LoraSetup, tmp_path: Path, models: dict | None = None) -> dict:
    return architecture_facts(setup, cwd=tmp_path, user_models=models or {})


def test_every_key_is_present_without_a_base_model(tmp_path):
    facts = _facts(_setup(r=8, target_modules=["q_proj"]), tmp_path)
    assert set(FACT_KEYS) <= set(facts)
    assert facts["base_model"] is None and facts["architecture"] is None and facts["_architecture"] is None


def test_unknown_base_model_says_why(tmp_path):
    facts = _facts(_setup(base_model="acme/secret-7b", r=8), tmp_path)
    assert facts["architecture_skipped"] == "unknown base model acme/secret-7b"
    assert facts["trainable_params"] is None


def test_unsupported_family_is_skipped_not_raised(tmp_path):
    facts = _facts(
        _setup(base_model="acme/next", r=8),
        tmp_path,
        {"acme/next": {"model_type": "jamba"}},
    )
    assert "jamba" in facts["architecture_skipped"]


def test_image_text_loading_of_a_model_described_by_its_text_model_is_not_counted(tmp_path):
    # axolotl with a processor (and LLaMA-Factory always) loads MllamaForConditionalGeneration, whose modules
    # are named model.language_model.layers...; the architecture model describes MllamaForCausalLM.
    setup = _setup(base_model="meta-llama/Llama-3.2-11B-Vision", r=8, target_modules=["q_proj"])
    assert _facts(setup, tmp_path)["trainable_params"] > 0
    setup.extras["loads_multimodal"] = True
    facts = _facts(setup, tmp_path)
    assert "describes only its text model" in facts["architecture_skipped"]
    assert facts["trainable_params"] is None
    gemma = _setup(base_model="google/gemma-3-4b-it", r=8, target_modules=["q_proj"])
    gemma.extras["loads_multimodal"] = True  # described with its vision tower: counted
    assert _facts(gemma, tmp_path)["trainable_params"] > 0


def test_user_model_entry_resolves_and_counts(tmp_path):
    facts = _facts(
        _setup(base_model="acme/tiny", r=4, target_modules=["q_proj", "v_prj"]),
        tmp_path,
        {"acme/tiny": TINY},
    )
    assert facts["architecture"] == {
        "family": "llama",
        "resolved_via": "user",
        "model_id": "acme/tiny",
        "note": None,
    }
    assert facts["trainable_params"] == 2 * 4 * (64 + 64)
    assert facts["adapted_layers"] == 2
    [record] = facts["unmatched_targets"]
    assert (
        record["target"],
        record["suggestion"],
        record["line"],
        record["column"],
    ) == ("v_prj", "v_proj", 4, 17)
    assert "q_proj" in record["valid_names"]
    json.dumps({k: v for k, v in facts.items() if not k.startswith("_")})


def test_local_directory_with_config_json(tmp_path):
    model_dir = tmp_path / "models" / "tiny"
    model_dir.mkdir(parents=True)
    (model_dir / "config.json").write_text(json.dumps(TINY), encoding="utf-8")
    facts = _facts(_setup(base_model=str(model_dir), r=4, target_modules="all-linear"), tmp_path)
    assert facts["architecture"]["resolved_via"] == "local-dir"
    assert facts["adapted_layers"] == 14


def test_rank_sweep_equals_direct_counts():
    arch = architecture_for(TINY)
    spec = AdapterSpec(
        r=8,
        target_modules=["q_proj", "down_proj"],
        rank_pattern={"down_proj": 2},
        use_dora=True,
        modules_to_save=["lm_head"],
    )
    for row in rank_sweep(arch, spec, (1, 3, 64)):
        direct = count_parameters(arch, spec.with_rank(row["r"]))
        assert (row["trainable_params"], row["total_params"]) == (
            direct.trainable_params,
            direct.total_params,
        )


def test_head_and_tying_facts(tmp_path):
    bert = {"acme/bert": {"model_type": "bert", "num_hidden_layers": 2}}
    frozen = _facts(_setup(base_model="acme/bert", r=8, target_modules=["query"]), tmp_path, bert)
    assert frozen["classifier_head_trainable"] is False
    trained = _facts(
        _setup(base_model="acme/bert", r=8, target_modules=["query"], task_type="SEQ_CLS"),
        tmp_path,
        bert,
    )
    assert trained["classifier_head_trainable"] is True
    tied = {"acme/tied": {**TINY, "tie_word_embeddings": True}}
    facts = _facts(
        _setup(
            base_model="acme/tied",
            r=8,
            target_modules=["q_proj"],
            modules_to_save=["lm_head"],
        ),
        tmp_path,
        tied,
    )
    assert facts["tied_embedding_adapted"] is True
    assert facts["modules_to_save_heavy"] == [{"entry": "lm_head", "params": 256 * 64}]


def test_oversized_rank_and_unused_pattern_keys(tmp_path):
    setup = _setup(
        base_model="acme/tiny",
        r=128,
        target_modules=["k_proj"],
        rank_pattern={"q_prj": 4},
    )
    facts = _facts(setup, tmp_path, {"acme/tiny": TINY})
    assert facts["oversized_rank_layers"][0] == {
        "name": "model.layers.0.self_attn.k_proj",
        "r": 128,
        "in_features": 64,
        "out_features": 32,
    }
    assert [(k["key"], k["pattern"]) for k in facts["unused_pattern_keys"]] == [("rank_pattern", "q_prj")]


def test_torchtune_builder_names_the_base_model(tmp_path):
    setup = LoraSetup(
        path="recipe.yaml",
        format="torchtune",
        extras={"builder": "torchtune.models.llama3.lora_llama3_8b"},
    )
    setup.set("r", 8)
    setup.set("target_modules", ["q_proj", "v_proj"])
    facts = _facts(setup, tmp_path)
    assert facts["base_model"] == "meta-llama/Meta-Llama-3-8B"
    assert facts["trainable_params"] == 32 * 8 * ((4096 + 4096) + (4096 + 1024))


def test_torchtune_phi3_is_not_counted(tmp_path):
    setup = LoraSetup(
        path="recipe.yaml",
        format="torchtune",
        extras={"builder": "torchtune.models.phi3.lora_phi3_mini"},
    )
    setup.set("r", 8)
    setup.set("target_modules", ["q_proj"])
    facts = _facts(setup, tmp_path)
    assert facts["trainable_params"] is None and "torchtune" in facts["architecture_skipped"]


def test_params_command_prints_a_sweep(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "lora.yaml"
    config.write_text("base_model: meta-llama/Llama-2-7b-hf\nr: 4\nlora_alpha: 8\ntarget_modules: [q_proj, v_proj]\n")
    args = argparse.Namespace(
        config=str(config),
        ranks="4,8",
        output_format="json",
        min_percent=0.05,
        max_percent=None,
    )
    assert params.run(args) == 0
    [report] = json.loads(capsys.readouterr().out)
    assert [(row["r"], row["trainable_params"], row["in_band"]) for row in report["rows"]] == [
        (4, 2_097_152, False),
        (4, 2_097_152, False),
        (8, 4_194_304, True),
    ]
    args.output_format = "text"
    assert params.run(args) == 0
    assert "trainable params: 2,097,152 || all params: 6,740,512,768 || trainable%: 0.0311" in capsys.readouterr().out

"""Model building: CPU proxies, NF4 on CPU (and its eval-mode trap), shape checks, CUDA at full size."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

LLAMA_7B = json.loads((Path(__file__).parent / "scenarios/models/llama-7b/config.json").read_text())
TINY_LLAMA = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 512, "max_position_embeddings": 256}  # fmt: skip


def write_config(folder: Path, text: str, model: dict, name: str = "model") -> Path:
    (folder / name).mkdir(exist_ok=True)
    (folder / name / "config.json").write_text(json.dumps(model))
    path = folder / "lora.yaml"
    path.write_text(text + f"\nbase_model: {name}\ntask_type: CAUSAL_LM\n")
    return path


def config_check(path: Path, **options):
    from lora_lint.engine import Linter
    from lora_lint.project import Project
    from lora_lint.runtime.check import ConfigCheck, RuntimeOptions

    [result] = Linter(Project(path.parent)).lint_bytes(str(path), path.read_bytes())
    return ConfigCheck(result, RuntimeOptions(**{"device": "cpu", "steps": 10, **options}))


# -- proxy ------------------------------------------------------------------------------


@pytest.mark.parametrize(("heads", "kv", "proxy_heads", "proxy_kv"), [(32, 32, 4, 4), (32, 8, 4, 1), (64, 8, 8, 1), (28, 4, 7, 1), (71, 1, 4, 1), (16, 8, 4, 2)])  # fmt: skip
def test_proxy_keeps_the_grouped_query_ratio(heads, kv, proxy_heads, proxy_kv):
    from transformers import LlamaConfig

    from lora_lint.runtime.proxy import PROXY_HEAD_DIM, shrink_config

    config = LlamaConfig(hidden_size=heads * 128, num_attention_heads=heads, num_key_value_heads=kv,
                         intermediate_size=heads * 344, num_hidden_layers=32)  # fmt: skip
    plan = shrink_config(config)
    assert (config.num_attention_heads, config.num_key_value_heads) == (proxy_heads, proxy_kv)
    assert config.hidden_size == proxy_heads * PROXY_HEAD_DIM
    assert plan.width_ratio == pytest.approx(heads * 128 / config.hidden_size)
    assert config.intermediate_size / config.hidden_size == pytest.approx(344 / 128, rel=0.15)
    assert config.initializer_range == pytest.approx(0.02 * math.sqrt(plan.width_ratio))


def test_proxy_truncates_per_layer_settings_and_keeps_token_ids_in_the_vocabulary():
    from transformers import Qwen2Config

    from lora_lint.runtime.proxy import PROXY_LAYERS, PROXY_VOCAB, shrink_config

    config = Qwen2Config(hidden_size=3584, num_attention_heads=28, num_key_value_heads=4, num_hidden_layers=28,
                         vocab_size=152064, bos_token_id=151643, eos_token_id=151645)  # fmt: skip
    shrink_config(config)
    assert len(config.layer_types) == config.num_hidden_layers == PROXY_LAYERS
    assert config.vocab_size == PROXY_VOCAB
    assert config.bos_token_id < PROXY_VOCAB and config.eos_token_id < PROXY_VOCAB


def test_proxy_counts_match_the_architecture_model(tmp_path):
    path = write_config(tmp_path, "r: 16\nlora_alpha: 32\ntarget_modules: [q_proj, v_proj, down_proj]", LLAMA_7B)
    check = config_check(path)
    report = check.shapes()
    assert report.problems == []
    assert report.expected_from == "proxy config"
    # 2 layers x (q: 16*(64+64) + v: 16*(64+64) + down: 16*(176+64))
    assert report.trainable_params == report.expected_trainable_params == 2 * 16 * (128 + 128 + 240)
    assert check.facts["trainable_params"] == 32 * 16 * (8192 + 8192 + 15104)  # the static count at full size


def test_rank_wider_than_the_proxy_is_clamped_with_a_note(tmp_path):
    path = write_config(tmp_path, "r: 256\nlora_alpha: 512\ntarget_modules: [q_proj]", LLAMA_7B)
    check = config_check(path)
    built = check.model()
    assert built.setup.get("r") == 64 and built.setup.get("lora_alpha") == 128
    assert any("clamped" in note for note in built.notes)
    assert check.shapes().problems == []


def test_small_models_are_built_as_they_are(tmp_path):
    path = write_config(tmp_path, "r: 8\nlora_alpha: 16\ntarget_modules: [q_proj, v_proj]", TINY_LLAMA)
    built = config_check(path).model()
    assert built.proxy is None and built.weights == "random"
    assert built.model.get_nb_trainable_parameters()[0] == 2 * 2 * 8 * (64 + 64) - 2 * 8 * 32  # v_proj: out 32


def test_shapes_report_a_target_that_matches_nothing(tmp_path):
    path = write_config(tmp_path, "r: 8\nlora_alpha: 16\ntarget_modules: [q_proj, qkv_proj]", TINY_LLAMA)
    problems = config_check(path).shapes().problems
    assert any("qkv_proj" in p and "matched no layer" in p for p in problems)


def test_shapes_report_a_trainable_base_weight(tmp_path):
    from lora_lint.runtime.shapes import check_shapes

    path = write_config(tmp_path, "r: 8\nlora_alpha: 16\ntarget_modules: [q_proj]", TINY_LLAMA)
    built = config_check(path).model()
    built.model.get_base_model().model.layers[0].mlp.up_proj.weight.requires_grad_(True)
    problems = check_shapes(built).problems
    assert any("up_proj.weight: base weight is trainable" in p for p in problems)
    assert any("trainable parameters, the architecture model counts" in p for p in problems)


def test_unknown_base_model_is_skipped_not_failed(tmp_path):
    from lora_lint.runtime.build import Unsupported

    path = tmp_path / "lora.yaml"
    path.write_text("r: 8\nlora_alpha: 16\ntarget_modules: [q_proj]\nbase_model: nobody/private-model-xyz\n")
    with pytest.raises(Unsupported, match="not known offline"):
        config_check(path).model()


# -- NF4 on CPU -------------------------------------------------------------------------


def test_nf4_on_cpu_trains_even_after_an_eval_mode_forward(tmp_path):
    """The trap: an eval-mode no-grad forward repacks Linear4bit weights for a kernel without backward."""
    import torch

    pytest.importorskip("bitsandbytes")
    path = write_config(tmp_path, "r: 8\nlora_alpha: 16\ntarget_modules: [q_proj, v_proj]\nload_in_4bit: true\n"
                        "learning_rate: 0.002", TINY_LLAMA)  # fmt: skip
    check = config_check(path, steps=12)
    built = check.model()
    assert built.quantization == "nf4"
    assert any(type(m).__name__ == "Linear4bit" for m in built.model.modules())
    built.model.eval()  # what a careless evaluation would do first
    with torch.no_grad():
        built.model(input_ids=torch.tensor([[1, 2, 3, 4]]))
    result = check.smoke()
    assert result.record.grads_missing == [] and result.record.grads_zero == []
    assert "dead-adapter" not in {s.name for s in result.symptoms}
    assert check.shapes().problems == []


# -- CUDA -------------------------------------------------------------------------------

TINYLLAMA_1B = {"model_type": "llama", "hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 22,
                "num_attention_heads": 32, "num_key_value_heads": 4, "vocab_size": 32000,
                "max_position_embeddings": 2048, "rms_norm_eps": 1e-5, "tie_word_embeddings": False}  # fmt: skip


@pytest.mark.requires_cuda
def test_nf4_llama_of_a_billion_parameters_builds_and_trains_on_cuda(tmp_path):
    path = write_config(tmp_path, "r: 16\nlora_alpha: 32\ntarget_modules: [q_proj, k_proj, v_proj, o_proj, gate_proj, "
                        "up_proj, down_proj]\nload_in_4bit: true\ngradient_checkpointing: true\n"
                        "learning_rate: 0.0002\nmicro_batch_size: 4\nsequence_len: 256", TINYLLAMA_1B)  # fmt: skip
    check = config_check(path, device="cuda", steps=20)
    assert check.facts["base_params"] >= 1_000_000_000
    built = check.model()
    assert built.proxy is None and built.quantization == "nf4" and built.device == "cuda"
    report = check.shapes()
    assert report.problems == [] and report.expected_from == "config"
    assert report.trainable_params == check.facts["trainable_params"]
    result = check.smoke()
    assert all(math.isfinite(v) for v in result.record.losses)
    assert {s.name for s in result.symptoms} & {"dead-adapter", "divergence", "initial-loss"} == set()

"""The saved adapter's safetensors header: exact shapes without torch, mismatches with the config, hostile files."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from lora_lint.adapter_weights import (
    MAX_HEADER_BYTES,
    AdapterWeightsError,
    read_header,
    summarize,
)
from tests.rule_harness import lint_source

TINY_LLAMA = {
    "model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 256, "tie_word_embeddings": False,
}  # fmt: skip


def write_safetensors(path: Path, tensors: dict[str, tuple[str, list[int]]], *, data: bytes | None = None) -> None:
    """A valid safetensors file of zeros: what PEFT would write for these shapes."""
    header, offset = {}, 0
    sizes = {"F32": 4, "BF16": 2, "F16": 2, "U8": 1}
    for name, (dtype, shape) in tensors.items():
        size = sizes[dtype]
        for n in shape:
            size *= n
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps({"__metadata__": {"format": "pt"}, **header}).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + (data if data is not None else bytes(offset)))


def lora_tensors(modules: dict[str, tuple[int, int, int]], dtype: str = "F32") -> dict[str, tuple[str, list[int]]]:
    """PEFT's saved keys for ``{module: (r, in, out)}``."""
    tensors = {}
    for module, (r, fan_in, fan_out) in modules.items():
        tensors[f"base_model.model.{module}.lora_A.weight"] = (dtype, [r, fan_in])
        tensors[f"base_model.model.{module}.lora_B.weight"] = (dtype, [fan_out, r])
    return tensors


def attention(r: int, names=("q_proj", "v_proj"), layers: int = 2) -> dict[str, tuple[int, int, int]]:
    widths = {"q_proj": (64, 64), "k_proj": (64, 32), "v_proj": (64, 32), "o_proj": (64, 64)}
    return {f"model.layers.{i}.self_attn.{name}": (r, *widths[name]) for i in range(layers) for name in names}


def lint_adapter(tmp_path: Path, config: dict, tensors: dict | None) -> object:
    (tmp_path / "base").mkdir(exist_ok=True)
    (tmp_path / "base" / "config.json").write_text(json.dumps(TINY_LLAMA), encoding="utf-8")
    if tensors is not None:
        write_safetensors(tmp_path / "adapter_model.safetensors", tensors)
    source = json.dumps({"peft_type": "LORA", "base_model_name_or_path": "base", "lora_alpha": 16, **config})
    (result,) = lint_source(source, "peft", tmp_path)
    return result


def test_header_gives_the_exact_trainable_count_and_modules(tmp_path: Path):
    write_safetensors(tmp_path / "w.safetensors", lora_tensors(attention(8)))
    summary = summarize(read_header(tmp_path / "w.safetensors"))
    assert summary["params"] == summary["lora_params"] == 2 * (8 * 64 + 64 * 8 + 8 * 64 + 32 * 8)
    assert summary["module_names"] == ["q_proj", "v_proj"] and len(summary["modules"]) == 4


def test_agreeing_adapter_has_no_mismatch_and_matches_the_count(tmp_path: Path):
    result = lint_adapter(tmp_path, {"r": 8, "target_modules": ["q_proj", "v_proj"]}, lora_tensors(attention(8)))
    assert result.facts["saved_weights_mismatch"] is None
    assert result.facts["saved_weights"]["params"] == result.facts["trainable_params"]  # the architecture's own count
    assert "LL213" not in [f.code for f in result.findings]


def test_trainable_count_when_the_base_model_is_unknown(tmp_path: Path):
    write_safetensors(tmp_path / "adapter_model.safetensors", lora_tensors(attention(8)))
    source = json.dumps({"peft_type": "LORA", "base_model_name_or_path": "my-org/private", "r": 8, "lora_alpha": 16,
                         "target_modules": ["q_proj", "v_proj"]})  # fmt: skip
    (result,) = lint_source(source, "peft", tmp_path)
    assert result.facts["architecture"] is None
    assert result.facts["trainable_params"] == result.facts["saved_weights"]["params"] == 3584
    assert result.facts["saved_weights"]["rank_counts"] == {"8": 4}


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"r": 16, "target_modules": ["q_proj", "v_proj"]}, "rank 8 where the config gives 16 (every module)"),
        ({"r": 8, "target_modules": ["q_proj"]}, "tensors for 2 modules (v_proj) that target_modules does not select"),
        ({"r": 8, "target_modules": ["q_proj", "k_proj", "v_proj"]}, "no tensors for k_proj, which target_modules selects"),
        ({"r": 8, "target_modules": ["q_proj", "v_proj"], "use_dora": True}, "no DoRA magnitudes although use_dora is true"),
        ({"r": 8, "target_modules": "model.layers.0.*(q_proj|v_proj)"}, "tensors for 2 modules (q_proj, v_proj)"),
        ({"r": 8, "target_modules": ["q_proj", "v_proj"], "layers_to_transform": [0]}, "tensors for 2 modules"),
        ({"r": 8, "target_modules": ["q_proj", "v_proj"], "rank_pattern": {"v_proj": 4}}, "rank 8 where the config gives 4"),
    ],
)  # fmt: skip
def test_mismatches_are_errors(tmp_path: Path, config: dict, expected: str):
    result = lint_adapter(tmp_path, config, lora_tensors(attention(8)))
    assert expected in result.facts["saved_weights_mismatch"]
    finding = next(f for f in result.findings if f.code == "LL213")
    assert finding.severity == "error" and "PEFT cannot load or resume this adapter" in finding.message


def test_rank_pattern_that_matches_the_tensors_agrees(tmp_path: Path):
    modules = {**attention(8, ("q_proj",)), **attention(16, ("v_proj",))}
    result = lint_adapter(tmp_path, {"r": 8, "target_modules": ["q_proj", "v_proj"], "rank_pattern": {"v_proj": 16}},
                          lora_tensors(modules))  # fmt: skip
    assert result.facts["saved_weights_mismatch"] is None


def test_no_weights_file_means_no_weights_facts(tmp_path: Path):
    result = lint_adapter(tmp_path, {"r": 8, "target_modules": ["q_proj"]}, None)
    assert result.facts["saved_weights"] is None and result.facts["saved_weights_mismatch"] is None


def header_bytes(header: object) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\x01\x02", "shorter than the 8-byte header length"),
        (struct.pack("<Q", 10**15) + b"{}", "the header claims 1,000,000,000,000,000 bytes, over safetensors' limit"),
        (struct.pack("<Q", MAX_HEADER_BYTES) + b"{}", "truncated"),
        (struct.pack("<Q", 5) + b"{nope", "not valid JSON"),
        (struct.pack("<Q", 2) + b"\xff\xfe", "not valid JSON"),
        (header_bytes([1, 2]), "not a JSON object"),
        (header_bytes({"a.lora_A.weight": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}), "the file is truncated"),
        (header_bytes({"a": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}}) + bytes(12), "do not hold"),
        (header_bytes({"a": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 1]}}) + bytes(1), "unknown dtype"),
        (header_bytes({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 0]}}), "invalid shape"),
        (header_bytes({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}), "invalid data offsets"),
        (header_bytes({"a": [1]}), "not described by an object"),
    ],
)  # fmt: skip
def test_hostile_files_give_one_line(tmp_path: Path, content: bytes, reason: str):
    path = tmp_path / "w.safetensors"
    path.write_bytes(content)
    with pytest.raises(AdapterWeightsError) as raised:
        read_header(path)
    assert reason in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"{bad", "shorter than the 8-byte header length"),
        (struct.pack("<Q", 10**15) + b"{}", "the header claims 1,000,000,000,000,000 bytes"),
        (struct.pack("<Q", 40) + b'{"a": ', "truncated"),
    ],
)
def test_hostile_file_beside_a_config_is_one_input_error_exit_2(tmp_path: Path, content: bytes, reason: str):
    (tmp_path / "adapter_model.safetensors").write_bytes(content)
    config = tmp_path / "adapter_config.json"
    config.write_text(json.dumps({"peft_type": "LORA", "base_model_name_or_path": "x/y", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj"]}))
    done = subprocess.run([sys.executable, "-m", "lora_lint", "check", str(config)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = (done.stdout + done.stderr).strip().splitlines()
    (line,) = [line for line in lines if "adapter_model.safetensors" in line]
    assert line.startswith(str(config)) and "beside it cannot be read" in line and reason in line
    assert "Traceback" not in done.stderr


def test_matches_what_peft_saves(tmp_path: Path):
    """A real adapter saved by PEFT: the header's count equals PEFT's trainable parameters, DoRA and embeddings included."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    peft = pytest.importorskip("peft")
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**{k: v for k, v in TINY_LLAMA.items() if k != "model_type"}))
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "embed_tokens"], use_dora=True,
                             rank_pattern={"v_proj": 2}, modules_to_save=["lm_head"])  # fmt: skip
    peft_model = peft.get_peft_model(model, config)
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    peft_model.save_pretrained(tmp_path / "adapter")
    summary = summarize(read_header(tmp_path / "adapter" / "adapter_model.safetensors"))
    assert summary["params"] == trainable
    assert summary["module_names"] == ["embed_tokens", "q_proj", "v_proj"]
    (tmp_path / "adapter" / "config.json").write_text(json.dumps(TINY_LLAMA), encoding="utf-8")
    saved = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    saved["base_model_name_or_path"] = str(tmp_path / "adapter")
    (result,) = lint_source(json.dumps(saved), "peft", tmp_path / "adapter")
    assert result.facts["saved_weights_mismatch"] is None, result.facts["saved_weights_mismatch"]
    saved["r"] = 8  # an edited config: the saved tensors no longer fit
    (result,) = lint_source(json.dumps(saved), "peft", tmp_path / "adapter")
    assert "rank 4 where the config gives 8" in result.facts["saved_weights_mismatch"]


@pytest.mark.parametrize(
    "config",
    [
        {"r": 4, "target_modules": "model.layers.[0-9.self_attn.q_proj"},
        {"r": 4, "target_modules": ["q_proj", "v_proj"], "rank_pattern": {"q_proj[": 8}},
    ],
)
def test_a_pattern_that_is_not_a_regex_is_reported_not_raised(tmp_path: Path, config: dict):
    """The saved weights are compared without tripping on the bad pattern, which the count reports (LL203/LL212)."""
    result = lint_adapter(tmp_path, config, lora_tensors(attention(4)))
    assert result.error is None
    bad = config["target_modules"] if isinstance(config["target_modules"], str) else "q_proj["
    assert any(bad in f.message for f in result.findings if f.code in ("LL203", "LL212"))

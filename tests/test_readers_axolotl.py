"""axolotl reader: values, defaults, notes, and real configs from the axolotl project."""

from __future__ import annotations

from pathlib import Path

import pytest

from lora_lint.document import load_document
from lora_lint.readers import detect_format, read_file

HERE = Path(__file__).parent
EXAMPLES = HERE.parent / "examples" / "axolotl"
SAMPLE = sorted((HERE / "data" / "corpus_sample").glob("*.y*ml"))
CORPUS = Path("/work/shared/corpus/axolotl")

GENUINE_UNKNOWN_KEYS = {
    # options axolotl's schema no longer has (or never had): axolotl drops them silently
    "gptq_groupsize",
    "gptq_model_v1",
    "gptq_disable_exllama",
    "base_model_ignore_patterns",
    "sample_packing_seq_len_multiplier",
    "debug",
    "test_value",
    "torch_dtype",
    # misspellings
    "adam_eps",
    "context_parapllel_size",
}


def read_one(path: Path, text: str):
    path.write_text(text)
    (setup,) = read_file(str(path), text.encode())
    return setup


def test_good_qlora_values_locations_and_defaults() -> None:
    path = EXAMPLES / "good-qlora.yml"
    (setup,) = read_file(str(path), path.read_bytes())
    assert setup.format == "axolotl" and setup.notes == []
    assert (setup.get("r"), setup.get("lora_alpha"), setup.get("lora_dropout")) == (16, 32, 0.05)
    assert setup.get("target_linear") is True and setup.get("target_modules") == []
    assert setup.location_of("r").line == 11 and setup.location_of("r").column == 1
    assert setup.extras["adapter"] == "qlora" and setup.get("load_in_4bit") is True
    assert setup.get("bnb_4bit_quant_type") == "nf4" and setup.get("bnb_4bit_use_double_quant") is True
    assert setup.get("torch_dtype") == "auto" and setup.location_of("torch_dtype").key == "bf16"
    assert setup.get("dataset_examples") == 200 and setup.get("datasets")[0]["type"] == "alpaca"
    assert setup.get("resume_adapter") is None and "resume_adapter" not in setup.settings  # empty lora_model_dir
    assert setup.start.line == 2
    assert not setup.settings["bias"].explicit and setup.get("bias") == "none"


def test_absent_rank_and_alpha_have_no_default(tmp_path: Path) -> None:
    setup = read_one(tmp_path / "a.yml", "base_model: gpt2\nadapter: lora\n")
    assert "r" not in setup.settings and "lora_alpha" not in setup.settings
    assert setup.get("lora_dropout") == 0.0 and setup.get("sequence_len") == 512 and setup.get("micro_batch_size") == 1


def test_typos_and_other_formats_names(tmp_path: Path) -> None:
    path = EXAMPLES / "bad-typo-key.yml"
    (setup,) = read_file(str(path), path.read_bytes())
    suggestions = {n.data["key"]: n.data["suggestion"] for n in setup.notes if n.kind == "unknown-key"}
    assert suggestions == {"lora_rank": "lora_r", "lora_alpah": "lora_alpha"}
    text = "base_model: gpt2\nadapter: lora\nlora_alpha: 16\nr: 8\nuse_dora: true\nsequence_len: 512\nmicro_batch_size: 2\nval_set_size: 0\n"
    setup = read_one(tmp_path / "b.yml", text)
    suggestions = {n.data["key"]: n.data["suggestion"] for n in setup.notes if n.kind == "unknown-key"}
    assert suggestions == {"r": "lora_r", "use_dora": "peft_use_dora"}


def test_lenient_numbers_and_wrong_types(tmp_path: Path) -> None:
    setup = read_one(tmp_path / "c.yml", "adapter: lora\nlora_r: '16'\nlearning_rate: 2e-4\nlora_target_modules: 5\n")
    assert setup.get("r") == 16 and setup.get("learning_rate") == 2e-4  # pydantic's lax mode accepts these
    kinds = [(n.kind, n.data["key"]) for n in setup.notes]
    assert ("wrong-type", "lora_target_modules") in kinds and ("wrong-type", "lora_r") not in kinds
    assert ("yaml-string-number", "learning_rate") in kinds


def test_legacy_switches_and_task_type(tmp_path: Path) -> None:
    text = "adapter: lora\nlora_r: 8\nflash_attention: true\nfp16: true\nmodel_type: AutoModelForSequenceClassification\n"
    setup = read_one(tmp_path / "d.yml", text)
    assert setup.get("attn_implementation") == "flash_attention_2"
    assert setup.get("torch_dtype") == "float16" and setup.get("task_type") == "SEQ_CLS"


def test_full_fine_tune_gives_no_setup(tmp_path: Path) -> None:
    text = "base_model: gpt2\nadapter:\nlora_r:\ndatasets:\n  - path: x\nmicro_batch_size: 2\n"
    assert read_file(str(tmp_path / "e.yml"), text.encode()) == []


def test_lora_keys_without_adapter_still_read(tmp_path: Path) -> None:
    setup = read_one(tmp_path / "f.yml", "base_model: gpt2\nlora_r: 8\nlora_alpha: 16\n")
    assert setup.extras["adapter"] is None and setup.get("r") == 8


def _check_real_config(path: Path) -> None:
    raw = path.read_bytes()
    assert detect_format(str(path), load_document(str(path), raw).data) == "axolotl"
    for setup in read_file(str(path), raw):
        unknown = {n.data["key"] for n in setup.notes if n.kind == "unknown-key" and not n.data["version_dependent"]}
        assert unknown <= GENUINE_UNKNOWN_KEYS, path  # keys of other axolotl versions (fsdp) are LL008, not unknown
        assert not [n for n in setup.notes if n.kind == "wrong-type"], path


@pytest.mark.parametrize("path", SAMPLE, ids=lambda p: p.name)
def test_corpus_sample(path: Path) -> None:
    _check_real_config(path)


def test_corpus_sample_setups() -> None:
    setups = {p.name: read_file(str(p), p.read_bytes()) for p in SAMPLE}
    (phi3,) = setups["phi_phi3-ft.yml"]
    assert phi3.extras["adapter"] == "lora" and phi3.get("r") == 64
    assert [n.data["key"] for n in phi3.notes if n.kind == "unknown-key"] == ["debug"]
    (qlora,) = setups["llama-3_qlora.yml"]
    assert (qlora.get("r"), qlora.get("lora_alpha"), qlora.extras["adapter"]) == (32, 16, "qlora")
    (typo,) = setups["falcon-h1_falcon-h1-1b-qlora-cp.yaml"]
    assert [n.data["suggestion"] for n in typo.notes if n.kind == "unknown-key"] == ["context_parallel_size"]


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared corpus is not on this machine")
def test_whole_corpus_reads_as_axolotl() -> None:
    paths = sorted(p for p in CORPUS.rglob("*") if p.suffix in (".yml", ".yaml"))
    assert len(paths) > 150
    for path in paths:
        _check_real_config(path)


def test_chunked_loss_needs_its_plugin(tmp_path: Path) -> None:
    base = "base_model: m\nadapter: lora\nbf16: true\n"
    cce = "plugins:\n  - axolotl.integrations.cut_cross_entropy.CutCrossEntropyPlugin\n"
    liger = "plugins:\n  - axolotl.integrations.liger.LigerPlugin\n"
    cases = {
        base: False,
        base + cce: True,  # the plugin's cut_cross_entropy defaults to true
        base + cce + "cut_cross_entropy: false\n": False,
        base + "cut_cross_entropy: true\n": False,  # plugin options do nothing without the plugin
        base + liger + "liger_rms_norm: true\n": False,
        base + liger + "liger_fused_linear_cross_entropy: true\n": True,
        base + "chunked_cross_entropy: true\n": True,
    }
    for text, expected in cases.items():
        setup = read_one(tmp_path / "config.yml", text)
        assert setup.get("chunked_loss") is expected, text
    setup = read_one(tmp_path / "config.yml", base + cce + "cut_cross_entropy: true\n")
    assert setup.location_of("chunked_loss").key == "cut_cross_entropy"

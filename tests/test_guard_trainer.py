"""The guard inside the real ``transformers.Trainer``: tiny random Llama, CPU, seconds per run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from tests.guard_models import (
    TokenDataset,
    counting_sequences,
    stride_sequences,
    tiny_lora_model,
    training_args,
)

AXOLOTL_CONFIG = """\
# my run
base_model: models/tiny
adapter: lora
lora_r: 8  # rank
lora_alpha: 16
lora_dropout: 0.05
lora_target_modules: [q_proj, v_proj]
lora_model_dir: ./old-adapter   # resume from here
resume_from_checkpoint: ./out/checkpoint-50
learning_rate: 0.01
"""


def train(tmp_path, callback, *, model=None, eval_sequences=None, extra_callbacks=(), **args):
    from transformers import Trainer

    sequences = args.pop("train", None) or counting_sequences(256, 0)
    eval_steps = args.pop("eval_steps", 5)
    overrides = {"eval_strategy": "steps", "eval_steps": eval_steps} if eval_sequences else {}
    trainer = Trainer(
        model=model if model is not None else tiny_lora_model(),
        args=training_args(tmp_path / "out", **overrides, **args),
        train_dataset=TokenDataset(sequences),
        eval_dataset=TokenDataset(eval_sequences) if eval_sequences else None,
        callbacks=[c for c in (callback, *extra_callbacks) if c is not None],
    )
    trainer.train()
    return trainer


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: extra threads only add contention on a shared CI box."""
    from tests.guard_models import single_thread

    with single_thread():
        yield


def guard_json(tmp_path) -> dict:
    return json.loads((tmp_path / "out" / "lora-guard.json").read_text())


@pytest.fixture
def axolotl_config(tmp_path):
    path = tmp_path / "axolotl.yaml"
    path.write_text(AXOLOTL_CONFIG)
    return path


def test_plateau_is_stopped_inside_the_window_with_a_rollback(tmp_path, axolotl_config):
    from lora_lint.guard import LoraGuardCallback

    callback = LoraGuardCallback(config=axolotl_config)
    trainer = train(tmp_path, callback, model=tiny_lora_model(lora_alpha=1e-4), max_steps=100)
    report = guard_json(tmp_path)
    assert report["verdict"] == "stopped" and report["symptom"] == "plateau"
    assert 10 <= report["step"] <= 20 and trainer.state.global_step == report["step"]
    assert report["planned_steps"] == 100
    assert report["evidence"]["basis"] == "training loss only (no evaluation data)"
    rollback = report["rollback"]
    assert (rollback["r"], rollback["lora_alpha"]) == (16, 32)
    text = Path(rollback["config_path"]).read_text()
    assert "lora_r: 16  # rank" in text and "lora_alpha: 32" in text and "# my run" in text
    assert "lora_model_dir" not in text and "resume_from_checkpoint" not in text
    assert axolotl_config.read_text() == AXOLOTL_CONFIG  # the user's file is never changed
    assert report["plot"] and (tmp_path / "out" / "lora-guard-loss.png").is_file()
    logged = [entry for entry in trainer.state.log_history if "lora_guard/verdict" in entry]
    assert logged and logged[0]["lora_guard/exit_code"] == 1


def test_healthy_run_finishes_clean_with_the_same_weights(tmp_path):
    import torch

    from lora_lint.guard import LoraGuardCallback

    def adapter(trainer):
        return {k: v.detach().clone() for k, v in trainer.model.named_parameters() if "lora_" in k}

    settings = {"max_steps": 30, "logging_steps": 1}
    targets = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    callback = LoraGuardCallback()
    guarded = train(tmp_path / "a", callback, model=tiny_lora_model(targets=targets), **settings)
    plain = train(tmp_path / "b", None, model=tiny_lora_model(targets=targets), **settings)
    assert callback.decision.verdict == "clean", callback.decision.message
    assert guarded.state.global_step == 30
    weights, reference = adapter(guarded), adapter(plain)
    assert weights.keys() == reference.keys()
    assert all(torch.equal(weights[k], reference[k]) for k in weights)
    assert guard_json(tmp_path / "a")["verdict"] == "clean"


class PoisonAdapter:
    """Writes NaN into one lora_A at a given step: what an fp16 overflow leaves behind."""

    def __init__(self, step: int) -> None:
        self.step = step

    def __getattr__(self, name):
        if name.startswith("on_"):
            return lambda *args, **kwargs: None
        raise AttributeError(name)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step == self.step:
            import torch

            with torch.no_grad():
                next(p for n, p in model.named_parameters() if "lora_A" in n).fill_(float("nan"))


def test_nan_run_is_stopped_within_one_logging_interval(tmp_path):
    from lora_lint.guard import LoraGuardCallback

    callback = LoraGuardCallback()
    trainer = train(tmp_path, callback, extra_callbacks=[PoisonAdapter(6)], max_steps=40, logging_steps=4)
    decision = callback.decision
    assert decision.verdict == "stopped" and decision.symptom == "divergence", decision.message
    assert 6 < decision.step <= 6 + 4 and trainer.state.global_step == decision.step
    # the trainer's NaN filter logged finite losses: the guard saw through them
    assert all(math.isfinite(e["loss"]) for e in trainer.state.log_history if "loss" in e)


def test_a_dead_adapter_is_stopped_in_the_first_steps(tmp_path):
    from lora_lint.guard import LoraGuardCallback

    callback = LoraGuardCallback()
    trainer = train(tmp_path, callback, model=tiny_lora_model(lora_dropout=1.0), max_steps=50)
    decision = callback.decision
    assert decision.symptom == "dead-adapter" and "lora_dropout" in decision.message
    assert decision.step == 2 and trainer.state.global_step <= 3


def test_overfit_is_warned_and_the_suggestion_written(tmp_path, axolotl_config):
    from lora_lint.guard import LoraGuardCallback

    targets = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    callback = LoraGuardCallback(config=axolotl_config)
    trainer = train(tmp_path, callback, model=tiny_lora_model(r=16, lora_alpha=32, targets=targets),
                    train=stride_sequences(64, 1, 1), eval_sequences=stride_sequences(8, 3, 2),
                    max_steps=60, logging_steps=3, eval_steps=3)  # fmt: skip
    report = guard_json(tmp_path)
    assert report["verdict"] == "warned" and report["symptom"] == "overfit", report["message"]
    assert trainer.state.global_step == 60  # a warning lets the run go on
    suggestion = report["rollback"]
    assert suggestion["r"] == 4 and suggestion["lora_alpha"] == 8  # r 8 in the config: halved, alpha with it
    text = Path(suggestion["config_path"]).read_text()
    assert "lora_dropout: 0.1" in text and "weight_decay: 0.01" in text


def test_a_config_that_is_not_lora_is_reported_and_training_goes_on(tmp_path):
    from lora_lint.guard import LoraGuardCallback

    config = tmp_path / "notes.yaml"
    config.write_text("title: my notes\nitems: [1, 2]\n")
    callback = LoraGuardCallback(config=config)
    train(tmp_path, callback, model=tiny_lora_model(lora_alpha=1e-4), max_steps=60)
    report = guard_json(tmp_path)
    assert report["verdict"] == "stopped" and report["rollback"] is None
    assert "holds no LoRA configuration" in report["message"]


def test_an_unwritable_output_dir_is_logged_and_training_goes_on(tmp_path, caplog):
    from lora_lint.guard import LoraGuardCallback

    blocker = tmp_path / "file"
    blocker.write_text("")
    callback = LoraGuardCallback(output_dir=blocker / "sub")
    trainer = train(tmp_path, callback, model=tiny_lora_model(lora_alpha=1e-4), max_steps=60)
    assert callback.decision.verdict == "stopped"  # the decision stands, only the file is missing
    assert trainer.state.global_step == callback.decision.step
    assert any("cannot write" in note for note in callback.guard.notes)
    report = str(blocker / "sub" / "lora-guard.json")
    assert any(note.startswith(f"cannot write {report}: ") and note.endswith("; the guard keeps watching without a report")
               for note in callback.guard.notes)  # fmt: skip


def test_guard_errors_never_reach_the_training_loop(tmp_path, monkeypatch, caplog):
    from lora_lint.guard import LoraGuardCallback, core

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(core.Guard, "_observe", broken)
    callback = LoraGuardCallback()
    trainer = train(tmp_path, callback, max_steps=6, logging_steps=1)
    assert trainer.state.global_step == 6
    assert "internal error" in caplog.text and "boom" in caplog.text


def test_bad_options_fail_at_construction():
    from lora_lint.guard import LoraGuardCallback

    with pytest.raises(ValueError, match="on_overfit"):
        LoraGuardCallback(on_overfit="panic")
    with pytest.raises(ValueError, match="window"):
        LoraGuardCallback(window=(0.3, 0.2))


def test_trl_sft_trainer_is_stopped_on_a_plateau(tmp_path):
    pytest.importorskip("trl")
    from datasets import Dataset
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast
    from trl import SFTConfig, SFTTrainer

    from lora_lint.guard import LoraGuardCallback
    from tests.guard_models import VOCAB

    vocabulary = {f"t{i}": i for i in range(VOCAB)}
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocabulary, unk_token="t0")),
                                        pad_token="t0", eos_token="t1")  # fmt: skip
    args = SFTConfig(output_dir=str(tmp_path), max_steps=100, logging_steps=2, per_device_train_batch_size=8,
                     learning_rate=1e-2, report_to="none", save_strategy="no", use_cpu=True, disable_tqdm=True,
                     lr_scheduler_type="constant")  # fmt: skip
    callback = LoraGuardCallback()
    trainer = SFTTrainer(model=tiny_lora_model(lora_alpha=1e-4), args=args, processing_class=tokenizer,
                         train_dataset=Dataset.from_dict({"input_ids": counting_sequences(256, 0)}),
                         callbacks=[callback])  # fmt: skip
    trainer.train()
    assert callback.decision.symptom == "plateau" and 10 <= callback.decision.step <= 20
    assert trainer.state.global_step == callback.decision.step

"""The guard as a Lightning callback, on a tiny random Llama on CPU."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")
lightning = pytest.importorskip("lightning.pytorch")

from tests.guard_models import (
    TokenDataset,
    counting_sequences,
    single_thread,
    stride_sequences,
    tiny_lora_model,
)

ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class LoraModule(lightning.LightningModule):
    def __init__(self, model, learning_rate=1e-2):
        super().__init__()
        self.model = model
        self.learning_rate = learning_rate

    def training_step(self, batch, batch_idx):
        loss = self.model(**batch).loss
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self.model(**batch).loss)

    def configure_optimizers(self):
        import torch

        return torch.optim.AdamW([p for p in self.parameters() if p.requires_grad], lr=self.learning_rate)


def fit(tmp_path, callbacks, *, model, train, val=None, max_steps=100, every=2):
    from torch.utils.data import DataLoader

    trainer = lightning.Trainer(
        max_steps=max_steps, log_every_n_steps=every, accelerator="cpu", enable_progress_bar=False,
        enable_checkpointing=False, enable_model_summary=False, default_root_dir=tmp_path, callbacks=callbacks,
        logger=lightning.loggers.CSVLogger(tmp_path), val_check_interval=every if val else None,
        check_val_every_n_epoch=None if val else 1, num_sanity_val_steps=0,
    )  # fmt: skip
    loaders = {"train_dataloaders": DataLoader(TokenDataset(train), batch_size=8, shuffle=True)}
    if val:
        loaders["val_dataloaders"] = DataLoader(TokenDataset(val), batch_size=8)
    with single_thread():
        lightning.seed_everything(0, verbose=False)
        trainer.fit(LoraModule(model), **loaders)
    return trainer


def test_plateau_stops_a_lightning_run_inside_the_window(tmp_path):
    from lora_lint.guard import LoraGuardLightningCallback

    callback = LoraGuardLightningCallback()
    trainer = fit(tmp_path, [callback], model=tiny_lora_model(lora_alpha=1e-4), train=counting_sequences(256, 0))
    decision = callback.decision
    assert decision.verdict == "stopped" and decision.symptom == "plateau", decision.message
    assert 10 <= decision.step <= 20 and trainer.global_step <= decision.step + 1
    assert json.loads((tmp_path / "lora-guard.json").read_text())["symptom"] == "plateau"


def test_healthy_and_nan_and_overfit_lightning_runs(tmp_path):
    import torch

    from lora_lint.guard import LoraGuardLightningCallback

    healthy = LoraGuardLightningCallback()
    fit(tmp_path / "healthy", [healthy], model=tiny_lora_model(targets=ALL_LINEAR), train=counting_sequences(256, 0),
        max_steps=30, every=1)  # fmt: skip
    assert healthy.decision.verdict == "clean", healthy.decision.message

    class Poison(lightning.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.global_step == 6:
                with torch.no_grad():
                    next(p for n, p in pl_module.named_parameters() if "lora_A" in n).fill_(float("nan"))

    diverged = LoraGuardLightningCallback()
    trainer = fit(tmp_path / "nan", [Poison(), diverged], model=tiny_lora_model(), train=counting_sequences(256, 0),
                  max_steps=40, every=4)  # fmt: skip
    assert diverged.decision.symptom == "divergence" and diverged.decision.step <= 6 + 4
    assert trainer.global_step <= 6 + 4 + 1

    overfit = LoraGuardLightningCallback()
    fit(tmp_path / "overfit", [overfit], model=tiny_lora_model(r=16, lora_alpha=32, targets=ALL_LINEAR),
        train=stride_sequences(64, 1, 1), val=stride_sequences(8, 3, 2), max_steps=60, every=3)  # fmt: skip
    assert overfit.decision.verdict == "warned" and overfit.decision.symptom == "overfit", overfit.decision.message


def test_post_mortem_of_an_unguarded_lightning_run(tmp_path, capsys):
    from lora_lint.cli import main

    fit(tmp_path, [], model=tiny_lora_model(lora_alpha=1e-4), train=counting_sequences(256, 0), max_steps=60)
    assert main(["guard-report", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "metrics.csv: post-mortem: the guard would have stopped the run at step" in out and "(plateau)" in out

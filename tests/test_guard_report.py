"""``lora-lint guard-report``, post-mortems, the plain-loop API and the axolotl plugin's hooks.

Pure Python except where marked: the post-mortem and the decisions need no torch.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from lora_lint.cli import main
from lora_lint.guard.core import Guard
from lora_lint.guard.postmortem import PostmortemError, read_history

AXOLOTL_CONFIG = """\
base_model: models/tiny
adapter: lora
lora_r: 8
lora_alpha: 16
lora_target_modules: [q_proj, v_proj]
resume_from_checkpoint: ./out/checkpoint-50
"""


def trainer_state(folder, losses, evals=(), max_steps=None):
    folder.mkdir(parents=True, exist_ok=True)
    history = [{"loss": v, "grad_norm": 1.0, "step": s} for s, v in losses]
    history += [{"eval_loss": v, "step": s} for s, v in evals]
    history.sort(key=lambda e: e["step"])
    state = {"max_steps": max_steps or losses[-1][0], "global_step": losses[-1][0], "log_history": history}
    (folder / "trainer_state.json").write_text(json.dumps(state))
    return folder


def flat(steps, every=2, seed=0):
    rng = random.Random(seed)
    return [(s, 4.16 + rng.gauss(0, 0.01)) for s in range(every, steps + 1, every)]


def falling(steps, every=2):
    return [(s, 1.0 + 3.0 * math.exp(-s / 30)) for s in range(every, steps + 1, every)]


def test_post_mortem_of_a_flat_trainer_run_names_the_step(tmp_path, capsys):
    run = trainer_state(tmp_path / "out" / "checkpoint-100", flat(100), max_steps=1000)
    assert main(["guard-report", str(tmp_path / "out")]) == 1
    out = capsys.readouterr().out
    assert "post-mortem: the guard would have stopped the run at step 100 (plateau)" in out
    assert str(run / "trainer_state.json") in out


def test_post_mortem_with_the_config_writes_the_rollback(tmp_path, capsys):
    config = tmp_path / "axolotl.yaml"
    config.write_text(AXOLOTL_CONFIG)
    run = trainer_state(tmp_path / "out", flat(100), max_steps=500)
    assert main(["guard-report", str(run), "--config", str(config), "--format", "json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["symptom"] == "plateau" and 50 <= document["step"] <= 100
    rollback = document["rollback"]
    text = Path(rollback["config_path"]).read_text()
    assert "lora_r: 16" in text and "lora_alpha: 32" in text and "resume_from_checkpoint" not in text
    assert json.loads((run / "lora-guard.json").read_text())["verdict"] == "stopped"
    assert main(["guard-report", str(run)]) == 1  # now the guard's own report is read back
    assert "the guard stopped the run" in capsys.readouterr().out


def test_post_mortem_of_a_healthy_run_is_clean_and_of_an_overfit_run_warns(tmp_path, capsys):
    healthy = trainer_state(tmp_path / "a", falling(200), [(s, 1.2 + 3.0 * math.exp(-s / 30)) for s in range(20, 201, 20)])
    assert main(["guard-report", str(healthy)]) == 0
    evals = [(20, 3.0), (40, 2.5), (60, 2.4), (80, 2.45), (100, 2.5), (120, 2.56), (140, 2.6)]
    overfit = trainer_state(tmp_path / "b", falling(140), evals)
    assert main(["guard-report", str(overfit)]) == 3
    assert "(overfit)" in capsys.readouterr().out


def test_nan_in_the_log_history_is_divergence(tmp_path):
    losses = falling(40)
    losses[10] = (losses[10][0], float("nan"))
    assert main(["guard-report", str(trainer_state(tmp_path, losses))]) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no lora-guard.json, trainer_state.json"),
        ("{broken", "not valid JSON"),
        ('{"log_history": []}', "holds no training loss"),
        ('{"hello": 1}', "no log_history list"),
    ],
)
def test_bad_run_folders_are_one_line_and_exit_2(tmp_path, capsys, content, message):
    if content is not None:
        (tmp_path / "trainer_state.json").write_text(content)
    assert main(["guard-report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_missing_folder_and_a_broken_guard_report_exit_2(tmp_path, capsys):
    assert main(["guard-report", str(tmp_path / "nope")]) == 2
    (tmp_path / "lora-guard.json").write_text('{"verdict": "maybe"}')
    assert main(["guard-report", str(tmp_path)]) == 2
    assert "not one of clean, stopped, warned" in capsys.readouterr().err


def test_lightning_metrics_csv_is_read(tmp_path):
    (tmp_path / "metrics.csv").write_text("epoch,step,train_loss,val_loss\n0,1,4.0,\n0,3,3.5,\n0,3,,3.9\n")
    history = read_history(tmp_path)
    assert history.losses == [(1, 4.0, None), (3, 3.5, None)] and history.evaluations == [(3, 3.9)]
    (tmp_path / "metrics.csv").write_text("epoch,step,acc\n0,1,0.5\n")
    with pytest.raises(PostmortemError, match="training loss column"):
        read_history(tmp_path)


def test_plain_loop_api(tmp_path):
    guard = Guard(output_dir=tmp_path, planned_steps=200)
    stopped_at = None
    for step, loss in flat(200, every=1):
        if guard.observe(step, loss):
            stopped_at = step
            break
    assert stopped_at is not None and 20 <= stopped_at <= 40  # inside 10-20 % of 200 steps
    decision = guard.finish()
    assert decision.verdict == "stopped" and decision.exit_code == 1
    report = json.loads((tmp_path / "lora-guard.json").read_text())
    assert set(report) >= {"verdict", "symptom", "step", "planned_steps", "evidence", "message", "rollback",
                           "memory", "plot"}  # fmt: skip
    assert "no config given" in report["message"]


def test_a_run_too_sparsely_logged_for_the_window_says_so():
    guard = Guard(planned_steps=100)
    for step, loss in flat(100, every=10):
        guard.observe(step, loss)
    assert guard.finish().verdict == "clean"
    assert any("logging_steps" in note for note in guard.notes)


def test_axolotl_plugin_hooks_build_the_callback(tmp_path):
    pytest.importorskip("transformers")
    from lora_lint.guard import LoraGuardCallback, LoraGuardPlugin

    config = tmp_path / "axolotl.yaml"
    config.write_text(AXOLOTL_CONFIG)
    plugin = LoraGuardPlugin()
    cfg = {"axolotl_config_path": str(config), "output_dir": str(tmp_path / "out"), "lora_guard_window": [0.05, 0.1],
           "lora_guard_on_overfit": "stop"}  # fmt: skip
    [callback] = plugin.add_callbacks_pre_trainer(cfg, model=None)
    assert isinstance(callback, LoraGuardCallback)
    assert callback.guard.config == config and callback.guard.window == (0.05, 0.1)
    assert callback.guard.on_overfit == "stop" and str(callback.guard.output_dir) == str(tmp_path / "out")
    assert plugin.add_callbacks_post_trainer(cfg, trainer=None) == []
    args_model = plugin.get_input_args()
    assert args_model == "lora_lint.guard.axolotl_plugin.LoraGuardArgs"


def test_post_mortem_imports_no_torch_or_numpy(tmp_path):
    import subprocess
    import sys

    trainer_state(tmp_path / "out", flat(100), max_steps=1000)
    code = ("import sys; from lora_lint.cli import main; code = main(['guard-report', sys.argv[1]]); "
            "print(code, sorted(m for m in ('torch', 'numpy', 'transformers', 'peft') if m in sys.modules))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out")], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "1 []"

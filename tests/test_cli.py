"""The command line as users and gating jobs see it: exit codes, formats, errors, start-up imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lora_lint.cli import main

GOOD_AXOLOTL = """\
base_model: TinyLlama/TinyLlama_v1.1
adapter: lora
lora_r: 16
lora_alpha: 32
lora_dropout: 0.05
lora_target_linear: true
learning_rate: 0.0002
"""
BAD_AXOLOTL = GOOD_AXOLOTL.replace("lora_dropout: 0.05", "lora_dropout: 1.0")


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LORA_LINT_CACHE_DIR", str(tmp_path / ".cache"))
    return tmp_path


def test_clean_config_exits_zero(project, capsys):
    (project / "train.yml").write_text(GOOD_AXOLOTL)
    code, out, _ = run_cli(["check", "train.yml", "--format", "text"], capsys)
    assert code == 0, out


def test_error_finding_exits_one_with_position(project, capsys):
    (project / "train.yml").write_text(BAD_AXOLOTL)
    code, out, _ = run_cli(["check", "train.yml", "--format", "text"], capsys)
    assert code == 1
    assert "train.yml:5:1: LL104 [error]" in out
    assert "lora_dropout: 1.0" in out  # the source excerpt


def test_fail_on_and_exit_zero(project, capsys):
    (project / "train.yml").write_text(BAD_AXOLOTL)
    assert run_cli(["check", "train.yml", "--exit-zero"], capsys)[0] == 0
    assert run_cli(["check", "train.yml", "--ignore", "LL104"], capsys)[0] == 0


def test_json_contract(project, capsys):
    (project / "train.yml").write_text(BAD_AXOLOTL)
    code, out, _ = run_cli(["check", "train.yml", "--format", "json"], capsys)
    report = json.loads(out)
    assert code == 1
    entry = report["files"][0]
    assert entry["format"] == "axolotl"
    for fact in ("r", "lora_alpha", "alpha_over_r", "scaling", "dataset_examples", "base_model", "trainable_params"):
        assert fact in entry["facts"]
    assert entry["facts"]["alpha_over_r"] == 2.0
    finding = next(f for f in entry["findings"] if f["code"] == "LL104")
    assert set(finding) == {"code", "name", "severity", "message", "line", "column", "key"}
    assert (finding["line"], finding["key"]) == (5, "lora_dropout")
    assert report["summary"]["by_severity"]["error"] >= 1


def test_sarif_is_valid_2_1_0(project, capsys):
    sarif_pydantic = pytest.importorskip("sarif_pydantic")
    (project / "train.yml").write_text(BAD_AXOLOTL)
    _, out, _ = run_cli(["check", "train.yml", "--format", "sarif"], capsys)
    log = sarif_pydantic.Sarif.model_validate_json(out)
    assert log.version == "2.1.0"
    result = next(r for r in json.loads(out)["runs"][0]["results"] if r["ruleId"] == "LL104")
    assert result["level"] == "error"
    assert result["locations"][0]["physicalLocation"]["region"] == {"startLine": 5, "startColumn": 1}


def test_github_annotations_and_auto(project, capsys, monkeypatch):
    (project / "train.yml").write_text(BAD_AXOLOTL)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    _, out, _ = run_cli(["check", "train.yml"], capsys)
    assert "::error file=train.yml,line=5,col=1,title=LL104 dropout-kills-adapter::" in out


def test_stdin(project, capsys, monkeypatch):
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(BAD_AXOLOTL.encode())))
    code, out, _ = run_cli(["check", "-", "--stdin-filename", "train.yml", "--format", "json"], capsys)
    assert code == 1
    assert json.loads(out)["files"][0]["path"] == "train.yml"


def test_folder_discovery_skips_non_lora_quietly(project, capsys):
    (project / "configs").mkdir()
    (project / "configs" / "train.yml").write_text(BAD_AXOLOTL)
    (project / "configs" / "compose.yml").write_text("services:\n  web:\n    image: nginx\n")
    (project / ".github" / "workflows").mkdir(parents=True)
    (project / ".github" / "workflows" / "ci.yml").write_text("on: push\njobs: {}\n")
    code, out, _ = run_cli(["check", "configs", "--format", "json"], capsys)
    paths = [f["path"] for f in json.loads(out)["files"]]
    assert paths == [os.path.join("configs", "train.yml")]
    code, out, _ = run_cli(["check", "configs/compose.yml", "--format", "text"], capsys)
    assert code == 0 and "not a LoRA config" in out


def test_project_settings(project, capsys):
    (project / "train.yml").write_text(BAD_AXOLOTL)
    (project / "pyproject.toml").write_text('[tool.lora-lint]\nignore = ["dropout-kills-adapter"]\n')
    assert run_cli(["check", "train.yml"], capsys)[0] == 0
    (project / "pyproject.toml").write_text('[tool.lora-lint]\nseverity = {LL104 = "warning"}\nfail-on = "warning"\n')
    assert run_cli(["check", "train.yml"], capsys)[0] == 1


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ('[tool.lora-lint]\nignor = ["LL104"]\n', "unknown setting 'ignor' (did you mean 'ignore'?)"),
        ('[tool.lora-lint]\nignore = ["LL9999"]\n', "unknown rule 'LL9999'"),
        ('[tool.lora-lint]\nfail-on = "fatal"\n', "severity must be one of"),
        ('[tool.lora-lint]\nignore = "LL104"\n', "'ignore' has the wrong type"),
        ("[tool.lora-lint\n", "invalid TOML"),
        ('[tool.lora-lint.options.dropout-kills-adapter]\nnope = 1\n', "has no option 'nope'"),
    ],
)
def test_bad_settings_exit_two(project, capsys, settings, message):
    (project / "train.yml").write_text(GOOD_AXOLOTL)
    (project / "pyproject.toml").write_text(settings)
    code, _, err = run_cli(["check", "train.yml"], capsys)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_inline_suppression(project, capsys):
    (project / "train.yml").write_text(BAD_AXOLOTL.replace("lora_dropout: 1.0", "lora_dropout: 1.0  # lora-lint: disable=LL104 -- ablation run"))
    assert run_cli(["check", "train.yml"], capsys)[0] == 0


HOSTILE = {
    "malformed.yml": b"lora_r: [16\nlora_alpha: 32\n",
    "malformed.json": b'{"r": 16, "lora_alpha": }',
    "binary.yml": b"\x00\x01\x02lora\xff" * 100,
    "latin1.yml": "lora_r: 16\n# caf\xe9\n".encode("latin-1"),
    "unsafe.yml": b"lora_r: !!python/object/apply:os.system ['echo pwned']\n",
    "bomb.yml": b"a: &a [lora, lora, lora, lora, lora, lora, lora, lora, lora]\n"
    + b"".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n".encode() for i in range(8)),
    "deep.yml": b"lora_r: " + b"[" * 5000 + b"]" * 5000 + b"\n",
    "deep_block.yml": b"lora:\n" + b"".join(b"  " * i + b"- \n" for i in range(1, 3000)),
    "deep.json": b'{"lora": ' + b"[" * 100000 + b"]" * 100000 + b"}",
    "syntax.py": b"from peft import LoraConfig\nLoraConfig(r=8,\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_is_one_line_error_exit_two(project, capsys, name):
    (project / name).write_bytes(HOSTILE[name])
    code, out, err = run_cli(["check", name, "--format", "text"], capsys)
    assert code == 2, out + err
    first = out.splitlines()[0]
    assert first.startswith(f"{name}:") and ": error: " in first, first
    assert "Traceback" not in out + err
    assert not (project / "pwned").exists()


def test_huge_file_is_refused_fast(project, capsys):
    (project / "huge.yml").write_bytes(b"lora_r: 16\n" + b"# padding padding padding\n" * 2_000_000)  # ~52 MB
    code, out, _ = run_cli(["check", "huge.yml"], capsys)
    assert code == 2
    assert "file too large" in out


def test_static_path_imports_nothing_heavy(project):
    (project / "train.yml").write_text(GOOD_AXOLOTL)
    probe = (
        "import sys; from lora_lint.cli import main; code = main(['check', 'train.yml', '--format', 'json']);"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers', 'peft', 'numpy', "
        "'bitsandbytes', 'accelerate', 'pandas', 'scipy', 'matplotlib', 'dataclasses', 'typing', 'inspect', "
        "'ast', 'simpleeval', 'random'});"
        "print(heavy, file=sys.stderr)"
    )
    subprocess.run([sys.executable, "-c", probe], capture_output=True, check=False, cwd=project)  # fills the cache
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=project, check=False)
    assert done.stderr.strip().splitlines()[-1] == "[]", done.stderr  # rule expressions come parsed from the cache


def test_explain_and_rules(capsys):
    code, out, _ = run_cli(["explain", "LL104"], capsys)
    assert code == 0 and "## Why" in out and "## Fix" in out
    assert run_cli(["explain", "dropout-kills-adapter"], capsys)[0] == 0
    code, _, err = run_cli(["explain", "dropout-kill-adapter"], capsys)
    assert code == 2 and "did you mean dropout-kills-adapter" in err
    code, out, _ = run_cli(["rules", "--format", "json"], capsys)
    codes = [rule["code"] for rule in json.loads(out)]
    assert len(codes) == len(set(codes)) and "LL104" in codes


def test_usage_error_exits_two(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["check", "--format", "xml"])
    assert exc.value.code == 2


def test_unknown_gpu_is_a_usage_error(project, capsys):
    (project / "train.yml").write_text(GOOD_AXOLOTL)
    code, _, err = run_cli(["check", "train.yml", "--gpu", "a1000-80gb"], capsys)
    assert code == 2 and "unknown GPU 'a1000-80gb'" in err


def test_gpu_flag_gates_out_of_memory(project, capsys):
    big = GOOD_AXOLOTL.replace("TinyLlama/TinyLlama_v1.1", "meta-llama/Meta-Llama-3-8B") + "sequence_len: 8192\nmicro_batch_size: 8\n"
    (project / "train.yml").write_text(big)
    code, out, _ = run_cli(["check", "train.yml", "--gpu", "T4", "--format", "json"], capsys)
    report = json.loads(out)
    assert code == 1
    assert "LL410" in [f["code"] for f in report["files"][0]["findings"]]
    assert report["files"][0]["facts"]["peak_memory_bytes"] > 16 * 1024**3


def test_text_report_without_gpu_skips_the_memory_estimator(project):
    (project / "train.yml").write_text(GOOD_AXOLOTL)
    probe = (
        "import sys; from lora_lint.cli import main; main(['check', 'train.yml', '--format', 'text']);"
        "print('lora_lint.memory.estimate' in sys.modules, file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=project, check=False)
    assert done.stderr.strip().splitlines()[-1] == "False", done.stderr


def test_json_report_has_the_memory_prediction(project, capsys):
    (project / "train.yml").write_text(GOOD_AXOLOTL)
    _, out, _ = run_cli(["check", "train.yml", "--format", "json"], capsys)
    assert json.loads(out)["files"][0]["facts"]["peak_memory_bytes"] > 0


POLICY_RULE = """\
code: ACME001
name: acme-rank-cap
severity: error
summary: ACME caps LoRA rank at 32
options:
  max_rank: 32
when: r is not None and r > options.max_rank
at: r
message: r {r} is above ACME's cap of {options.max_rank}
why: Larger ranks did not pay off on our evaluations.
fix: Use r 32 or less.
"""


def test_custom_rule_folder(project, capsys):
    (project / "policy").mkdir()
    (project / "policy" / "ACME001-acme-rank-cap.yaml").write_text(POLICY_RULE)
    (project / "train.yml").write_text(GOOD_AXOLOTL.replace("lora_r: 16", "lora_r: 64").replace("lora_alpha: 32", "lora_alpha: 128"))
    code, out, _ = run_cli(["check", "train.yml", "--rules", "policy", "--format", "text"], capsys)
    assert code == 1 and "train.yml:3:1: ACME001 [error] r 64 is above ACME's cap of 32" in out
    (project / "pyproject.toml").write_text('[tool.lora-lint]\nextra-rules = ["policy"]\n[tool.lora-lint.options.acme-rank-cap]\nmax_rank = 64\n')
    assert run_cli(["check", "train.yml"], capsys)[0] == 0
    code, out, _ = run_cli(["explain", "ACME001"], capsys)
    assert code == 0 and "Larger ranks did not pay off" in out


def test_broken_custom_rule_is_a_usage_error(project, capsys):
    (project / "policy").mkdir()
    (project / "policy" / "ACME002-broken.yaml").write_text(POLICY_RULE.replace("ACME001", "ACME002").replace("severity: error", "severity: fatal"))
    (project / "train.yml").write_text(GOOD_AXOLOTL)
    code, _, err = run_cli(["check", "train.yml", "--rules", "policy"], capsys)
    assert code == 2 and "severity must be one of" in err and "ACME002-broken.yaml" in err


def test_merge_key_override_is_no_duplicate(project, capsys):
    anchored = "defaults: &defaults\n  lora_r: 8\n  lora_alpha: 32\n"
    (project / "train.yml").write_text(anchored + GOOD_AXOLOTL.replace("lora_r: 16\nlora_alpha: 32\n", "<<: *defaults\nlora_r: 16\n"))
    _, out, _ = run_cli(["check", "train.yml", "--format", "json"], capsys)
    entry = json.loads(out)["files"][0]
    assert "LL006" not in {finding["code"] for finding in entry["findings"]}, out
    assert (entry["facts"]["r"], entry["facts"]["lora_alpha"]) == (16, 32)


def test_task_type_enum_is_no_blind_spot(project, capsys):
    (project / "train.py").write_text(
        "import peft\nfrom peft import LoraConfig as LC\n"
        "LC(r=16, lora_alpha=32, target_modules=['q_proj'], task_type=peft.TaskType.CAUSAL_LM)\n"
    )
    _, out, _ = run_cli(["check", "train.py", "--format", "json"], capsys)
    (entry,) = json.loads(out)["files"]
    assert "LL007" not in {finding["code"] for finding in entry["findings"]}, out
    assert entry["facts"]["r"] == 16

"""Time ``lora-lint params`` against building the model with PEFT, on a 70B config.

Two comparisons, each a median over fresh processes:

- end to end: ``python -m lora_lint params CONFIG`` versus a fresh Python that imports
  torch/transformers/peft, builds Llama-3.1-70B on the meta device, applies the LoRA
  config and calls ``get_nb_trainable_parameters()``;
- the work alone: the in-process time of the count versus the in-process time of
  model construction plus ``get_peft_model`` (imports excluded), as each process reports it.

Both sides must print the same two numbers; the script checks that they do.
Run: ``python benchmarks/params_vs_peft.py [--runs 5]`` (needs the ``[torch]`` extra).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = {
    "model_type": "llama",
    "hidden_size": 8192,
    "intermediate_size": 28672,
    "num_hidden_layers": 80,
    "num_attention_heads": 64,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "tie_word_embeddings": False,
}
LORA = {"r": 16, "lora_alpha": 32, "target_modules": "all-linear"}

PEFT_SCRIPT = """
import json, os, sys, time, warnings
warnings.simplefilter("ignore")
import torch, transformers, peft
transformers.logging.set_verbosity_error()
config, lora = json.loads(sys.argv[1]), json.loads(sys.argv[2])
start = time.perf_counter()
with torch.device("meta"):
    model = transformers.AutoModelForCausalLM.from_config(transformers.AutoConfig.for_model(**config))
    model = peft.get_peft_model(model, peft.LoraConfig(task_type="CAUSAL_LM", **lora))
trainable, total = model.get_nb_trainable_parameters()
print(json.dumps({"trainable": trainable, "total": total, "work_s": time.perf_counter() - start}))
"""

COUNT_SCRIPT = """
import json, sys, time
from lora_lint.arch import AdapterSpec, architecture_for, count_parameters
config, lora = json.loads(sys.argv[1]), json.loads(sys.argv[2])
start = time.perf_counter()
count = count_parameters(architecture_for(config), AdapterSpec(**lora))
print(json.dumps({"trainable": count.trainable_params, "total": count.total_params,
                  "work_s": time.perf_counter() - start}))
"""


def _timed(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    return time.perf_counter() - start, done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per side (default 5)")
    args = parser.parse_args()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    config_json, lora_json = json.dumps(CONFIG), json.dumps(LORA)
    with tempfile.TemporaryDirectory() as folder:
        model_dir = Path(folder) / "llama-3.1-70b"
        model_dir.mkdir()
        (model_dir / "config.json").write_text(config_json, encoding="utf-8")
        lora_file = Path(folder) / "lora.yaml"
        lora_file.write_text(
            f"base_model: {model_dir}\nr: {LORA['r']}\nlora_alpha: {LORA['lora_alpha']}\n"
            f"target_modules: {LORA['target_modules']}\n",
            encoding="utf-8",
        )
        lint_cmd = [
            sys.executable,
            "-m",
            "lora_lint",
            "params",
            str(lora_file),
            "--format",
            "json",
        ]
        lint = [_timed(lint_cmd, env) for _ in range(args.runs)]
        count = [
            json.loads(_timed([sys.executable, "-c", COUNT_SCRIPT, config_json, lora_json], env)[1])
            for _ in range(args.runs)
        ]
        built = [_timed([sys.executable, "-c", PEFT_SCRIPT, config_json, lora_json], env) for _ in range(args.runs)]

    row = json.loads(lint[0][1])[0]["rows"][0]
    peft_result = json.loads(built[0][1])
    if (row["trainable_params"], row["total_params"]) != (
        peft_result["trainable"],
        peft_result["total"],
    ):
        print(
            f"MISMATCH: lora-lint {row['trainable_params']:,}/{row['total_params']:,} "
            f"vs PEFT {peft_result['trainable']:,}/{peft_result['total']:,}"
        )
        return 1
    lint_s = statistics.median(t for t, _ in lint)
    peft_s = statistics.median(t for t, _ in built)
    count_work = statistics.median(c["work_s"] for c in count)
    peft_work = statistics.median(json.loads(out)["work_s"] for _, out in built)
    print(
        f"Llama-3.1-70B, LoRA r={LORA['r']} {LORA['target_modules']}: "
        f"trainable {peft_result['trainable']:,} of {peft_result['total']:,} (both sides agree)"
    )
    print(f"{'':34}{'lora-lint':>12}{'PEFT (meta)':>14}{'ratio':>10}")
    print(f"{'end to end, fresh process (s)':34}{lint_s:12.3f}{peft_s:14.3f}{peft_s / lint_s:9.0f}x")
    print(f"{'the work alone, no imports (s)':34}{count_work:12.4f}{peft_work:14.3f}{peft_work / count_work:9.0f}x")
    print(f"medians of {args.runs} runs each; Python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

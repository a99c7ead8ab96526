"""Predicted against measured peak training memory on CUDA, over a grid of real-size configs.

Builds Llama-style models with random weights from catalog configs (nothing is
downloaded), applies LoRA with PEFT (QLoRA through bitsandbytes NF4), runs a few AdamW
steps under bf16 autocast and prints the prediction of ``lora_lint.memory`` next to
``torch.cuda.max_memory_reserved`` plus the context, with the error in percent.

    HF_HUB_OFFLINE=1 python benchmarks/memory_calibration.py              # the full grid
    HF_HUB_OFFLINE=1 python benchmarks/memory_calibration.py --quick      # a few points
    HF_HUB_OFFLINE=1 python benchmarks/memory_calibration.py --cpu        # small models on CPU

With ``--cpu`` the models are scaled down and the measurement is live tensor bytes
(``LiveTensorBytes``), compared with the prediction minus context and fragmentation.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import sys
import tempfile
from pathlib import Path

from lora_lint.arch.counting import AdapterSpec, count_parameters
from lora_lint.arch.families import architecture_for
from lora_lint.arch.resolve import resolve_base_model
from lora_lint.memory.estimate import estimate_for_shape
from lora_lint.memory.inputs import TrainingInputs
from lora_lint.memory.shape import shape_from_architecture

GIB = 1024**3
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
MODELS = ["meta-llama/Llama-3.2-1B", "meta-llama/Llama-3.2-3B", "meta-llama/Meta-Llama-3-8B"]
CPU_CONFIG = {"hidden_size": 256, "intermediate_size": 688, "num_hidden_layers": 4, "num_attention_heads": 8,
              "num_key_value_heads": 4, "vocab_size": 8192, "tie_word_embeddings": False}  # fmt: skip


def main() -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few points instead of the whole grid")
    parser.add_argument("--cpu", action="store_true", help="scaled-down models on CPU (live tensor bytes)")
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    import torch

    cuda = torch.cuda.is_available() and not args.cpu
    if not cuda and not args.cpu:
        print("no CUDA device: run with --cpu for the CPU check", file=sys.stderr)
        return 2
    models = MODELS[:1] if args.quick else MODELS
    seqs = [512, 2048] if args.quick else [512, 1024, 2048, 4096]
    batches = [1, 4] if args.quick else [1, 2, 4, 8]
    grid = itertools.product(models, seqs, batches, (False, True), (None, "nf4"))
    if not cuda:
        print("CPU: each model scaled down to CPU_CONFIG; measured = live tensor bytes; predicted excludes context and fragmentation")
    print(f"{'model':<28} {'seq':>5} {'mb':>3} {'ckpt':>5} {'quant':>5} {'predicted':>10} {'measured':>10} {'error':>7}")
    for model_id, seq, batch, checkpointing, quant in grid:
        if not cuda and quant:
            continue  # NF4 through bitsandbytes is checked on CUDA; CPU runs the bf16 path
        config = dict(resolve_base_model(model_id, config_dir=None, cwd=Path.cwd(), user_models=None).config)
        if not cuda:
            config.update(CPU_CONFIG)
        training = TrainingInputs(sequence_len=seq, micro_batch_size=batch, gradient_checkpointing=checkpointing,
                                  quantization=quant, double_quant=bool(quant))  # fmt: skip
        predicted = _predict(config, training, on_cuda=cuda)
        try:
            measured = _measure(config, training, args.steps, cuda)
        except torch.OutOfMemoryError:
            measured = None
        error = f"{100 * (predicted / measured - 1):+6.1f}%" if measured else "   OOM"
        shown = f"{measured / GIB:9.2f}G" if measured else "         -"
        print(f"{model_id:<28} {seq:>5} {batch:>3} {checkpointing!s:>5} {quant or '-':>5} "
              f"{predicted / GIB:9.2f}G {shown} {error}")  # fmt: skip
    return 0


def _predict(config: dict, training: TrainingInputs, *, on_cuda: bool) -> int:
    arch = architecture_for(config)
    shape = shape_from_architecture(arch, count_parameters(arch, AdapterSpec(r=16, target_modules=TARGETS)))
    estimate = estimate_for_shape(shape, training)
    if on_cuda:
        return estimate.peak_bytes
    terms = estimate.breakdown()
    return estimate.peak_bytes - terms["cuda_context"] - terms["allocator_overhead"]


def _measure(config: dict, training: TrainingInputs, steps: int, cuda: bool) -> int:
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoConfig, AutoModelForCausalLM

    from lora_lint.memory.measure import measure_training_peak

    torch.manual_seed(0)
    hf_config = AutoConfig.for_model(**config)
    if training.quantization:
        model = _random_nf4_model(hf_config)
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=training.gradient_checkpointing)
    else:
        with torch.device("cuda" if cuda else "cpu"):
            model = AutoModelForCausalLM.from_config(hf_config, dtype=torch.bfloat16)
        if training.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": True})
            model.enable_input_require_grads()
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=TARGETS, lora_dropout=0.0))
    device = next(model.parameters()).device
    ids = torch.randint(0, hf_config.vocab_size, (training.micro_batch_size, training.sequence_len), device=device)
    try:
        return measure_training_peak(model, {"input_ids": ids, "labels": ids}, steps)["peak_total_bytes"]
    finally:
        del model
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()


def _random_nf4_model(hf_config: object) -> object:
    """4-bit loading needs from_pretrained: save random bf16 weights to a temporary folder and load them in NF4."""
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    with tempfile.TemporaryDirectory() as folder:
        AutoModelForCausalLM.from_config(hf_config, dtype=torch.bfloat16).save_pretrained(folder)
        quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                          bnb_4bit_compute_dtype=torch.bfloat16)  # fmt: skip
        return AutoModelForCausalLM.from_pretrained(folder, quantization_config=quantization, device_map="cuda")


if __name__ == "__main__":
    sys.exit(main())

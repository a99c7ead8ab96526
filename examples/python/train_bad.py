"""Two LoRA configs with real mistakes.

The first keeps lora_alpha from an earlier rank-8 run while r went up to 64, and sets
lora_dropout to 1.0, which zeroes the adapter's input during training. The second spells
a field the way another trainer does (lora_rank), which PEFT rejects, and builds its
target list at run time, so it cannot be checked statically.
"""

import peft
from peft import LoraConfig
from transformers import AutoModelForCausalLM

model = AutoModelForCausalLM.from_pretrained("Qwen/Qwen2.5-0.5B")

stale_alpha = LoraConfig(r=64, lora_alpha=16, lora_dropout=1.0, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")

modules = [name for name in ("q_proj", "v_proj")]
wrong_name = peft.LoraConfig(lora_rank=16, lora_alpha=32, target_modules=modules, task_type="CAUSAL_LM")

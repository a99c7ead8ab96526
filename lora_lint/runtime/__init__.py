"""Runtime checks: build the model, apply the adapter, smoke-train, watch for symptoms.

Needs the ``[torch]`` extra (torch, transformers, peft, accelerate, bitsandbytes).
Only the pytest plugin and ``lora-lint smoke`` import this package; the static
linter never does, so ``lora-lint check`` stays fast and torch-free.
"""

"""Runtime checks: build the model, apply the adapter, smoke-train, watch for symptoms.

Needs the ``[torch]`` extra (torch, transformers, peft, accelerate, bitsandbytes).
Only the pytest plugin, the rank sweep, the guard and the commands behind them import
this package; the static linter never does, so ``lora-lint check`` stays fast and torch-free.
"""


def quiet_library_chatter() -> None:
    """Silence what the user cannot act on: bitsandbytes' optional CPU kernel, transformers/peft deprecation notes."""
    import logging
    import warnings

    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|peft)\b")

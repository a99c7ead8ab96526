"""The normalized LoRA setup every reader produces.

Readers know their file format; everything downstream (facts, rules, the runtime)
only sees a :class:`LoraSetup`. Each value remembers where it came from, so every
finding can point at the line to change, and whether the user wrote it or the
framework's default applies, because several mistakes are about defaults.
"""

from __future__ import annotations

from collections import namedtuple

TYPE_CHECKING = False  # `typing` costs ~3 ms of start-up; annotations stay strings
if TYPE_CHECKING:
    from typing import Any

# Normalized setting names. Adapter fields use PEFT's LoraConfig names; the training
# context uses neutral names that every reader maps its own keys onto.
ADAPTER_SETTINGS = (
    "r",
    "lora_alpha",
    "lora_dropout",
    "target_modules",
    "exclude_modules",
    "target_linear",  # axolotl lora_target_linear / LLaMA-Factory lora_target: all
    "rank_pattern",
    "alpha_pattern",
    "use_rslora",
    "use_dora",
    "init_lora_weights",
    "bias",
    "modules_to_save",
    "layers_to_transform",
    "layers_pattern",
    "fan_in_fan_out",
    "task_type",
    "num_labels",
)
TRAINING_SETTINGS = (
    "base_model",
    "trust_remote_code",
    "load_in_4bit",
    "load_in_8bit",
    "bnb_4bit_quant_type",
    "bnb_4bit_compute_dtype",
    "bnb_4bit_use_double_quant",
    "torch_dtype",  # bf16 / fp16 / fp32 training precision
    "sequence_len",
    "micro_batch_size",
    "gradient_accumulation_steps",
    "num_epochs",
    "max_steps",
    "learning_rate",
    "optimizer",
    "gradient_checkpointing",
    "sample_packing",
    "attn_implementation",
    "chunked_loss",  # a fused/chunked cross-entropy that never holds the full fp32 logits
    "datasets",  # list of {"path": str, "split": str | None, "key": ...}
    "val_datasets",
    "val_size",
    "max_samples",
    "dataset_examples",  # an explicit count, e.g. from a project option
    "resume_adapter",  # a saved adapter/checkpoint the run continues from
    "output_dir",
)
KNOWN_SETTINGS = frozenset(ADAPTER_SETTINGS + TRAINING_SETTINGS)

UNKNOWN = object()
"""Marks a value that exists but cannot be known statically (a non-literal Python argument)."""


Location = namedtuple("Location", "line column key")
Location.__doc__ = "Where a value was written: 1-based ``line`` and ``column``, and the dotted ``key`` path."


class Setting:
    """One normalized value.

    ``explicit`` is False when the value is the framework's default for an absent key;
    ``location`` is then None. ``value`` is :data:`UNKNOWN` when the file has the key but
    its value cannot be read without running code.
    """

    __slots__ = ("value", "location", "explicit")

    def __init__(self, value: Any, location: Location | None = None, explicit: bool = True) -> None:
        self.value = value
        self.location = location
        self.explicit = explicit

    def __repr__(self) -> str:
        return f"Setting({self.value!r}, {self.location!r}, explicit={self.explicit})"

    @property
    def known(self) -> bool:
        return self.value is not UNKNOWN


KeyUse = namedtuple("KeyUse", "key location value")
KeyUse.__doc__ = "A key as written (dotted ``key`` path, its ``location``, its ``value``), kept for key-level rules."


class ReaderNote:
    """Something a reader noticed while reading: the raw material of format-level findings.

    ``kind`` names the situation, for example ``unknown-key``, ``wrong-type``,
    ``yaml-string-number``, ``yaml-bool-word``, ``duplicate-key``, ``non-literal``.
    ``data`` carries what a rule message needs (the key, the near miss, the expected type).
    """

    __slots__ = ("kind", "location", "data")

    def __init__(self, kind: str, location: Location, data: dict[str, Any] | None = None) -> None:
        self.kind = kind
        self.location = location
        self.data = data if data is not None else {}

    def __repr__(self) -> str:
        return f"ReaderNote({self.kind!r}, {self.location!r}, {self.data!r})"


class LoraSetup:
    """A LoRA configuration read from one file (or one ``LoraConfig(...)`` call).

    ``format`` is the reader's name: "peft", "lora-config", "axolotl", "llamafactory",
    "torchtune" or "python". ``extras`` holds format-specific facts (a torchtune builder,
    axolotl's adapter kind); ``start`` is where the config begins (the ``LoraConfig(`` call
    in Python), used for findings about values the file does not write.
    """

    __slots__ = ("path", "format", "settings", "keys", "notes", "extras", "start")

    def __init__(
        self,
        path: str,
        format: str,
        settings: dict[str, Setting] | None = None,
        keys: list[KeyUse] | None = None,
        notes: list[ReaderNote] | None = None,
        extras: dict[str, Any] | None = None,
        start: Location | None = None,
    ) -> None:
        self.path = path
        self.format = format
        self.settings = settings if settings is not None else {}
        self.keys = keys if keys is not None else []
        self.notes = notes if notes is not None else []
        self.extras = extras if extras is not None else {}
        self.start = start

    def __repr__(self) -> str:
        return f"LoraSetup({self.path!r}, {self.format!r}, settings={self.settings!r})"

    def get(self, name: str, default: Any = None) -> Any:
        """The value of a setting, or ``default`` when it is absent or unknown."""
        setting = self.settings.get(name)
        if setting is None or not setting.known:
            return default
        return setting.value

    def location_of(self, name: str) -> Location | None:
        setting = self.settings.get(name)
        return setting.location if setting else None

    def set(self, name: str, value: Any, location: Location | None = None, *, explicit: bool = True) -> None:
        if name not in KNOWN_SETTINGS:
            raise KeyError(f"not a normalized setting: {name}")
        self.settings[name] = Setting(value, location, explicit)

    def default(self, name: str, value: Any) -> None:
        """Apply the framework's default for ``name`` unless the file set it."""
        if name not in self.settings:
            self.set(name, value, None, explicit=False)

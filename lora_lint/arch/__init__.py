"""The architecture model: base models as PEFT sees them, and exact LoRA parameter counts.

Pure Python (no torch): ``architecture_for(config)`` turns a ``config.json`` into named
modules with shapes; ``count_parameters(arch, spec)`` applies PEFT's matching rules.
"""

from lora_lint.arch.counting import (
    AdaptedLayer,
    AdapterSpec,
    ParamCount,
    TargetMatch,
    count_parameters,
)
from lora_lint.arch.families import (
    FAMILIES,
    UnsupportedArchitecture,
    all_families,
    architecture_for,
    supported_model_types,
)
from lora_lint.arch.model import Architecture, Module

__all__ = [
    "FAMILIES",
    "AdaptedLayer",
    "AdapterSpec",
    "Architecture",
    "Module",
    "ParamCount",
    "TargetMatch",
    "UnsupportedArchitecture",
    "all_families",
    "architecture_for",
    "count_parameters",
    "supported_model_types",
]

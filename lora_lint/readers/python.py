"""LoRA setups in Python training scripts, read with ``ast`` (never imported or run).

Each ``LoraConfig(...)`` call is one setup, however the class is named: ``LoraConfig``,
``peft.LoraConfig`` or an import alias (``from peft import LoraConfig as LC``). So is each
Unsloth ``FastLanguageModel.get_peft_model(model, r=..., ...)`` (also ``FastModel``,
``FastVisionModel``), read with Unsloth's own defaults, which differ from PEFT's.

An argument's value is resolved through the script by :mod:`lora_lint.readers.python_values`
(``r=lora_r`` with ``lora_r = 64`` above, argparse and dataclass defaults, ``**kwargs`` from a
literal dict, ``2 * lora_r``). A value found elsewhere is located where it was written, so a
finding points at the line to change, and ``extras["provenance"]`` says where it came from
("r = 64 from `lora_r = 64`, line 28"). ``TaskType.CAUSAL_LM`` reads as the member's name
(PEFT's ``TaskType`` is a string enum whose values are its names). Anything else is kept as
:data:`UNKNOWN` with a ``non-literal`` note quoting the source. Positional arguments map
onto the signature's order.

The training context comes from the same file, when its values can be resolved: the model
id passed to ``*.from_pretrained(...)`` (Unsloth's ``model_name=``, ``load_in_4bit`` and
``max_seq_length`` with Unsloth's defaults; its fused, chunked loss for ``FastLanguageModel``),
``BitsAndBytesConfig(...)`` and
``TrainingArguments``/``SFTConfig(...)``.
"""

from __future__ import annotations

import ast
import warnings

from lora_lint.document import Document, InputError
from lora_lint.lora_setup import UNKNOWN, KeyUse, Location, LoraSetup
from lora_lint.readers import peft
from lora_lint.readers.common import SetupBuilder, closest
from lora_lint.readers.python_values import Found, Resolver

TYPE_CHECKING = False  # `typing` costs ~3 ms of start-up; annotations stay strings
if TYPE_CHECKING:
    from typing import Any

TRAINING_ARGUMENT_CLASSES = {"TrainingArguments", "Seq2SeqTrainingArguments", "SFTConfig", "DPOConfig", "ORPOConfig", "KTOConfig", "GRPOConfig"}
TRAINING_ARGUMENTS = {
    "learning_rate": "learning_rate",
    "per_device_train_batch_size": "micro_batch_size",
    "gradient_accumulation_steps": "gradient_accumulation_steps",
    "num_train_epochs": "num_epochs",
    "max_steps": "max_steps",
    "gradient_checkpointing": "gradient_checkpointing",
    "output_dir": "output_dir",
    "optim": "optimizer",
    "max_seq_length": "sequence_len",
    "max_length": "sequence_len",
    "packing": "sample_packing",
}
QUANTIZATION_ARGUMENTS = {
    "load_in_4bit": "load_in_4bit",
    "load_in_8bit": "load_in_8bit",
    "bnb_4bit_quant_type": "bnb_4bit_quant_type",
    "bnb_4bit_compute_dtype": "bnb_4bit_compute_dtype",
    "bnb_4bit_use_double_quant": "bnb_4bit_use_double_quant",
}
MODEL_ARGUMENTS = {
    "trust_remote_code": "trust_remote_code",
    "attn_implementation": "attn_implementation",
    "torch_dtype": "torch_dtype",
    "dtype": "torch_dtype",
    "num_labels": "num_labels",
}
DTYPE_SETTINGS = {"bnb_4bit_compute_dtype", "torch_dtype"}
SPLATS = ("*", "**")
"""Keys of ``*args`` and ``**kwargs`` arguments: their names and values are known only at run time."""

UNSLOTH_CLASSES = ("FastLanguageModel", "FastModel", "FastVisionModel", "FastTextModel")
UNSLOTH_POSITIONAL = ("r", "target_modules", "lora_alpha", "lora_dropout", "bias")
"""``get_peft_model(model, r, target_modules, lora_alpha, lora_dropout, bias, ...)`` after the model."""
UNSLOTH_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
UNSLOTH_DEFAULTS = {
    "r": 16,
    "lora_alpha": 16,
    "lora_dropout": 0.0,
    "bias": "none",
    "use_rslora": False,
    "use_dora": False,
    "init_lora_weights": True,
    "fan_in_fan_out": False,
    "task_type": "CAUSAL_LM",
}
"""``FastLanguageModel.get_peft_model`` defaults (unsloth/models/llama.py; ``FastModel`` in vision.py has the same).

``target_modules`` defaults to :data:`UNSLOTH_TARGETS` for ``FastLanguageModel``; ``FastModel``
and ``FastVisionModel`` choose theirs at run time from the model's layers (``get_peft_regex``).
"""
UNSLOTH_SETTINGS = {
    "r": "r",
    "lora_alpha": "lora_alpha",
    "lora_dropout": "lora_dropout",
    "target_modules": "target_modules",
    "bias": "bias",
    "use_rslora": "use_rslora",
    "modules_to_save": "modules_to_save",
    "init_lora_weights": "init_lora_weights",
    "layers_to_transform": "layers_to_transform",
    "layers_pattern": "layers_pattern",
    "task_type": "task_type",
    "use_gradient_checkpointing": "gradient_checkpointing",
}
UNSLOTH_LOADING = {"load_in_4bit": True, "load_in_8bit": False, "max_seq_length": 2048}
"""``FastLanguageModel.from_pretrained`` defaults (unsloth/models/loader.py): 4-bit QLoRA unless told otherwise."""
UNSLOTH_LOADING_SETTINGS = {"load_in_4bit": "load_in_4bit", "load_in_8bit": "load_in_8bit", "max_seq_length": "sequence_len"}


def read(path: str, text: str) -> list[LoraSetup]:
    tree = parse(path, text)
    resolver = Resolver(tree, text)
    aliases = import_aliases(tree)
    calls = [(call, kind) for call in resolver.calls if (kind := _setup_kind(call, aliases))]
    if not calls:
        return []
    context = _FileContext(aliases, resolver)
    return [_read_call(path, text, call, kind, context, aliases, resolver) for call, kind in calls]


def parse(path: str, text: str) -> ast.Module:
    try:
        with warnings.catch_warnings():  # a linter reports config mistakes, not Python's own warnings
            warnings.simplefilter("ignore", SyntaxWarning)
            return ast.parse(text, filename=path)
    except SyntaxError as exc:
        raise InputError(f"invalid Python: {exc.msg}", exc.lineno or 1, exc.offset or 1) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise InputError(f"cannot parse Python: {type(exc).__name__}") from None


def import_aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> imported name for every ``from m import Name as Local`` in the file, in any scope.

    ``import peft as p`` needs no entry: ``p.LoraConfig`` is recognized by its attribute name.
    """
    return {
        alias.asname: alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.asname and alias.asname != alias.name
    }


def _name(node: ast.AST | None, aliases: dict[str, str]) -> str | None:
    """The class or function a name or attribute stands for: ``LC`` -> ``LoraConfig``, ``peft.TaskType`` -> ``TaskType``."""
    if isinstance(node, ast.Name):
        return aliases.get(node.id, node.id)
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def callee(call: ast.Call, aliases: dict[str, str]) -> str | None:
    """``LoraConfig`` for ``LoraConfig(...)``, ``x.y.LoraConfig(...)`` or an alias imported as ``LoraConfig``."""
    return _name(call.func, aliases)


def _setup_kind(call: ast.Call, aliases: dict[str, str]) -> str | None:
    """``"LoraConfig"``, the Unsloth class of a ``Fast*Model.get_peft_model(...)`` call, or None."""
    name = callee(call, aliases)
    if name == "LoraConfig":
        return name
    if name == "get_peft_model" and isinstance(call.func, ast.Attribute):
        owner = _name(call.func.value, aliases)
        if owner in UNSLOTH_CLASSES:
            return owner
    return None


def _location(node: ast.AST, key: str) -> Location:
    return Location(node.lineno, node.col_offset + 1, key)


def _task_type(node: ast.AST, aliases: dict[str, str]) -> Any:
    """``TaskType.CAUSAL_LM`` (also ``peft.TaskType.CAUSAL_LM``) is ``"CAUSAL_LM"``; anything else None."""
    if isinstance(node, ast.Attribute) and _name(node.value, aliases) == "TaskType":
        return node.attr
    return None


def _arguments(call: ast.Call, names: tuple[str, ...], resolver: Resolver) -> list[tuple[str, ast.AST]]:
    """(name, value node) for each argument; a ``*args``/``**kwargs`` splat the file does not spell out is named ``*``/``**``."""
    arguments: list[tuple[str, ast.AST]] = []
    for index, node in enumerate(call.args):
        if isinstance(node, ast.Starred):
            arguments.append(("*", node))
            break  # positional arguments after a splat land on fields known only at run time
        arguments.append((names[index] if index < len(names) else f"<positional {index + 1}>", node))
    for keyword in call.keywords:
        if keyword.arg is not None:
            arguments.append((keyword.arg, keyword.value))
            continue
        entries = resolver.entry_nodes(keyword.value)
        if entries is None:
            arguments.append(("**", keyword))
        else:
            arguments.extend(entries.items())
    return arguments


def _read_call(
    path: str, text: str, call: ast.Call, kind: str, context: _FileContext, aliases: dict[str, str], resolver: Resolver
) -> LoraSetup:
    """The setup of one call; ``kind`` is what :func:`_setup_kind` found it to be."""
    unsloth = kind != "LoraConfig"
    builder = SetupBuilder(Document(path, {}, text), "python")
    setup = builder.setup
    setup.start = _location(call, "get_peft_model" if unsloth else "LoraConfig")
    if unsloth:
        setup.extras["unsloth"] = kind
        names: tuple[str, ...] = ("model", *UNSLOTH_POSITIONAL)
        settings, known = UNSLOTH_SETTINGS, None  # Unsloth takes **kwargs: no name is unknown to it
    else:
        names, settings, known = peft.field_names(), peft.FIELD_SETTINGS, peft.known_fields()
    provenance: dict[str, str] = {}
    splat: Location | None = None
    for name, node in _arguments(call, names, resolver):
        if name in SPLATS:
            source = resolver.segment(node)
            splat = splat or _location(node, name)
            builder.note("non-literal", _location(node, name), key=name, source=source)
            continue
        if unsloth and name == "model":
            continue
        value, location = _value(node, name, aliases, resolver, provenance)
        written = _location(node, name)  # the argument itself; ``location`` is where its value was written
        setup.keys.append(KeyUse(name, written, value))
        if value is UNKNOWN:
            builder.note("non-literal", written, key=name, source=resolver.segment(node))
        if known is not None and name not in known:
            builder.note("unknown-key", written, key=name, suggestion=peft.ALIASES.get(name) or closest(name, known))
            continue
        setting = settings.get(name)
        if value is None:  # the framework's own default for every optional field
            continue
        if setting is not None:
            setup.set(setting, value if value is UNKNOWN else builder.typed(setting, value, location, name), location)
        elif not unsloth and name in peft.EXTRA_FIELDS and value is not UNKNOWN:
            setup.extras[name] = value
    if setup.get("target_modules") == "all-linear":
        setup.set("target_linear", True, setup.location_of("target_modules"))
    if provenance:
        setup.extras["provenance"] = provenance
    context.apply(builder)
    defaults = UNSLOTH_DEFAULTS if unsloth else peft.DEFAULTS
    if splat is not None:  # anything absent may come from the splat
        for name in (*defaults, "target_modules"):
            if name not in setup.settings:
                setup.set(name, UNKNOWN, splat)
    if unsloth:
        _unsloth_defaults(setup, kind)
    else:
        peft.apply_defaults(setup)
    return setup


def _value(node: ast.AST, name: str, aliases: dict[str, str], resolver: Resolver, provenance: dict[str, str]) -> tuple[Any, Location]:
    """An argument's value and where it was written; records where a value resolved elsewhere came from."""
    member = _task_type(node, aliases)
    if member is not None:
        return member, _location(node, name)
    found = resolver.resolve(node)
    if found is UNKNOWN:
        return UNKNOWN, _location(node, name)
    if found.origin:
        provenance[name] = _provenance(name, found)
        return found.value, _location(found.node, name)
    return found.value, _location(node, name)


def _provenance(name: str, found: Found) -> str:
    value = repr(found.value)
    value = value if len(value) <= 60 else value[:57] + "..."
    return f"{name} = {value} from `{found.origin}`, line {found.node.lineno}"


def _unsloth_defaults(setup: LoraSetup, kind: str | None) -> None:
    for name, value in UNSLOTH_DEFAULTS.items():
        setup.default(name, value)
    if kind == "FastLanguageModel":
        setup.default("target_modules", list(UNSLOTH_TARGETS))
    elif "target_modules" not in setup.settings:
        setup.set("target_modules", UNKNOWN, None, explicit=False)  # chosen from the model's layers at run time
    setup.default("gradient_checkpointing", "unsloth")


class _FileContext:
    """Training context found anywhere in the file, shared by all its setups."""

    def __init__(self, aliases: dict[str, str], resolver: Resolver) -> None:
        self.resolver = resolver
        self.aliases = aliases
        self.values: dict[str, tuple[Any, Location]] = {}
        self.unsloth_loading = False
        self.fused_loss = False  # FastLanguageModel's forward: unsloth_fused_ce_loss, never the full logits
        self.prepares_kbit = False  # calls PEFT's prepare_model_for_kbit_training: memory reads it
        for node in resolver.calls:
            name = callee(node, aliases)
            if name == "from_pretrained" and _is_model_class(node, aliases):
                self._model(node)
            elif name == "BitsAndBytesConfig":
                self._keywords(node, QUANTIZATION_ARGUMENTS)
            elif name == "prepare_model_for_kbit_training":
                self.prepares_kbit = True
            elif name in TRAINING_ARGUMENT_CLASSES:
                self._keywords(node, TRAINING_ARGUMENTS)
                self._precision(node)

    def _remember(self, setting: str, value: Any, location: Location) -> None:
        if value is not UNKNOWN and value is not None and setting not in self.values:
            self.values[setting] = (value, location)

    def _resolved(self, node: ast.AST, key: str, dtype: bool = False) -> tuple[Any, Location]:
        if dtype:
            name = _dtype_name(node, self.resolver)
            if name is not UNKNOWN:
                return name, _location(node, key)
        found = self.resolver.resolve(node)
        if found is UNKNOWN:
            return UNKNOWN, _location(node, key)
        return found.value, _location(found.node if found.origin else node, key)

    def _model(self, call: ast.Call) -> None:
        owner = _name(call.func.value, self.aliases) if isinstance(call.func, ast.Attribute) else None
        model = call.args[0] if call.args else None
        model = next((k.value for k in call.keywords if k.arg in ("model_name", "pretrained_model_name_or_path")), model)
        if model is not None:
            value, location = self._resolved(model, "from_pretrained")
            if isinstance(value, str):
                self._remember("base_model", value, location)
        self._keywords(call, MODEL_ARGUMENTS)
        if owner in UNSLOTH_CLASSES:
            self.unsloth_loading = True
            self.fused_loss = self.fused_loss or owner == "FastLanguageModel"
            for keyword in call.keywords:
                setting = UNSLOTH_LOADING_SETTINGS.get(keyword.arg or "")
                if setting is not None:
                    self._remember(setting, *self._resolved(keyword.value, keyword.arg or ""))

    def _keywords(self, call: ast.Call, table: dict[str, str]) -> None:
        for keyword in call.keywords:
            setting = table.get(keyword.arg or "")
            if setting is not None:
                self._remember(setting, *self._resolved(keyword.value, keyword.arg or "", setting in DTYPE_SETTINGS))

    def _precision(self, call: ast.Call) -> None:
        for keyword in call.keywords:
            if keyword.arg in ("bf16", "fp16"):
                value, location = self._resolved(keyword.value, keyword.arg)
                if value is True:
                    self._remember("torch_dtype", "bfloat16" if keyword.arg == "bf16" else "float16", location)

    def apply(self, builder: SetupBuilder) -> None:
        builder.setup.extras["prepare_model_for_kbit_training"] = self.prepares_kbit
        for setting, (value, location) in self.values.items():
            builder.setup.set(setting, builder.typed(setting, value, location, location.key), location)
        if self.unsloth_loading:
            setup = builder.setup
            for key, value in UNSLOTH_LOADING.items():
                setup.default(UNSLOTH_LOADING_SETTINGS[key], value)
            # Unsloth builds its own BitsAndBytesConfig: NF4, double quantization, computing in the
            # model's dtype (bfloat16, or float16 on GPUs without it, when dtype is not given).
            setup.default("bnb_4bit_quant_type", "nf4")
            setup.default("bnb_4bit_use_double_quant", True)
            setup.default("bnb_4bit_compute_dtype", setup.get("torch_dtype") or "bfloat16")
            if self.fused_loss:  # unless UNSLOTH_RETURN_LOGITS=1 (unsloth/models/llama.py)
                setup.default("chunked_loss", True)


def _is_model_class(call: ast.Call, aliases: dict[str, str]) -> bool:
    """``AutoModelForCausalLM.from_pretrained`` and the like; not tokenizers or configs."""
    owner = call.func.value if isinstance(call.func, ast.Attribute) else None
    name = _name(owner, aliases) or ""
    return "Model" in name or name.endswith(("ForCausalLM", "ForSequenceClassification", "LMHeadModel"))


def _dtype_name(node: ast.AST, resolver: Resolver, depth: int = 0) -> Any:
    """``torch.bfloat16`` or ``"bfloat16"`` -> ``"bfloat16"``, also through a name bound to one."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "torch":
        return node.attr
    if isinstance(node, ast.Name) and depth < 10:
        bound = resolver.definition(node)
        if bound is not None:
            return _dtype_name(bound, resolver, depth + 1)
    return UNKNOWN

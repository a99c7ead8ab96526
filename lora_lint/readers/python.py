"""``LoraConfig(...)`` calls in Python training scripts, read with ``ast`` (never imported or run).

Each call is one setup, however the class is named: ``LoraConfig``, ``peft.LoraConfig``
or an import alias (``from peft import LoraConfig as LC``). Arguments are read with
``ast.literal_eval`` on the argument's node alone, and ``TaskType.CAUSAL_LM`` as the member's
name (PEFT's ``TaskType`` is a string enum whose values are its names); anything else (a
variable, an expression, ``*args``, ``**kwargs``) is kept as :data:`UNKNOWN` with a
``non-literal`` note quoting the source. Positional arguments map onto PEFT's signature order.

The training context comes from the same file, when it is written literally: the model
id passed to ``*.from_pretrained(...)`` (directly or through a module-level string
constant), ``BitsAndBytesConfig(...)`` and ``TrainingArguments``/``SFTConfig(...)``.
"""

from __future__ import annotations

import ast
import warnings

from lora_lint.document import Document, InputError
from lora_lint.lora_setup import UNKNOWN, KeyUse, Location, LoraSetup
from lora_lint.readers import peft
from lora_lint.readers.common import SetupBuilder, closest

TYPE_CHECKING = False  # `typing` costs ~3 ms of start-up; annotations stay strings
if TYPE_CHECKING:
    from typing import Any

TRAINING_ARGUMENT_CLASSES = {"TrainingArguments", "Seq2SeqTrainingArguments", "SFTConfig", "DPOConfig", "ORPOConfig", "KTOConfig"}
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


def read(path: str, text: str) -> list[LoraSetup]:
    tree = parse(path, text)
    aliases = import_aliases(tree)
    calls = sorted(
        (node for node in ast.walk(tree) if isinstance(node, ast.Call) and callee(node, aliases) == "LoraConfig"),
        key=lambda node: (node.lineno, node.col_offset),
    )
    if not calls:
        return []
    context = _FileContext(tree, aliases)
    return [_read_call(path, text, call, context, aliases) for call in calls]


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


def _location(node: ast.AST, key: str) -> Location:
    return Location(node.lineno, node.col_offset + 1, key)


def _literal(node: ast.AST) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return UNKNOWN


def _argument_value(node: ast.AST, aliases: dict[str, str]) -> Any:
    """A literal's value; ``TaskType.CAUSAL_LM`` (also ``peft.TaskType.CAUSAL_LM``) is ``"CAUSAL_LM"``."""
    if isinstance(node, ast.Attribute) and _name(node.value, aliases) == "TaskType":
        return node.attr
    return _literal(node)


def _arguments(call: ast.Call, names: tuple[str, ...]) -> list[tuple[str, ast.AST]]:
    """(name, value node) for each argument; a ``*args``/``**kwargs`` splat is named ``*``/``**``."""
    arguments: list[tuple[str, ast.AST]] = []
    for index, node in enumerate(call.args):
        if isinstance(node, ast.Starred):
            arguments.append(("*", node))
            break  # positional arguments after a splat land on fields known only at run time
        arguments.append((names[index] if index < len(names) else f"<positional {index + 1}>", node))
    for keyword in call.keywords:
        if keyword.arg is None and isinstance(keyword.value, ast.Dict) and all(
            isinstance(k, ast.Constant) and isinstance(k.value, str) for k in keyword.value.keys
        ):
            arguments.extend((k.value, v) for k, v in zip(keyword.value.keys, keyword.value.values))  # type: ignore[union-attr]
        else:
            arguments.append((keyword.arg, keyword.value) if keyword.arg is not None else ("**", keyword))
    return arguments


def _read_call(path: str, text: str, call: ast.Call, context: _FileContext, aliases: dict[str, str]) -> LoraSetup:
    builder = SetupBuilder(Document(path, {}, text), "python")
    setup = builder.setup
    setup.start = _location(call, "LoraConfig")
    known = peft.known_fields()
    splat: Location | None = None
    for name, node in _arguments(call, peft.field_names()):
        source = ast.get_source_segment(text, node) or ""
        if name in SPLATS:
            splat = splat or _location(node, name)
            builder.note("non-literal", _location(node, name), key=name, source=source)
            continue
        location = _location(node, name)
        value = _argument_value(node, aliases)
        setup.keys.append(KeyUse(name, location, value))
        if value is UNKNOWN:
            builder.note("non-literal", location, key=name, source=source)
        if name not in known:
            builder.note("unknown-key", location, key=name, suggestion=peft.ALIASES.get(name) or closest(name, known))
            continue
        setting = peft.FIELD_SETTINGS.get(name)
        if value is None:  # PEFT's own default for every optional field
            continue
        if setting is not None:
            setup.set(setting, value if value is UNKNOWN else builder.typed(setting, value, location, name), location)
        elif name in peft.EXTRA_FIELDS and value is not UNKNOWN:
            setup.extras[name] = value
    if setup.get("target_modules") == "all-linear":
        setup.set("target_linear", True, setup.location_of("target_modules"))
    context.apply(builder)
    if splat is not None:  # anything absent may come from the splat
        for name in peft.DEFAULTS:
            if name not in setup.settings:
                setup.set(name, UNKNOWN, splat)
    peft.apply_defaults(setup)
    return setup


class _FileContext:
    """Literal training context found anywhere in the file, shared by all its LoraConfig calls."""

    def __init__(self, tree: ast.Module, aliases: dict[str, str]) -> None:
        self.strings = {
            target.id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        self.values: dict[str, tuple[Any, Location]] = {}
        self.prepares_kbit = False  # calls PEFT's prepare_model_for_kbit_training: memory reads it
        for node in sorted((n for n in ast.walk(tree) if isinstance(n, ast.Call)), key=lambda n: (n.lineno, n.col_offset)):
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

    def _remember(self, setting: str, value: Any, node: ast.AST, key: str) -> None:
        if value is not UNKNOWN and setting not in self.values:
            self.values[setting] = (value, _location(node, key))

    def _model(self, call: ast.Call) -> None:
        if call.args:
            first = call.args[0]
            model = self.strings.get(first.id) if isinstance(first, ast.Name) else _literal(first)
            if isinstance(model, str):
                self._remember("base_model", model, first, "from_pretrained")
        self._keywords(call, MODEL_ARGUMENTS)

    def _keywords(self, call: ast.Call, table: dict[str, str]) -> None:
        for keyword in call.keywords:
            setting = table.get(keyword.arg or "")
            if setting is None:
                continue
            value = _dtype_name(keyword.value) if setting in DTYPE_SETTINGS else _literal(keyword.value)
            self._remember(setting, value, keyword.value, keyword.arg or "")

    def _precision(self, call: ast.Call) -> None:
        for keyword in call.keywords:
            if keyword.arg in ("bf16", "fp16") and _literal(keyword.value) is True:
                self._remember("torch_dtype", "bfloat16" if keyword.arg == "bf16" else "float16", keyword.value, keyword.arg)

    def apply(self, builder: SetupBuilder) -> None:
        builder.setup.extras["prepare_model_for_kbit_training"] = self.prepares_kbit
        for setting, (value, location) in self.values.items():
            builder.setup.set(setting, builder.typed(setting, value, location, location.key), location)


def _is_model_class(call: ast.Call, aliases: dict[str, str]) -> bool:
    """``AutoModelForCausalLM.from_pretrained`` and the like; not tokenizers or configs."""
    owner = call.func.value if isinstance(call.func, ast.Attribute) else None
    name = _name(owner, aliases) or ""
    return "Model" in name or name.endswith(("ForCausalLM", "ForSequenceClassification", "LMHeadModel"))


def _dtype_name(node: ast.AST) -> Any:
    """``torch.bfloat16`` or ``"bfloat16"`` -> ``"bfloat16"``."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "torch":
        return node.attr
    return _literal(node)

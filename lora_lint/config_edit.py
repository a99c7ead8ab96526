"""Write a changed copy of a user's LoRA config: the sweep's locked config and the guard's rollback.

Both are the same operation: set r / lora_alpha / lora_dropout / weight_decay, and for a
rollback drop the settings that would resume the old adapter, in the file the user wrote,
so the copy differs from the original only where it must.

YAML is edited as text at the positions libyaml reports for each node. A round-trip
library re-emits the whole document, and on real configs that rewrites what it should
keep: flow lists lose their spacing, ``True`` becomes ``true``, list indentation changes
(measured on 207 axolotl and example configs: 11 came back different before any edit).
Editing only the spans of the values that change keeps every other byte: comments, key
order, quoting, anchors. JSON keeps its key order and indentation. Python sources are
never rewritten; the exact edits are returned as instructions instead.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import yaml

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from lora_lint.lora_setup import LoraSetup

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

EDITABLE = ("r", "lora_alpha", "lora_dropout", "weight_decay")

# Where each format keeps a setting when the file does not write it yet (dotted key path).
# None: the format has no such setting; the change becomes an instruction for the trainer.
_KEYS: dict[str, dict[str, str | None]] = {
    "axolotl": {"r": "lora_r", "lora_alpha": "lora_alpha", "lora_dropout": "lora_dropout", "weight_decay": "weight_decay"},
    "llamafactory": {"r": "lora_rank", "lora_alpha": "lora_alpha", "lora_dropout": "lora_dropout", "weight_decay": "weight_decay"},
    "torchtune": {
        "r": "model.lora_rank",
        "lora_alpha": "model.lora_alpha",
        "lora_dropout": "model.lora_dropout",
        "weight_decay": "optimizer.weight_decay",
    },
    "trl": {"r": "lora_r", "lora_alpha": "lora_alpha", "lora_dropout": "lora_dropout", "weight_decay": "weight_decay"},
    "peft": {"r": "r", "lora_alpha": "lora_alpha", "lora_dropout": "lora_dropout", "weight_decay": None},
    "lora-config": {"r": "r", "lora_alpha": "lora_alpha", "lora_dropout": "lora_dropout", "weight_decay": None},
}
# LLaMA-Factory's nested form keeps the adapter under ``peft_config:`` with PEFT's names.
_LLAMAFACTORY_NESTED = {"r": "peft_config.r", "lora_alpha": "peft_config.lora_alpha", "lora_dropout": "peft_config.lora_dropout"}

# Settings that make a run continue an earlier adapter or checkpoint. A rollback restarts
# from the base model, so they go; torchtune's recipes read ``resume_from_checkpoint``
# unconditionally, so there it is set to false instead of removed.
_RESUME_KEYS: dict[str, tuple[str, ...]] = {
    "axolotl": ("resume_from_checkpoint", "lora_model_dir", "auto_resume_from_checkpoints"),
    "llamafactory": ("adapter_name_or_path", "resume_from_checkpoint", "peft_config.adapter_name_or_path"),
    "torchtune": ("checkpointer.adapter_checkpoint", "checkpointer.recipe_checkpoint"),
    "trl": ("resume_from_checkpoint",),
    "lora-config": ("lora_model_dir", "adapter_name_or_path", "resume_from_checkpoint", "resume_adapter"),
    "peft": (),
}
_NEXT_TO_RANK = ("lora_alpha", "lora_dropout")  # adapter keys a new line is written beside the rank for
_RESUME_FLAGS: dict[str, tuple[str, ...]] = {"torchtune": ("resume_from_checkpoint",)}


class EditError(Exception):
    """Why the copy cannot be written: one line, for the command line to print."""


class ConfigEdit:
    """What :func:`edit_config` did.

    ``path`` is the written copy (None for Python sources, which are never rewritten);
    ``changes`` says each change in words with the line it was on; ``instructions`` lists
    what the user must change by hand (a Python source, or a setting the format lacks).
    """

    __slots__ = ("path", "changes", "instructions")

    def __init__(self, path: Path | None, changes: list[str], instructions: list[str]) -> None:
        self.path = path
        self.changes = changes
        self.instructions = instructions

    def __repr__(self) -> str:
        return f"ConfigEdit({self.path!r}, changes={self.changes!r}, instructions={self.instructions!r})"


def edit_config(
    path: str | os.PathLike[str],
    changes: dict[str, Any],
    *,
    drop_resume: bool = False,
    out_path: str | os.PathLike[str] | None = None,
    setup: LoraSetup | None = None,
) -> ConfigEdit:
    """Write a copy of the config at ``path`` with ``changes`` applied to ``out_path``.

    ``changes`` maps names of :data:`EDITABLE` to new values. ``setup`` is the setup read
    from ``path`` (read again when not given; a file with several setups edits the first).
    The user's file is never written. Raises :class:`EditError`.
    """
    source = Path(path)
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise EditError(f"cannot edit {', '.join(unknown)}: only {', '.join(EDITABLE)} can be changed")
    setup = setup or _read_setup(source)
    if setup.format not in _KEYS:
        return ConfigEdit(None, [], _python_instructions(setup, changes, drop_resume))
    if out_path is None:
        raise EditError(f"{source}: no output path given for the edited copy")
    target = Path(out_path)
    if target.exists() and source.resolve() == target.resolve():
        raise EditError(f"{target}: refusing to overwrite the original config; choose another output path")
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EditError(f"cannot read {source}: {exc}") from None
    plan = _plan(setup, changes, drop_resume)
    if source.suffix.lower() == ".json":
        new_text, done = _edit_json(text, plan, source)
    else:
        new_text, done = _edit_yaml(text, plan, source)
    write_atomically(target, new_text)
    return ConfigEdit(target, done, plan.instructions)


class _Plan:
    """The key-level operations one edit consists of."""

    __slots__ = ("sets", "flags_off", "removals", "instructions", "anchor")

    def __init__(self) -> None:
        self.anchor: str | None = None  # the rank's key: a new lora_alpha or lora_dropout goes next to it
        self.sets: list[tuple[str, Any]] = []  # dotted key, new value
        self.flags_off: list[str] = []
        self.removals: list[str] = []
        self.instructions: list[str] = []


def _plan(setup: LoraSetup, changes: dict[str, Any], drop_resume: bool) -> _Plan:
    plan = _Plan()
    keys = dict(_KEYS[setup.format])
    if setup.format == "llamafactory" and _written_under(setup, "peft_config."):
        keys.update(_LLAMAFACTORY_NESTED)
    rank = setup.settings.get("r")
    plan.anchor = rank.location.key if rank is not None and rank.location is not None else None
    for name, value in changes.items():
        setting = setup.settings.get(name)
        written = setting.location.key if setting is not None and setting.location is not None else None
        key = written or keys.get(name)
        if key is None:
            plan.instructions.append(f"set {name} to {_scalar(value)} in the trainer's arguments ({setup.format} configs have no such setting)")
            continue
        plan.sets.append((key, value))
    if drop_resume:
        plan.removals.extend(_RESUME_KEYS.get(setup.format, ()))
        resume = setup.settings.get("resume_adapter")
        if resume is not None and resume.location is not None and resume.location.key not in plan.removals:
            plan.removals.append(resume.location.key)
        plan.flags_off.extend(_RESUME_FLAGS.get(setup.format, ()))
    return plan


def _written_under(setup: LoraSetup, prefix: str) -> bool:
    return any(s.location is not None and s.location.key.startswith(prefix) for s in setup.settings.values())


# --- YAML: edits at node spans -------------------------------------------------------


def _edit_yaml(text: str, plan: _Plan, source: Path) -> tuple[str, list[str]]:
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise EditError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(root, yaml.MappingNode):
        raise EditError(f"{source}: the config is not a mapping")
    edits: list[tuple[int, int, str]] = []  # start offset, end offset, replacement
    done: list[str] = []
    for key, value in plan.sets:
        found = _find(root, key)
        if found is not None:
            key_node, value_node = found
            if not isinstance(value_node, yaml.ScalarNode):
                raise EditError(f"{source}:{key_node.start_mark.line + 1}: {key} is not a single value")
            edits.append((value_node.start_mark.index, value_node.end_mark.index, _scalar(value)))
            done.append(f"{key}: {value_node.value or 'null'} -> {_scalar(value)} (line {key_node.start_mark.line + 1})")
        else:
            after = plan.anchor if key.rsplit(".", 1)[-1] in _NEXT_TO_RANK else None
            edits.append(_insertion(text, root, key, value, source, after=after))
            done.append(f"{key}: added as {_scalar(value)}")
    for key in plan.flags_off:
        found = _find(root, key)
        if found is not None and found[1].value not in ("false", "False", "FALSE"):
            edits.append((found[1].start_mark.index, found[1].end_mark.index, "False"))
            done.append(f"{key}: {found[1].value} -> False (line {found[0].start_mark.line + 1})")
    for key in plan.removals:
        found = _find(root, key)
        if found is not None and not _empty(found[1]):
            edits.append(_removal(text, found, key, source))
            done.append(f"removed {key} (line {found[0].start_mark.line + 1})")
    return _apply(text, edits), done


def _find(root: yaml.MappingNode, dotted: str) -> tuple[yaml.Node, yaml.Node] | None:
    node: yaml.Node = root
    found = None
    for part in dotted.split("."):
        if not isinstance(node, yaml.MappingNode):
            return None
        found = next(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part), None)
        if found is None:
            return None
        node = found[1]
    return found


def _insertion(
    text: str, root: yaml.MappingNode, dotted: str, value: Any, source: Path, after: str | None = None
) -> tuple[int, int, str]:
    """A new ``key: value`` line after ``after`` when it is a sibling (the rank), else after the mapping's last entry."""
    *parents, leaf = dotted.split(".")
    mapping: yaml.Node = root
    if parents:
        found = _find(root, ".".join(parents))
        if found is None and len(parents) == 1:
            # The section is absent (a torchtune recipe without ``optimizer:``): add it at the end.
            prefix = "" if not text or text.endswith("\n") else "\n"
            return len(text), len(text), f"{prefix}{parents[0]}:\n  {leaf}: {_scalar(value)}\n"
        if found is None:
            raise EditError(f"{source}: cannot add {dotted}: {'.'.join(parents)} is absent")
        mapping = found[1]
    if not isinstance(mapping, yaml.MappingNode) or mapping.flow_style or not mapping.value:
        raise EditError(f"{source}: cannot add {dotted} there (not a block mapping); write it by hand")
    siblings = [(k, v) for k, v in mapping.value if after and ".".join((*parents, k.value)) == after]
    last_key, last_value = siblings[0] if siblings else mapping.value[-1]
    indent = " " * last_key.start_mark.column
    end = _line_end(text, last_value)
    prefix = "" if end == 0 or text[end - 1] == "\n" else "\n"
    return end, end, f"{prefix}{indent}{leaf}: {_scalar(value)}\n"


def _line_end(text: str, node: yaml.Node) -> int:
    """The offset just past the last line that ``node`` occupies (block values end at the next key's line)."""
    end = node.end_mark.index
    if node.end_mark.column == 0 and end > node.start_mark.index:
        return end  # a block collection: its end mark is already the start of the next line
    newline = text.find("\n", end)
    return len(text) if newline < 0 else newline + 1


def _empty(node: yaml.Node) -> bool:
    """A resume setting written as null, false or empty resumes nothing: leave it as written."""
    return isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null", "Null", "NULL", "false", "False", "FALSE")


def _removal(text: str, found: tuple[yaml.Node, yaml.Node], key: str, source: Path) -> tuple[int, int, str]:
    key_node, value_node = found
    start = text.rfind("\n", 0, key_node.start_mark.index) + 1
    if text[start : key_node.start_mark.index].strip():
        raise EditError(f"{source}:{key_node.start_mark.line + 1}: cannot remove {key} from a flow mapping; remove it by hand")
    return start, _line_end(text, value_node), ""


def _apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    # From the end backwards, so earlier offsets stay valid; insertions at one offset keep their order.
    ordered = sorted(enumerate(edits), key=lambda item: (item[1][0], item[1][1], item[0]), reverse=True)
    for _, (start, end, replacement) in ordered:
        text = text[:start] + replacement + text[end:]
    return text


def tidy_number(value: float) -> int | float:
    """32.0 -> 32: configs write whole alphas as integers; others keep six decimals."""
    return int(value) if float(value).is_integer() else round(value, 6)


def _scalar(value: Any) -> str:
    """A value both YAML 1.1 and JSON read as the same number: ``16``, ``0.1``, ``0.00001``.

    YAML 1.1 (PyYAML, and so every trainer here) reads ``1e-05`` as a string, so floats are
    never written in exponent form.
    """
    if isinstance(value, float) and "e" in repr(value):
        from decimal import Decimal

        digits = format(Decimal(repr(value)), "f")
        return digits if "." in digits else f"{digits}.0"
    return json.dumps(value)


# --- JSON: key order and indentation kept --------------------------------------------


def _edit_json(text: str, plan: _Plan, source: Path) -> tuple[str, list[str]]:
    """Values that exist are replaced in place (JSON is YAML flow syntax); adding or removing keys re-dumps."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise EditError(f"{source}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise EditError(f"{source}: the config is not a JSON object")
    in_place = all(_json_value(data, key) is not _ABSENT for key, _ in plan.sets)
    removes = any(_json_value(data, key) not in (_ABSENT, None, False, "") for key in plan.removals + plan.flags_off)
    if in_place and not removes:
        try:
            return _edit_yaml(text, plan, source)
        except EditError:
            pass  # JSON that YAML 1.1 does not read (rare escapes): re-dump below
    done: list[str] = []
    for key, value in plan.sets:
        holder, leaf = _json_holder(data, key, create=True)
        old = holder.get(leaf, None)
        done.append(f"{key}: {json.dumps(old)} -> {json.dumps(value)}" if leaf in holder else f"{key}: added as {json.dumps(value)}")
        holder[leaf] = value
    for key in plan.flags_off:
        holder, leaf = _json_holder(data, key, create=False)
        if holder is not None and holder.get(leaf) not in (None, False):
            holder[leaf] = False
            done.append(f"{key}: -> false")
    for key in plan.removals:
        holder, leaf = _json_holder(data, key, create=False)
        if holder is not None and holder.get(leaf) not in (None, False, ""):
            del holder[leaf]
            done.append(f"removed {key}")
    indent = _json_indent(text)
    trailing = "\n" if text.endswith("\n") else ""
    return json.dumps(data, indent=indent, ensure_ascii=False) + trailing, done


_ABSENT = object()


def _json_value(data: dict[str, Any], dotted: str) -> Any:
    holder, leaf = _json_holder(data, dotted, create=False)
    return _ABSENT if holder is None else holder.get(leaf, _ABSENT)


def _json_holder(data: dict[str, Any], dotted: str, *, create: bool) -> tuple[Any, str]:
    *parents, leaf = dotted.split(".")
    holder: Any = data
    for part in parents:
        if not isinstance(holder.get(part), dict):
            if not create:
                return None, leaf
            holder[part] = {}
        holder = holder[part]
    return holder, leaf


def _json_indent(text: str) -> int | None:
    for line in text.splitlines()[1:]:
        stripped = line.lstrip(" ")
        if stripped:
            return len(line) - len(stripped) or None
    return None


# --- Python: instructions, never a rewrite ---------------------------------------------


def _python_instructions(setup: LoraSetup, changes: dict[str, Any], drop_resume: bool) -> list[str]:
    where = setup.path
    steps = []
    for name, value in changes.items():
        setting = setup.settings.get(name)
        if name == "weight_decay":
            steps.append(f"{where}: set weight_decay={value!r} in the trainer's arguments (TrainingArguments / SFTConfig)")
        elif setting is not None and setting.location is not None:
            loc = setting.location
            steps.append(f"{where}:{loc.line}:{loc.column}: change {name} from {setting.value!r} to {value!r}")
        else:
            start = setup.start
            at = f"{where}:{start.line}:{start.column}" if start else where
            steps.append(f"{at}: add {name}={value!r} to the {start.key if start else 'LoraConfig'}(...) call")
    resume = setup.settings.get("resume_adapter")
    if drop_resume and resume is not None and resume.location is not None:
        loc = resume.location
        steps.append(f"{where}:{loc.line}:{loc.column}: start from the base model, not from {resume.value!r}")
    return steps


# --- reading and writing ----------------------------------------------------------------


def _read_setup(source: Path) -> LoraSetup:
    from lora_lint.document import InputError
    from lora_lint.readers import read_file

    try:
        setups = read_file(str(source), source.read_bytes())
    except OSError as exc:
        raise EditError(f"cannot read {source}: {exc.strerror or exc}") from None
    except InputError as exc:
        raise EditError(f"{source}:{exc.line}:{exc.column}: {exc.message}") from None
    if not setups:
        raise EditError(f"{source}: no LoRA configuration found")
    return setups[0]


def write_atomically(target: Path, text: str) -> None:
    """Write through a temporary file in the same folder, so a failure leaves nothing half-written."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except OSError as exc:
        raise EditError(f"cannot write {target}: {exc.strerror or exc}") from None

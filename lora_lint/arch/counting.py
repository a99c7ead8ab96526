"""Exact LoRA parameter accounting, following PEFT 0.21's own matching rules.

The numbers equal ``PeftModel.get_nb_trainable_parameters()`` on the real model:
``(trainable, all)``. The matching mirrors PEFT step by step:

- ``target_modules`` as a list matches a module whose full name equals an entry or
  ends with ``"." + entry``; as a string it is a regex that must match the whole name
  (``re.fullmatch``); ``"all-linear"`` collects every Linear/Conv1D except the output
  layer (``get_output_embeddings()``, or the ``score``/``classifier`` head of a
  SEQ_CLS model without one).
- ``exclude_modules`` (list: equal or suffix; string: full regex) and every
  ``modules_to_save`` entry (as a whole name component) keep a module from LoRA.
- ``layers_to_transform`` applies to suffix matches only, reading the layer index
  from the first ``<name>.<digits>.`` segment (or after ``layers_pattern``).
- ``rank_pattern``/``alpha_pattern``: the first key, in order, for which
  ``re.match(rf"(.*\\.)?({key})$", name)`` holds.
- A LoRA layer adds ``r * (in + out)`` (``lora_A``: r x in, ``lora_B``: out x r; for an
  Embedding ``lora_embedding_A``: r x num, ``lora_embedding_B``: dim x r; for a convolution
  ``lora_A`` reads the layer's whole fan-in and ``lora_B`` is grouped like the layer, so a
  depthwise convolution needs r divisible by its groups); DoRA adds a
  magnitude vector with one entry per output row of the base weight.
- ``modules_to_save`` (plus ``classifier`` and ``score`` for SEQ_CLS) wraps each module
  whose name ends with an entry: the original stays, frozen, and a trainable deep copy
  is added, so the copy counts in both the trainable and the total numbers.
- ``bias="all"`` makes every parameter named ``bias`` trainable (norms included),
  except inside the frozen originals of ``modules_to_save``; ``"lora_only"`` only the
  biases of adapted layers.
- MoE families whose experts transformers 5 fuses into 3-D parameters (Mixtral,
  Qwen2-MoE, Qwen3-MoE) go through PEFT's v4-to-v5 conversion: expert projection
  names become ``target_parameters`` (LoRA of rank ``r * num_experts`` on the fused
  tensor, doubled rank and alpha for a fused pair), the router ``gate`` becomes
  ``gate.weight``.

Where PEFT refuses a configuration (no module matched, a target that is not a layer
LoRA supports, half of a fused expert pair, dropout or DoRA on expert parameters, the
Mamba mixer's ``out_proj``/``conv1d`` — ``all-linear`` included — in Nemotron-H), the
reason is recorded in :attr:`ParamCount.errors`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import cached_property
from math import prod

from lora_lint.record import Record, replace

from lora_lint.arch.adapted_layers import AdaptedLayers
from lora_lint.arch.blocks import Block, add_with_ancestors
from lora_lint.arch.families import SEQ_CLS
from lora_lint.arch.model import (
    ALL_LINEAR_KINDS,
    CONV,
    LORA_MODULE_KINDS,
    Architecture,
    Module,
)

TYPE_CHECKING = False  # `typing` costs ~3 ms of start-up; annotations stay strings
if TYPE_CHECKING:
    from typing import Any

    from lora_lint.lora_setup import LoraSetup

ALL_LINEAR = "all-linear"
SEQ_CLS_HEAD_NAMES = ("classifier", "score")
"""Added to ``modules_to_save`` by ``PeftModelForSequenceClassification``."""

_MOE_TARGETS = {
    "mixtral": {
        "gate": "gate.weight",
        "w1": "gate_up_proj",
        "w3": "gate_up_proj",
        "w2": "down_proj",
    },
    "qwen2_moe": {
        "gate": "gate.weight",
        "gate_proj": "gate_up_proj",
        "up_proj": "gate_up_proj",
        "down_proj": "down_proj",
    },
}
_MOE_FUSED = {
    "mixtral": {"gate_up_proj": ("w1", "w3")},
    "qwen2_moe": {"gate_up_proj": ("gate_proj", "up_proj")},
}
"""PEFT's ``_MOE_TARGET_MODULE_MAPPING`` / ``_MOE_FUSED_TARGETS`` (peft.utils.transformers_weight_conversion)."""

_MAMBA_MODEL_TYPES = frozenset({"falcon_h1", "mamba", "mamba2", "falcon_mamba", "nemotron_h"})
_MAMBA_INCOMPATIBLE = frozenset({"out_proj", "conv1d"})
"""PEFT's ``_check_lora_target_modules_mamba``: LoRA on these layers of these model types is refused."""


class AdapterSpec(Record):
    """The LoraConfig fields that decide parameter counts, with PEFT's defaults."""

    r: int = 8
    lora_alpha: float = 8
    target_modules: list[str] | str | None = None
    exclude_modules: list[str] | str | None = None
    layers_to_transform: list[int] | int | None = None
    layers_pattern: list[str] | str | None = None
    rank_pattern: dict[str, int] = {}
    alpha_pattern: dict[str, float] = {}
    bias: str = "none"
    use_dora: bool = False
    use_rslora: bool = False
    modules_to_save: list[str] | None = None
    task_type: str | None = None
    num_labels: int | None = None
    target_linear: bool = False  # axolotl lora_target_linear, LLaMA-Factory lora_target: all
    lora_dropout: float = 0.0

    @classmethod
    def from_setup(cls, setup: LoraSetup) -> AdapterSpec:
        """The spec a setup describes; absent or unreadable values take PEFT's defaults."""
        defaults = cls._defaults

        def get(name: str, kinds: type | tuple[type, ...], default: Any) -> Any:
            value = setup.get(name)
            if isinstance(value, bool) and kinds not in (bool, (bool,)):
                return default
            return value if isinstance(value, kinds) else default

        def names(name: str) -> list[str] | str | None:
            value = setup.get(name)
            if isinstance(value, str):
                return value
            if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
                return list(value)
            return None

        layers = setup.get("layers_to_transform")
        if isinstance(layers, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in layers):
            layers = list(layers)
        elif not (isinstance(layers, int) and not isinstance(layers, bool)):
            layers = None
        task = setup.get("task_type")
        return cls(
            r=get("r", int, defaults["r"]),
            lora_alpha=get("lora_alpha", (int, float), defaults["lora_alpha"]),
            target_modules=names("target_modules"),
            exclude_modules=names("exclude_modules"),
            layers_to_transform=layers,
            layers_pattern=names("layers_pattern"),
            rank_pattern=_pattern(setup.get("rank_pattern")),
            alpha_pattern=_pattern(setup.get("alpha_pattern")),
            bias=get("bias", str, defaults["bias"]),
            use_dora=setup.get("use_dora") is True,
            use_rslora=setup.get("use_rslora") is True,
            modules_to_save=[saved] if isinstance(saved := names("modules_to_save"), str) else saved,
            task_type=str(task).upper() if isinstance(task, str) else None,
            num_labels=get("num_labels", int, None),
            target_linear=setup.get("target_linear") is True,
            lora_dropout=get("lora_dropout", (int, float), defaults["lora_dropout"]),
        )

    def with_rank(self, r: int) -> AdapterSpec:
        return replace(self, r=r)


def _pattern(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {}


class AdaptedLayer(Record):
    """One layer that receives a LoRA adapter."""

    __slots__ = ("name", "kind", "in_features", "out_features", "r", "alpha", "lora_params", "per_rank")

    name: str
    kind: str  # Linear | Conv1D | Embedding | Parameter (fused MoE tensor)
    in_features: int
    out_features: int
    r: int
    alpha: float
    lora_params: int  # lora_A + lora_B (+ DoRA magnitude)
    per_rank: int  # parameters each unit of the global r adds here (0 when rank_pattern pins this layer's r)

    def __init__(
        self, name: str, kind: str, in_features: int, out_features: int, r: int, alpha: float, lora_params: int, per_rank: int
    ) -> None:  # a plain __init__: an adapter has hundreds of layers (see lora_lint.record)
        self.name = name
        self.kind = kind
        self.in_features = in_features
        self.out_features = out_features
        self.r = r
        self.alpha = alpha
        self.lora_params = lora_params
        self.per_rank = per_rank

    def renamed(self, name: str) -> AdaptedLayer:
        """This layer under another name (a layer of a repeated block, named in full)."""
        return AdaptedLayer(
            name, self.kind, self.in_features, self.out_features, self.r, self.alpha, self.lora_params, self.per_rank
        )


class TargetMatch(Record):
    """What one entry of ``target_modules`` did."""

    target: str
    present: int  # modules with this name in the model, before exclusions and layer selection
    adapted: int  # modules that received LoRA through this entry
    shapes: tuple[tuple[int, int], ...]  # distinct (in_features, out_features) of the adapted modules


class ParamCount(Record):
    base_params: int
    trainable_params: int
    total_params: int
    lora_params: int
    modules_to_save_params: int  # the trainable copies PEFT adds
    trainable_bias_params: int
    naive_4bit_numel: int  # sum(p.numel()) after bitsandbytes packs 4-bit Linear weights two per byte
    layers: AdaptedLayers  # a sequence of AdaptedLayer, in named_modules() order
    targets: tuple[TargetMatch, ...]
    unmatched_targets: tuple[str, ...]
    modules_to_save: dict[str, int]  # entry -> parameters its copies add (0: matched nothing)
    unused_rank_pattern: tuple[str, ...]
    unused_alpha_pattern: tuple[str, ...]
    errors: tuple[str, ...]  # why PEFT would refuse this configuration, if it would

    @property
    def trainable_percent(self) -> float:
        return 100.0 * self.trainable_params / self.total_params if self.total_params else 0.0

    def at_rank(self, r: int, counted_r: int) -> tuple[int, int]:
        """(trainable, total) with the global rank set to ``r``, everything else as counted at ``counted_r``.

        Both are exactly linear in r: each adapted layer adds ``per_rank`` parameters per
        unit of the global rank, so one count gives any rank.
        """
        change = (r - counted_r) * self.rank_slope
        return self.trainable_params + change, self.total_params + change

    @cached_property
    def rank_slope(self) -> int:
        """Parameters one unit of the global rank adds (a rank sweep asks for it once per rank)."""
        return self.layers.total("per_rank")


def count_parameters(arch: Architecture, spec: AdapterSpec) -> ParamCount:
    """Trainable and total parameters of ``get_peft_model(model, LoraConfig(...))``, without building it.

    Settings that cannot tell one layer of a stack from another are counted once per distinct
    layer (:mod:`lora_lint.arch.blocks`); the others, and anything unusual, name by name.
    """
    return _Counter(arch, spec).run_by_blocks() or _Counter(arch, spec).run()


class _Counter:
    def __init__(self, arch: Architecture, spec: AdapterSpec) -> None:
        self.arch = arch
        self.spec = spec
        self.errors: list[str] = []
        self.rank_pattern = dict(spec.rank_pattern)
        self.alpha_pattern = dict(spec.alpha_pattern)
        self.modules_to_save = list(spec.modules_to_save or [])
        if spec.task_type == SEQ_CLS:
            self.modules_to_save += SEQ_CLS_HEAD_NAMES
        # PEFT's test for "inside a modules_to_save entry", formatted once rather than once per module name
        self._saved_patterns = [rf"(^|.*\.){m}($|\..*)" for m in self.modules_to_save]
        self._cached_targets: list[str] | None = None
        self._cached_set: frozenset[str] = frozenset()
        self._fused_multiplier: dict[str, int] = {}  # rank_pattern keys PEFT adds for fused expert pairs: r times this
        self._dotted_targets: list[tuple[str, str]] | None = None
        self._refused: dict[tuple[str, str], list[str]] = {}  # (kind, last name component) -> targeted modules
        self._entries_by_leaf: dict[str, list[str]] | None = None  # leaf -> listed entries, when none has a dot
        self._mamba = arch.family in _MAMBA_MODEL_TYPES
        self._mamba_refused: set[str] = set()  # the Mamba layer names already reported, one error each
        self._compiled: dict[str, re.Pattern[str] | None] = {}  # each pattern compiled once per count

    def run(self) -> ParamCount:
        arch = self.arch
        self._validate()
        targets = self._targets()
        target_params: set[str] = set()
        if arch.moe_conversion and targets is not None:
            targets, target_params = self._convert_moe(targets)
        if isinstance(targets, str) and targets.lower() == ALL_LINEAR:
            targets = self._all_linear()
        layers: list[AdaptedLayer] = []
        matched_by: dict[str, list[AdaptedLayer]] = {}
        if targets is not None:
            spec = self.spec
            # Without exclusions or a layer selection, every listed candidate is adapted: no need to ask _match.
            selective = (
                isinstance(targets, str)
                or spec.exclude_modules
                or self._saved_patterns
                or not (spec.layers_to_transform is None or spec.layers_to_transform == [])
            )
            for name in self._candidates(targets):
                if selective and not self._match(targets, name):
                    continue
                layer = self._adapt(name)
                if layer is not None:
                    layers.append(layer)
                    for target in self._entries_matching(targets, name):
                        if target in matched_by:
                            matched_by[target].append(layer)
                        else:
                            matched_by[target] = [layer]
        self.errors += [_refusal(kind, names) for (kind, _), names in self._refused.items()]
        if target_params:
            layers += self._adapt_parameters(target_params, {layer.name for layer in layers})
        if not layers and not self.errors:
            self.errors.append(self._no_match_message(targets))

        copies = self._modules_to_save_copies(layers)
        copied_roots = [root for roots in copies.values() for root in roots]
        return self._assemble(
            lora=sum(layer.lora_params for layer in layers),
            layers=AdaptedLayers(layers),
            not_repeated=layers,
            copies=copies,
            bias=self._trainable_bias(layers, copied_roots),
            targets=self._target_matches(targets, matched_by),
            unmatched=self._unmatched(targets),
        )

    def _assemble(
        self,
        *,
        lora: int,
        layers: AdaptedLayers,
        not_repeated: list[AdaptedLayer],
        copies: dict[str, list[str]],
        bias: int,
        targets: tuple[TargetMatch, ...],
        unmatched: tuple[str, ...],
    ) -> ParamCount:
        """The count from its parts. ``not_repeated``: the adapted layers outside repeated ones, where copies are.

        A copy that ``modules_to_save`` adds counts in both the trainable and the total numbers,
        and LoRA already inside a copied module stays with the frozen original.
        """
        copied_roots = [root for roots in copies.values() for root in roots]
        mts_params = sum(self._subtree_full_numel(root, not_repeated) for root in copied_roots)
        frozen = tuple(root + "." for root in copied_roots)
        frozen_lora = sum(layer.lora_params for layer in not_repeated if layer.name.startswith(frozen)) if frozen else 0
        base = self.arch.total_params
        total = base + lora + mts_params
        spec = self.spec
        return ParamCount(
            base_params=base,
            trainable_params=lora - frozen_lora + mts_params + bias,
            total_params=total,
            lora_params=lora,
            modules_to_save_params=mts_params,
            trainable_bias_params=bias,
            naive_4bit_numel=total - self.arch.packed_4bit_numel,
            layers=layers,
            targets=targets,
            unmatched_targets=unmatched,
            modules_to_save={
                entry: sum(self._subtree_full_numel(root, not_repeated) for root in roots) for entry, roots in copies.items()
            },
            unused_rank_pattern=self._unused(spec.rank_pattern, layers) if spec.rank_pattern else (),
            unused_alpha_pattern=self._unused(spec.alpha_pattern, layers) if spec.alpha_pattern else (),
            errors=tuple(self.errors),
        )

    # -- counting each distinct layer once -----------------------------------------------

    def run_by_blocks(self) -> ParamCount | None:
        """:meth:`run`'s result, with one record per distinct layer of each stack; None where that cannot be exact.

        Settings that see only a module's last name component and kind are decided once per
        template; settings that can tell layers apart (a regex, a layer selection, rank patterns,
        an exclusion regex) are matched against every layer's names (:meth:`_positional_run`).
        None, and the caller counts name by name, for a dotted target entry, PEFT's MoE conversion
        of anything but plain names, and wherever the per-name count reports an error naming
        modules (a refused module) or needs every name to word it (nothing matched, with exclusions).
        """
        selection = self._block_selection()
        if selection is None:
            return None
        listed, all_linear, label, positional = selection
        arch, spec = self.arch, self.spec
        names = arch.block_names
        skip = arch.output_layer
        if skip is None and spec.task_type == SEQ_CLS:
            skip = arch.classifier_head
        if not names.distinct or (skip is not None and skip not in arch.by_name_flat and skip in arch.by_name):
            return None  # a layer split in two runs, or an output layer inside one
        if any(leaf.endswith(entry) for leaf in names.inner_leaves for entry in self.modules_to_save):
            return None  # a modules_to_save entry inside the repeated layers
        entries, parameters = listed, set()
        if arch.moe_conversion:
            if all_linear and label is None:
                return None  # full names of the linear layers reach PEFT's conversion
            if all_linear:  # the conversion turns "all-linear" into the last components of the linear layers
                skipped = arch.by_name_flat.get(skip) if skip else None
                leaves = {_leaf(m.name) for m, _ in arch.weighted_modules() if m.kind in ALL_LINEAR_KINDS and m is not skipped}
                listed, all_linear = sorted(leaves | set(_MOE_TARGETS[arch.moe_conversion])), False
            entries, parameters = self._convert_moe(list(listed))
            if self.errors:
                return None
        if any(names.name_count.get(e, 0) != names.capable_count.get(e, 0) for e in entries):
            return None  # an entry naming a container, or a module LoRA refuses
        wanted = frozenset(entries)
        excluded = frozenset(spec.exclude_modules or ())
        regex = label if positional and label is not None else None
        match_targets = regex if regex is not None else entries

        def adapt(module: Module, name: str) -> AdaptedLayer | None:
            """``_match`` then ``_adapt``; without positional settings, from a name's last component and the kind."""
            if positional:
                if not self._match(match_targets, name):
                    return None
                if module.kind not in LORA_MODULE_KINDS:
                    self._refused.setdefault((module.kind, _leaf(name)), []).append(name)
                    return None
                return self._adapt_module(module, name)
            leaf = name[name.rfind(".") + 1 :]
            if not (leaf in wanted or (all_linear and module.kind in ALL_LINEAR_KINDS and name != skip)):
                return None
            if leaf in excluded or any(self._matches(pattern, name) for pattern in self._saved_patterns):
                return None
            return self._adapt_module(module, name)

        if regex is not None and any(self._match(regex, name) for name in names.flat_names if name not in arch.by_name_flat):
            return None  # a container matched: PEFT refuses it

        module_parts, parameter_parts = [], []  # what AdaptedLayers holds: module layers first, as PEFT lists them
        flat_layers: list[AdaptedLayer] = []
        adapted_modules: list[tuple[AdaptedLayer, Module, int]] = []  # each distinct layer, its module, how many
        adapted_parameters: list[tuple[AdaptedLayer, int]] = []
        parameter_leaves = {_leaf(name) for name in parameters}
        for part in arch.parts:
            if isinstance(part, Module):
                layer = adapt(part, part.name) if positional or part.kind in LORA_MODULE_KINDS else None
                if layer is not None:
                    module_parts.append(layer)
                    flat_layers.append(layer)
                    adapted_modules.append((layer, part, 1))
                for wrapped in self._parameter_layers(part, part.name, parameters, parameter_leaves, layer is not None):
                    parameter_parts.append(wrapped)
                    flat_layers.append(wrapped)
                    adapted_parameters.append((wrapped, 1))
                continue
            if positional:
                run = self._positional_run(part, match_targets, regex)
                if run is None:
                    return None
                variants, adapted_by_variant = run
                for instances, adapted in zip(variants.instances, adapted_by_variant):
                    adapted_modules += [(layer, module, instances) for layer, module in adapted]
                if any(adapted_by_variant):
                    module_parts.append((variants, tuple(tuple(layer for layer, _ in a) for a in adapted_by_variant)))
                continue
            by_template, parameters_by_template = [], []
            for template, instances in zip(part.templates, part.instances):
                prefix = part.prefix(part.first_layer(len(by_template)))
                adapted, wrapped = [], []
                for module in template:
                    layer = adapt(module, prefix + module.name) if module.kind in LORA_MODULE_KINDS else None
                    if layer is not None:
                        adapted.append(layer.renamed(module.name))
                        adapted_modules.append((adapted[-1], module, instances))
                    on_parameters = self._parameter_layers(
                        module, prefix + module.name, parameters, parameter_leaves, layer is not None
                    )
                    for parameter_layer in on_parameters:
                        wrapped.append(parameter_layer.renamed(parameter_layer.name[len(prefix) :]))
                        adapted_parameters.append((wrapped[-1], instances))
                by_template.append(tuple(adapted))
                parameters_by_template.append(tuple(wrapped))
            if any(by_template):
                module_parts.append((part, tuple(by_template)))
            if any(parameters_by_template):
                parameter_parts.append((part, tuple(parameters_by_template)))
        if self.errors or self._refused:
            return None  # the per-name count reports these, naming the modules
        if not adapted_modules and not adapted_parameters:
            if all_linear or spec.exclude_modules or self._saved_patterns:
                return None  # whether every name was excluded decides PEFT's message: name by name
            self.errors.append(_not_found(match_targets))  # nothing excluded: every name is simply unmatched

        errors = len(self.errors)
        copies = self._modules_to_save_copies(flat_layers, names.flat_names)
        copied_roots = [root for roots in copies.values() for root in roots]
        stacks = [part.stack + "." for part in arch.parts if not isinstance(part, Module)]
        if len(self.errors) > errors or any(stack.startswith(root + ".") for root in copied_roots for stack in stacks):
            return None  # a copy that holds repeated layers, or one of an adapted module
        lora = sum(layer.lora_params * instances for layer, _, instances in adapted_modules)
        lora += sum(layer.lora_params * instances for layer, instances in adapted_parameters)
        if label is not None:
            adapted_count = sum(instances for _, _, instances in adapted_modules)
            shapes = _shapes(layer for layer, _, _ in adapted_modules)
            targets = (TargetMatch(label, adapted_count, adapted_count, shapes),)
        else:
            targets = tuple(
                TargetMatch(
                    entry,
                    names.name_count.get(entry, 0),
                    sum(instances for layer, _, instances in adapted_modules if _leaf(layer.name) == entry),
                    _shapes(layer for layer, _, _ in adapted_modules if _leaf(layer.name) == entry),
                )
                for entry in listed
            )
        moe_names = set(_MOE_TARGETS.get(arch.moe_conversion or "", {}))
        return self._assemble(
            lora=lora,
            layers=AdaptedLayers(module_parts + parameter_parts),
            not_repeated=flat_layers,
            copies=copies,
            bias=self._bias_by_blocks(adapted_modules, copied_roots),
            targets=targets,
            unmatched=()
            if label is not None
            else tuple(e for e in listed if e not in moe_names and not names.name_count.get(e)),
        )

    def _positional_run(
        self, block: Block, targets: list[str] | str, regex: str | None
    ) -> tuple[Block, list[list[tuple[AdaptedLayer, Module]]]] | None:
        """Every layer of ``block`` matched by its full names; layers that come out alike share a variant.

        Returns ``block`` with its layers regrouped by variant (a template, the modules matched
        and their ranks), and per variant the adapted layers (named relative to the layer) with
        their modules; None when ``regex`` matches a container, which PEFT refuses. Layer records
        are made once per variant, not once per layer.
        """
        patterns = bool(self.rank_pattern or self.alpha_pattern)
        variants: dict[tuple, int] = {}
        template_of: list[int] = []
        templates: list[tuple[Module, ...]] = []
        adapted_by_variant: list[list[tuple[AdaptedLayer, Module]]] = []
        containers = [_containers(template) for template in block.templates] if regex is not None else []
        matches = self._matcher(targets)
        for position, template_id in enumerate(block.template_of):
            prefix = block.prefix(position)
            template = block.templates[template_id]
            if regex is not None and any(
                matches(name) for name in (prefix[:-1], *(prefix + c for c in containers[template_id]))
            ):
                return None
            matched: list = []
            for index, module in enumerate(template):
                name = prefix + module.name
                if not matches(name):
                    continue
                if module.kind not in LORA_MODULE_KINDS:
                    self._refused.setdefault((module.kind, _leaf(name)), []).append(name)
                    continue
                matched.append((index, self._rank_alpha(name)) if patterns else index)
            key = (template_id, tuple(matched))
            variant = variants.get(key)
            if variant is None:
                variant = variants[key] = len(templates)
                templates.append(template)
                adapted = []
                for entry in matched:
                    module = template[entry[0] if patterns else entry]
                    layer = self._adapt_module(module, prefix + module.name)
                    if layer is not None:
                        adapted.append((layer.renamed(module.name), module))
                adapted_by_variant.append(adapted)
            template_of.append(variant)
        instances = [0] * len(templates)
        for variant in template_of:
            instances[variant] += 1
        regrouped = Block(block.stack, block.indices, tuple(template_of), tuple(templates), tuple(instances))
        return regrouped, adapted_by_variant

    def _matcher(self, targets: list[str] | str) -> Callable[[str], object]:
        """``_match(targets, name)`` as a one-argument test; a bare regex is its compiled ``fullmatch`` (no exclusions)."""
        if isinstance(targets, str) and not self.spec.exclude_modules and not self._saved_patterns:
            self._matches(targets, "", whole=True)  # compiled once (an invalid pattern is noted as PEFT reports it)
            compiled = self._compiled[targets]
            if compiled is not None:
                return compiled.fullmatch
        return lambda name: self._match(targets, name)

    def _block_selection(self) -> tuple[list[str], bool, str | None, bool] | None:
        """How :meth:`run_by_blocks` selects, or None where only the per-name count is exact.

        Returns the plain entries of a target list, whether all-linear also selects, the one
        entry a report shows (``all-linear`` or a regex) and whether the selection is
        positional: a regex, a layer selection, rank patterns or an exclusion regex can tell
        layers apart, so every layer's names are then matched, not one layer per template.
        """
        spec, arch = self.spec, self.arch
        self._validate()
        if self.errors or spec.bias not in ("none", "all", "lora_only"):
            return None
        if not all(isinstance(e, str) and _IDENTIFIER.fullmatch(e) for e in self.modules_to_save):
            return None
        exclude = spec.exclude_modules
        if exclude and not isinstance(exclude, (str, list)):
            return None
        positional = bool(
            self.rank_pattern
            or self.alpha_pattern
            or not (spec.layers_to_transform is None or spec.layers_to_transform == [])
            or spec.layers_pattern
            or (exclude and not (isinstance(exclude, list) and all(_plain(e) for e in exclude)))
        )
        targets = spec.target_modules
        if arch.moe_conversion and (positional or (targets is None and not spec.target_linear)):
            return None  # PEFT's conversion adds rank patterns, and empties missing targets (an error)
        if spec.target_linear:
            if positional:
                return None
            if targets is None or targets == []:
                return [], True, ALL_LINEAR, False
            entries, all_linear = targets, True
        elif targets is None:
            entries, all_linear = arch.default_targets, False
            if isinstance(entries, str):  # PEFT's default regex
                return None if arch.moe_conversion else ([], False, entries, True)
        elif isinstance(targets, str):
            if targets.lower() == ALL_LINEAR:
                return None if positional else ([], True, targets, False)
            # PEFT's MoE conversion turns a regex into the names it matches, in every layer
            return None if arch.moe_conversion else ([], False, targets, True)
        else:
            entries, all_linear = targets, False
        if not isinstance(entries, (list, tuple)) or not all(_plain(e) for e in entries):
            return None
        if len(set(entries)) != len(entries):
            return None
        return list(entries), all_linear, None, positional

    def _bias_by_blocks(self, weighted: list[tuple[AdaptedLayer, Module, int]], copied_roots: list[str]) -> int:
        """:meth:`_trainable_bias` on distinct layers; copied roots never hold repeated layers here."""
        bias = self.spec.bias
        if bias == "none":
            return 0
        if bias == "lora_only":
            return sum(module.numel("bias") * instances for _, module, instances in weighted if module.bias)
        frozen = tuple(root + "." for root in copied_roots)
        total = 0
        for part in self.arch.parts:
            if isinstance(part, Module):
                if part.bias and part.name not in copied_roots and not part.name.startswith(frozen):
                    total += part.numel("bias")
                continue
            for template, instances in zip(part.templates, part.instances):
                total += sum(module.numel("bias") for module in template if module.bias) * instances
        return total

    # -- configuration ------------------------------------------------------------------

    def _validate(self) -> None:
        spec = self.spec
        if not isinstance(spec.r, int) or spec.r <= 0:
            self.errors.append(f"r must be a positive integer, got {spec.r!r}")
        if isinstance(spec.target_modules, str) and spec.layers_to_transform is not None:
            self.errors.append("layers_to_transform cannot be used when target_modules is a str")
        if isinstance(spec.target_modules, str) and spec.layers_pattern is not None:
            self.errors.append("layers_pattern cannot be used when target_modules is a str")
        if spec.layers_pattern and spec.layers_to_transform is None:
            self.errors.append("layers_pattern requires layers_to_transform")

    def _targets(self) -> list[str] | str | None:
        spec = self.spec
        targets = spec.target_modules
        if spec.target_linear:
            if not targets:
                return ALL_LINEAR
            listed = [targets] if isinstance(targets, str) else list(targets)
            return sorted(set(listed) | set(self._all_linear()))
        if targets is None:
            if self.arch.moe_conversion:
                # PEFT converts the config for transformers 5 before it fills in defaults, and that
                # conversion turns a missing target list into an empty one: nothing is matched.
                self.errors.append(
                    f"target_modules is required for {self.arch.family}: PEFT's MoE conversion leaves it empty"
                )
                return None
            default = self.arch.default_targets
            if default is None:
                self.errors.append(f"PEFT has no default target_modules for model type {self.arch.family!r}")
                return None
            return default if isinstance(default, str) else list(default)
        return targets

    def _all_linear(self) -> list[str]:
        """PEFT's ``all-linear``: full names of every Linear/Conv1D except the output layer."""
        arch = self.arch
        skip = arch.output_layer
        if skip is None and self.spec.task_type == SEQ_CLS:
            skip = arch.classifier_head
        return [m.name for m in arch.modules if m.kind in ALL_LINEAR_KINDS and m.name != skip]

    def _convert_moe(self, targets: list[str] | str) -> tuple[list[str] | str, set[str]]:
        """PEFT's ``_convert_peft_config_moe``: expert projection names become parameter targets."""
        mapping = _MOE_TARGETS[self.arch.moe_conversion]
        fused = _MOE_FUSED[self.arch.moe_conversion]
        if isinstance(targets, str):
            resolved = self._resolve_string_targets(targets, mapping)
            if not resolved:
                return targets, set()
            targets = sorted(resolved)
        remaining: list[str] = []
        parameters: set[str] = set()
        present: dict[str, set[str]] = {new: set() for new in fused}
        for target in targets:
            old = next((o for o in mapping if target == o or target.endswith(f".{o}")), None)
            if old is None:
                remaining.append(target)
                continue
            parameters.add(mapping[old])
            if mapping[old] in fused:
                present[mapping[old]].add(old)
        for new, required in fused.items():
            have = present[new]
            if 0 < len(have) < len(required):
                missing = ", ".join(sorted(set(required) - have))
                self.errors.append(
                    f"{', '.join(sorted(have))} cannot be targeted without {missing}: "
                    f"transformers 5 fuses them into {new}"
                )
            elif len(have) == len(required) > 1:
                key = rf".*\.{re.escape(new)}"
                self._fused_multiplier[key] = len(required)
                self.rank_pattern[key] = self.spec.r * len(required)
                self.alpha_pattern[key] = self.spec.lora_alpha * len(required)
        return remaining, parameters

    def _resolve_string_targets(self, targets: str, mapping: dict[str, str]) -> set[str]:
        if targets.lower() == ALL_LINEAR:
            return {name.rsplit(".", 1)[-1] for name in self._all_linear()} | set(mapping)
        keys = list(self.arch.module_names) + self._parameter_keys()
        matched = {key.rsplit(".", 1)[-1] for key in keys if self._match(targets, key)}
        containers: dict[str, list[str]] = {}
        for key in self._parameter_keys():
            container, _, leaf = key.rpartition(".")
            containers.setdefault(leaf, []).append(container)
        for old, new in mapping.items():
            if old not in matched and any(self._match(targets, f"{c}.{old}") for c in containers.get(new, ())):
                matched.add(old)
        return matched

    def _parameter_keys(self) -> list[str]:
        return [f"{m.name}.{p}" for m in self.arch.modules for p, _ in m.params if not (m.tied_to and p == "weight")]

    # -- matching ------------------------------------------------------------------------

    def _match(self, targets: list[str] | str, key: str) -> bool | None:
        """PEFT's ``check_target_module_exists``: True adapted, False excluded, None not targeted."""
        spec = self.spec
        exclude = spec.exclude_modules
        if exclude:
            if isinstance(exclude, str):
                if self._matches(exclude, key, whole=True):
                    return False
            elif key in exclude or any(key.endswith(f".{e}") for e in exclude):
                return False
        if self._saved_patterns and any(self._matches(pattern, key) for pattern in self._saved_patterns):
            return False
        if isinstance(targets, str):
            return True if self._matches(targets, key, whole=True) else None
        target_set = self._target_set(targets)
        if key in target_set:
            return True
        if not _suffix_in(key, target_set):
            return None
        layers = spec.layers_to_transform
        if layers is None or layers == []:
            return True
        index = self._layer_index(key)
        if index is None:
            return None
        selected = index == layers if isinstance(layers, int) else index in layers
        return True if selected else None

    def _candidates(self, targets: list[str] | str) -> Iterable[str]:
        """The module names, in ``named_modules()`` order, that a list of targets matches.

        An entry ``t`` matches a name equal to it or ending in ``"." + t``: either way the name's
        last component is ``t``'s, so only the names sharing a last component with some entry are
        looked at. The other names cannot be adapted, and trying them would change nothing but the
        counts of the no-match message (recounted when needed), unless an exclusion regex is
        invalid: PEFT reports it on the first name tried, so then every name is tried.
        """
        names = self.arch.module_names
        if isinstance(targets, str) or not self._exclusion_regexes_compile():
            return names
        plain = {target for target in targets if "." not in target}  # every name with this last component
        dotted = frozenset(target for target in targets if "." in target)
        index = self.arch.names_by_leaf
        positions = [position for leaf in plain for position in index.get(leaf, ())]
        for leaf in {target[target.rfind(".") + 1 :] for target in dotted} - plain:
            positions += [p for p in index.get(leaf, ()) if names[p] in dotted or _suffix_in(names[p], dotted)]
        positions.sort()
        return [names[position] for position in positions]

    def _exclusion_regexes_compile(self) -> bool:
        patterns = list(self._saved_patterns)
        if isinstance(self.spec.exclude_modules, str):
            patterns.append(self.spec.exclude_modules)
        try:
            for pattern in patterns:
                re.compile(pattern)
        except re.error:
            return False
        return True

    def _matches(self, pattern: str, key: str, *, whole: bool = False) -> bool:
        """``re.fullmatch`` (``whole``) or ``re.match``; an invalid pattern matches nothing and is reported once."""
        try:
            compiled = self._compiled[pattern]
        except KeyError:
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                _note_regex_error(pattern, exc, self.errors)
                compiled = None
            self._compiled[pattern] = compiled
        if compiled is None:
            return False
        return (compiled.fullmatch(key) if whole else compiled.match(key)) is not None

    def _target_set(self, targets: list[str]) -> frozenset[str]:
        if self._cached_targets is not targets:
            self._cached_targets, self._cached_set = targets, frozenset(targets)
        return self._cached_set

    def _layer_index(self, key: str) -> int | None:
        patterns = self.spec.layers_pattern
        if not patterns:
            match = re.match(r".*?\.[^.]*\.(?P<idx>\d+)\.", key)
        else:
            match = None
            for pattern in [patterns] if isinstance(patterns, str) else patterns:
                match = re.match(rf"(?:^|.*?\.){pattern}\.(?P<idx>\d+)\.", key)
                if match:
                    break
        return int(match.group("idx")) if match else None

    def _entries_matching(self, targets: list[str] | str, name: str) -> list[str]:
        if isinstance(targets, str):
            return [targets]
        if self._dotted_targets is None:  # ".q_proj" spelled once per count, not once per adapted layer
            self._dotted_targets = [(t, f".{t}") for t in self._listed_targets()]
            self._entries_by_leaf = None if any("." in t for t in self._listed_targets()) else {}
        by_leaf = self._entries_by_leaf
        if by_leaf is None:
            return [t for t, dotted in self._dotted_targets if name == t or name.endswith(dotted)] or [name]
        # Entries without a dot match on the last name component alone: one answer per component.
        leaf = name[name.rfind(".") + 1 :]
        if leaf not in by_leaf:
            by_leaf[leaf] = [t for t, _ in self._dotted_targets if leaf == t]
        return by_leaf[leaf] or [name]

    def _listed_targets(self) -> list[str]:
        targets = self.spec.target_modules
        if isinstance(targets, list):
            return targets
        default = self.arch.default_targets
        if targets is None and not self.spec.target_linear and not isinstance(default, str):
            return list(default or [])
        return []

    def _regex_target(self) -> str | None:
        """The regex in effect: a string ``target_modules``, or the family's default when that is a regex."""
        targets, default = self.spec.target_modules, self.arch.default_targets
        if isinstance(targets, str):
            return targets
        return default if targets is None and not self.spec.target_linear and isinstance(default, str) else None

    def _adapt(self, name: str) -> AdaptedLayer | None:
        module = self.arch.by_name.get(name)
        if module is None or module.kind not in LORA_MODULE_KINDS:
            kind = module.kind if module else "container"
            self._refused.setdefault((kind, name.rsplit(".", 1)[-1]), []).append(name)
            return None
        return self._adapt_module(module, name)

    def _adapt_module(self, module: Module, name: str) -> AdaptedLayer | None:
        """LoRA on a LoRA-capable ``module`` called ``name``."""
        if self._mamba:
            leaf = name[name.rfind(".") + 1 :]
            if leaf in _MAMBA_INCOMPATIBLE:
                if leaf not in self._mamba_refused:
                    self._mamba_refused.add(leaf)
                    self.errors.append(
                        f"PEFT refuses LoRA on {leaf} in Mamba-based {self.arch.family} models (e.g. {name})"
                    )
                return None
        r, alpha, follows = self._rank_alpha(name)
        size = module.in_features + module.out_features
        if module.kind == CONV:
            groups = _conv_groups(module)
            if r % groups:
                self.errors.append(f"LoRA on {name} needs a rank divisible by its {groups} convolution groups")
                return None
            size = module.in_features + module.out_features // groups  # lora_B is grouped like the layer
        params = r * size
        if self.spec.use_dora:
            params += module.out_features  # one magnitude per output row (per embedding_dim for an Embedding)
        return AdaptedLayer(name, module.kind, module.in_features, module.out_features, r, alpha, params, follows * size)

    def _adapt_parameters(self, names: set[str], wrapped: set[str]) -> list[AdaptedLayer]:
        """LoRA on ``target_parameters`` (fused MoE tensors), as ``lora.ParamWrapper`` builds it."""
        if not names:
            return []
        leaves = {name[name.rfind(".") + 1 :] for name in names}  # a key matches only a name with its last component
        layers = []
        for module in self.arch.modules:
            layers += self._parameter_layers(module, module.name, names, leaves, module.name in wrapped)
        return layers

    def _parameter_layers(
        self, module: Module, name: str, names: set[str], leaves: set[str], wrapped: bool
    ) -> list[AdaptedLayer]:
        """The ``target_parameters`` LoRA layers of ``module``, called ``name`` (``wrapped``: LoRA already wraps it)."""
        layers = []
        for param, shape in module.params:
            if param not in leaves or (module.tied_to and param == "weight"):
                continue
            key = f"{name}.{param}"
            if not (key in names or any(key.endswith(f".{n}") for n in names)):
                continue
            if wrapped:
                self.errors.append(f"{key} is targeted as a parameter of a module LoRA already wraps")
                continue
            if self.spec.lora_dropout:
                self.errors.append(f"PEFT cannot apply lora_dropout to the fused expert parameter {key}")
            if self.spec.use_dora:
                self.errors.append(f"PEFT cannot apply DoRA to the fused expert parameter {key}")
            experts, rows, cols = shape if len(shape) == 3 else (1, shape[0], shape[1])
            in_features, out_features = (cols, rows)
            r, alpha, follows = self._rank_alpha(key)
            size = experts * (in_features + out_features)
            layers.append(AdaptedLayer(key, "Parameter", in_features, out_features, r, alpha, r * size, follows * size))
        return layers

    def _rank_alpha(self, key: str) -> tuple[int, float, int]:
        """The layer's r and alpha, and how many times the global r its rank follows (0: pinned by rank_pattern)."""
        if not self.rank_pattern and not self.alpha_pattern:  # the common case, without a regex per layer
            return int(self.spec.r), self.spec.lora_alpha, 1
        r_key = self._pattern_key(self.rank_pattern, key)
        a_key = self._pattern_key(self.alpha_pattern, key)
        r = self.rank_pattern.get(r_key, self.spec.r) if r_key else self.spec.r
        alpha = self.alpha_pattern.get(a_key, self.spec.lora_alpha) if a_key else self.spec.lora_alpha
        follows = 1 if r_key is None else self._fused_multiplier.get(r_key, 0)
        return int(r), alpha, follows

    def _pattern_key(self, pattern: dict[str, Any], key: str) -> str | None:
        for candidate in pattern:
            if self._matches(rf"(.*\.)?({candidate})$", key):
                return candidate
        return None

    # -- what else becomes trainable -----------------------------------------------------

    def _modules_to_save_copies(self, layers: list[AdaptedLayer], names: Iterable[str] | None = None) -> dict[str, list[str]]:
        """Entry -> the modules ``ModulesToSaveWrapper`` copies for it (outermost only), among ``names`` (all)."""
        if not self.modules_to_save:
            return {}
        adapted = {layer.name for layer in layers}
        copies: dict[str, list[str]] = {entry: [] for entry in self.modules_to_save}
        taken: list[str] = []
        endings = tuple(self.modules_to_save)
        for name in self.arch.module_names if names is None else names:
            if not name.endswith(endings):
                continue
            entry = next((e for e in self.modules_to_save if name.endswith(e)), None)
            if entry is None or any(name.startswith(root + ".") for root in taken) or name in taken:
                continue
            if name in adapted:
                self.errors.append(f"modules_to_save entry {entry!r} also names the LoRA-adapted module {name}")
            copies[entry].append(name)
            taken.append(name)
        return copies

    def _subtree_full_numel(self, root: str, layers: list[AdaptedLayer]) -> int:
        """A deep copy of ``root``: its modules, and the expert-parameter LoRA already wrapped inside it."""
        prefix = root + "."
        wrapped = sum(layer.lora_params for layer in layers if layer.name.startswith(prefix))
        return sum(module.full_numel for module in self.arch.subtree(root)) + wrapped

    def _trainable_bias(self, layers: Iterable[AdaptedLayer], copied_roots: list[str]) -> int:
        bias = self.spec.bias
        if bias == "none":
            return 0
        if bias == "lora_only":
            names = {layer.name for layer in layers}
            return sum(m.numel("bias") for m in self.arch.modules if m.name in names and m.bias)
        if bias != "all":
            self.errors.append(f"bias must be 'none', 'all' or 'lora_only', got {bias!r}")
            return 0
        frozen = tuple(root + "." for root in copied_roots)
        return sum(
            m.numel("bias")
            for m in self.arch.modules
            if m.bias and m.name not in copied_roots and not m.name.startswith(frozen)
        )

    # -- reporting -----------------------------------------------------------------------

    def _target_matches(
        self, targets: list[str] | str | None, matched_by: dict[str, list[AdaptedLayer]]
    ) -> tuple[TargetMatch, ...]:
        if targets is None:
            return ()
        regex = self._regex_target()
        entries = [regex] if regex is not None else self._listed_targets()
        if self.spec.target_linear and not self.spec.target_modules:
            entries = [ALL_LINEAR]
        if entries == [ALL_LINEAR] or regex is not None:
            layers = [layer for group in matched_by.values() for layer in group]
            unique = {layer.name: layer for layer in layers}.values()
            return (TargetMatch(str(entries[0]), len(unique), len(unique), _shapes(unique)),)
        result = []
        for entry in entries:
            adapted = matched_by.get(entry, [])
            present = len(self._names_matching(entry))
            result.append(TargetMatch(entry, present, len(adapted), _shapes(adapted)))
        return tuple(result)

    def _names_matching(self, entry: str) -> list[str]:
        """Module names equal to ``entry`` or ending in ``"." + entry`` (all share its last component)."""
        names = self.arch.module_names
        dotted = "." + entry
        positions = self.arch.names_by_leaf.get(entry[entry.rfind(".") + 1 :], ())
        return [names[p] for p in positions if names[p] == entry or names[p].endswith(dotted)]

    def _unmatched(self, targets: list[str] | str | None) -> tuple[str, ...]:
        if targets is None or self._regex_target() is not None:
            return ()
        moe_names = set(_MOE_TARGETS.get(self.arch.moe_conversion or "", {}))
        return tuple(
            entry for entry in self._listed_targets() if entry not in moe_names and not self._names_matching(entry)
        )

    def _unused(self, pattern: dict[str, Any], layers: list[AdaptedLayer]) -> tuple[str, ...]:
        return tuple(
            key for key in pattern if not any(_search(rf"(.*\.)?({key})$", layer.name, []) for layer in layers)
        )

    def _no_match_message(self, targets: list[str] | str | None) -> str:
        if targets is None:
            return "no target_modules"
        results = [self._match(targets, name) for name in self.arch.module_names]
        excluded, unmatched = results.count(False), results.count(None)
        if excluded and not unmatched:
            return "all modules were excluded (exclude_modules / modules_to_save)"
        return _not_found(targets)


def _not_found(targets: list[str] | str) -> str:
    return f"target modules {targets if isinstance(targets, str) else sorted(targets)} not found in the base model"


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
"""A modules_to_save entry that, as PEFT's regex, matches one whole name component and never a layer number."""


def _plain(entry: object) -> bool:
    """A list entry that matches by last name component alone: no dot, and not a layer number."""
    return isinstance(entry, str) and entry != "" and "." not in entry and not entry.isdigit()


def _leaf(name: str) -> str:
    return name[name.rfind(".") + 1 :]


def _containers(template: tuple[Module, ...]) -> list[str]:
    """The names above a layer's modules that are no module themselves (``self_attn``), relative to the layer."""
    names: dict[str, None] = {}
    for module in template:
        add_with_ancestors(module.name, names)
    modules = {module.name for module in template}
    return [name for name in names if name not in modules]


def _suffix_in(key: str, targets: frozenset[str]) -> bool:
    """Whether some ``t`` in ``targets`` has ``key.endswith("." + t)``: each dotted suffix of ``key``, looked up.

    A plain loop rather than a generator: it runs for every module name of the model.
    """
    start = key.find(".")
    while start != -1:
        if key[start + 1 :] in targets:
            return True
        start = key.find(".", start + 1)
    return False


def _refusal(kind: str, names: list[str]) -> str:
    """One error for every targeted module of one kind and name, however many layers repeat it."""
    if len(names) == 1:
        return f"target {names[0]} is a {kind} module, which LoRA cannot adapt"
    leaf = names[0].rsplit(".", 1)[-1]
    return f"{len(names)} targeted {kind} modules named {leaf}, which LoRA cannot adapt (e.g. {names[0]})"


def _conv_groups(module: Module) -> int:
    """A convolution's groups, from its weight ``(out, in / groups, *kernel)`` and its fan-in ``in * kernel``."""
    weight = next(shape for name, shape in module.params if name == "weight")
    return module.in_features // prod(weight[1:])


def _shapes(layers: Iterable[AdaptedLayer]) -> tuple[tuple[int, int], ...]:
    return tuple(sorted({(layer.in_features, layer.out_features) for layer in layers}))


def _search(pattern: str, key: str, errors: list[str]) -> bool:
    try:
        return re.match(pattern, key) is not None
    except re.error as exc:
        _note_regex_error(pattern, exc, errors)
        return False


def _note_regex_error(pattern: str, exc: re.error, errors: list[str]) -> None:
    message = f"invalid regular expression {pattern!r}: {exc}"
    if message not in errors:
        errors.append(message)

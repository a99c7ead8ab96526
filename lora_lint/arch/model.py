"""The model as PEFT sees it: every named module that holds parameters, with its shapes.

PEFT decides what to adapt by matching target names against the full module names
of ``model.named_modules()`` and by looking at each module's type. This module
describes exactly that, without torch: a flat list of :class:`Module` records named
as transformers names them (``model.layers.3.self_attn.q_proj``), built by
:mod:`lora_lint.arch.families` from a ``config.json``.
"""

from __future__ import annotations

from lora_lint.record import Record
from collections.abc import Callable, Hashable, Iterator
from functools import cached_property
from math import prod

LINEAR = "Linear"  # torch.nn.Linear and its subclasses
CONV1D = "Conv1D"  # transformers.pytorch_utils.Conv1D (GPT-2): weight stored as (in, out)
EMBEDDING = "Embedding"  # torch.nn.Embedding and its subclasses
NORM = "Norm"  # LayerNorm / RMSNorm variants
EXPERTS = "Experts"  # fused MoE experts: 3-D parameters, not nn.Linear
ROUTER = "Router"  # MoE top-k router: a weight parameter, not nn.Linear
CONV = "Conv"  # torch.nn.Conv1d/2d/3d: patch embeddings, the short convolutions of linear-attention layers
OTHER = "Other"  # any other module that holds parameters directly (gates, scales, position tables)

LORA_MODULE_KINDS = frozenset({LINEAR, CONV1D, EMBEDDING, CONV})
"""Module types LoRA can wrap among those the supported families contain."""
ALL_LINEAR_KINDS = frozenset({LINEAR, CONV1D})
"""What PEFT's ``all-linear`` collects (``isinstance(m, (nn.Linear, Conv1D))``)."""


class Module(Record):
    """One named module and the parameters it owns directly.

    For Linear and Conv1D, ``in_features``/``out_features`` are the layer's; for an
    Embedding they are ``num_embeddings``/``embedding_dim`` (the shapes PEFT gives
    ``lora_embedding_A``/``B``); for a Conv, ``in_features`` is the fan-in of one output
    channel times the groups (``in_channels * kernel elements``: what ``lora_A`` reads) and
    ``out_features`` the output channels. ``tied_to`` names the module whose weight this module
    shares, so that the shared tensor is counted once, as ``named_parameters()`` does.
    """

    __slots__ = ("name", "kind", "params", "in_features", "out_features", "tied_to")

    name: str
    kind: str
    params: tuple[tuple[str, tuple[int, ...]], ...]
    in_features: int
    out_features: int
    tied_to: str | None

    def __init__(
        self,
        name: str,
        kind: str,
        params: tuple[tuple[str, tuple[int, ...]], ...] = (),
        in_features: int = 0,
        out_features: int = 0,
        tied_to: str | None = None,
    ) -> None:  # a plain __init__: a model has hundreds of modules (see lora_lint.record)
        self.name = name
        self.kind = kind
        self.params = params
        self.in_features = in_features
        self.out_features = out_features
        self.tied_to = tied_to

    def renamed(self, name: str, tied_to: str | None) -> Module:
        """This module under another name (a model nested in a composite one); ``replace`` costs more."""
        return Module(name, self.kind, self.params, self.in_features, self.out_features, tied_to)

    @property
    def bias(self) -> bool:
        return any(param == "bias" for param, _ in self.params)

    def numel(self, param: str) -> int:
        return next(prod(shape) for name, shape in self.params if name == param)

    @property
    def own_numel(self) -> int:
        """Parameters this module contributes to a de-duplicated count (a tied weight counts at its source)."""
        return sum(prod(shape) for name, shape in self.params if not (self.tied_to and name == "weight"))

    @property
    def full_numel(self) -> int:
        """Parameters of a deep copy of this module (a copy never shares a tied weight)."""
        return sum(prod(shape) for _, shape in self.params)


class Architecture(Record):
    """A model family instantiated from one config, for one task head."""

    family: str  # the config's model_type
    task_type: str  # CAUSAL_LM | SEQ_CLS | SEQ_2_SEQ_LM
    parts: tuple  # the modules, repeated layers grouped (lora_lint.arch.blocks): Module and Block records
    num_layers: int
    hidden_size: int
    vocab_size: int
    tied_embeddings: bool
    input_embedding: str  # name of get_input_embeddings()
    output_layer: str | None  # name of get_output_embeddings(); None for classifier heads
    classifier_head: str | None = None  # the top-level `score`/`classifier` module of a SEQ_CLS model
    moe_conversion: str | None = None  # PEFT's transformers-v5 MoE target conversion ("mixtral" | "qwen2_moe")
    default_targets: tuple[str, ...] | str | None = None  # PEFT's per-model_type default target_modules (str: a regex)
    config: dict = {}
    model_class: str | None = None  # the transformers class described, where the task's Auto class has none
    language_config: object = None  # the families.Config the language model was read from (its text_config, if nested)
    note: str | None = None  # where this description knowingly differs from the real model

    @cached_property
    def modules(self) -> tuple[Module, ...]:
        """Every module, named in full, in ``named_modules()`` order (expanded from :attr:`parts` when asked for)."""
        from lora_lint.arch.blocks import expand

        return tuple(expand(self.parts))

    @cached_property
    def by_name(self) -> dict[str, Module]:
        return {module.name: module for module in self.modules}

    @property
    def module_names(self) -> tuple[str, ...]:
        """Every name ``named_modules()`` yields that matters: modules with parameters and their ancestors."""
        return self._name_index[0]

    @property
    def names_by_leaf(self) -> dict[str, list[int]]:
        """Positions in :attr:`module_names` by last name component: the names a target entry can match."""
        return self._name_index[1]

    @cached_property
    def _name_index(self) -> tuple[tuple[str, ...], dict[str, list[int]]]:
        names: dict[str, None] = {}
        by_leaf: dict[str, list[int]] = {}
        known_parent = ""  # most modules are siblings of the one before
        for module in self.modules:
            name = module.name
            parent, _, leaf = name.rpartition(".")
            # Every name listed has its ancestors listed before it: a known parent means known ancestors.
            if parent != known_parent:
                if parent and parent not in names:
                    parts = name.split(".")
                    for depth in range(1, len(parts)):
                        ancestor = ".".join(parts[:depth])
                        if ancestor not in names:
                            by_leaf.setdefault(parts[depth - 1], []).append(len(names))
                            names[ancestor] = None
                known_parent = parent
            if name not in names:
                if leaf in by_leaf:
                    by_leaf[leaf].append(len(names))
                else:
                    by_leaf[leaf] = [len(names)]
                names[name] = None
        return tuple(names), by_leaf

    @cached_property
    def block_names(self):  # type: ignore[no-untyped-def]
        """Module names seen through :attr:`parts` (see :class:`lora_lint.arch.blocks.BlockNames`)."""
        from lora_lint.arch.blocks import BlockNames

        return BlockNames(self.parts)

    @cached_property
    def total_params(self) -> int:
        """Parameters of the base model, each shared tensor once (``sum(p.numel() for p in model.parameters())``)."""
        return sum(module.own_numel * instances for module, instances in self.weighted_modules())

    @cached_property
    def packed_4bit_numel(self) -> int:
        """Elements bitsandbytes 4-bit packing hides from ``numel()``: half of each quantized weight.

        transformers quantizes every Linear/Conv1D except the output layer and the
        weights tied to the input embedding.
        """
        hidden = 0
        output = self.output_layer
        if output and output not in self.by_name_flat:  # an output layer inside a repeated layer: name by name
            return sum(
                m.in_features * m.out_features // 2
                for m in self.modules
                if (m.kind == LINEAR or m.kind == CONV1D) and not m.tied_to and m.name != output
            )
        for m, instances in self.weighted_modules():
            if (m.kind == LINEAR or m.kind == CONV1D) and not m.tied_to:
                hidden += m.in_features * m.out_features // 2 * instances  # the weight's elements, (out, in) or Conv1D's (in, out)
        skipped = self.by_name_flat.get(output) if output else None
        if skipped is not None and (skipped.kind == LINEAR or skipped.kind == CONV1D) and not skipped.tied_to:
            hidden -= skipped.in_features * skipped.out_features // 2
        return hidden

    @cached_property
    def by_name_flat(self) -> dict[str, Module]:
        """The modules outside repeated layers, by name (the embeddings, heads and final norms)."""
        return {part.name: part for part in self.parts if isinstance(part, Module)}

    def weighted_modules(self) -> Iterator[tuple[Module, int]]:
        """Each distinct module once, with how many modules of the model it stands for (named relative to its
        layer inside a repeated one): what sums over the model need, without expanding it."""
        for part in self.parts:
            if isinstance(part, Module):
                yield part, 1
                continue
            for template, instances in zip(part.templates, part.instances):
                for module in template:
                    yield module, instances

    def subtree(self, name: str) -> list[Module]:
        """The module called ``name`` and everything below it."""
        prefix = name + "."
        return [m for m in self.modules if m.name == name or m.name.startswith(prefix)]

    @cached_property
    def leaf_names(self) -> tuple[str, ...]:
        """Distinct last name components of LoRA-capable modules, sorted: what a target list may name."""
        return tuple(sorted({m.name.rsplit(".", 1)[-1] for m, _ in self.weighted_modules() if m.kind in LORA_MODULE_KINDS}))


class Builder:
    """Collects modules in ``named_modules()`` order while a family describes its layout."""

    def __init__(self) -> None:
        self.parts: list = []  # Module records, and the Blocks of :meth:`repeat`

    def repeat(
        self,
        stack: str,
        count: int,
        layer: Callable[[Builder, str, int], None],
        variant: Callable[[int], Hashable] | None = None,
    ) -> None:
        """Layers ``{stack}.0`` ... ``{stack}.{count - 1}``; ``layer(builder, prefix, index)`` describes one.

        Layers of one ``variant(index)`` (all of them, without ``variant``) are alike: one of
        each is described and the others share it (a :class:`~lora_lint.arch.blocks.Block`),
        instead of describing hundreds of modules. A layer whose names leave its prefix, or
        that ties a weight inside itself, makes every layer be described one by one instead.
        """
        from lora_lint.arch.blocks import Block

        templates: list[tuple[Module, ...]] = []
        known: dict[Hashable, int] = {}
        template_of: list[int] = []
        for index in range(count):
            key = variant(index) if variant else None
            if key not in known:
                template = self._describe(stack, index, layer)
                if template is None:
                    for each in range(count):
                        layer(self, f"{stack}.{each}", each)
                    return
                known[key] = len(templates)
                templates.append(template)
            template_of.append(known[key])
        if template_of:
            instances = tuple(template_of.count(position) for position in range(len(templates)))
            self.parts.append(Block(stack, tuple(map(str, range(count))), tuple(template_of), tuple(templates), instances))

    @staticmethod
    def _describe(stack: str, index: int, layer: Callable[[Builder, str, int], None]) -> tuple[Module, ...] | None:
        """Layer ``index``'s modules named relative to it, or None when it cannot stand for others."""
        described = Builder()
        layer(described, f"{stack}.{index}", index)
        prefix = f"{stack}.{index}."
        modules = described.parts
        if not modules or not all(
            isinstance(m, Module) and m.name.startswith(prefix) and not (m.tied_to or "").startswith(prefix) for m in modules
        ):
            return None
        return tuple(m.renamed(m.name[len(prefix) :], m.tied_to) for m in modules)

    def finish(self) -> tuple:
        """:attr:`Architecture.parts`: the modules described, runs of repeated layers grouped into blocks."""
        from lora_lint.arch.blocks import blocks_of

        parts: list = []
        run: list[Module] = []
        for part in self.parts:
            if isinstance(part, Module):
                run.append(part)
            else:
                parts += blocks_of(tuple(run))
                run = []
                parts.append(part)
        return tuple(parts) + blocks_of(tuple(run))

    def linear(
        self,
        name: str,
        in_features: int,
        out_features: int,
        bias: bool,
        *,
        tied_to: str | None = None,
    ) -> None:
        weight = ("weight", (out_features, in_features))
        params = (weight, ("bias", (out_features,))) if bias else (weight,)
        self.parts.append(Module(name, LINEAR, params, in_features, out_features, tied_to))

    def conv1d(self, name: str, in_features: int, out_features: int) -> None:
        params = (("weight", (in_features, out_features)), ("bias", (out_features,)))
        self.parts.append(Module(name, CONV1D, params, in_features, out_features))

    def embedding(self, name: str, num_embeddings: int, dim: int, *, tied_to: str | None = None) -> None:
        self.parts.append(
            Module(
                name,
                EMBEDDING,
                (("weight", (num_embeddings, dim)),),
                num_embeddings,
                dim,
                tied_to,
            )
        )

    def norm(
        self,
        name: str,
        shape: int | tuple[int, ...],
        *,
        weight: bool = True,
        bias: bool = False,
    ) -> None:
        shape = shape if isinstance(shape, tuple) else (shape,)
        if weight:
            params = (("weight", shape), ("bias", shape)) if bias else (("weight", shape),)
        elif bias:
            params = (("bias", shape),)
        else:
            return
        self.parts.append(Module(name, NORM, params))

    def experts(self, name: str, num_experts: int, hidden: int, intermediate: int) -> None:
        params = (
            ("gate_up_proj", (num_experts, 2 * intermediate, hidden)),
            ("down_proj", (num_experts, hidden, intermediate)),
        )
        self.parts.append(Module(name, EXPERTS, params))

    def fused_experts(self, name: str, *params: tuple[str, tuple[int, ...]]) -> None:
        """Experts stored the family's own way (transposed, with biases): each parameter as given."""
        self.parts.append(Module(name, EXPERTS, params))

    def router(self, name: str, num_experts: int, hidden: int, *, bias: bool = False) -> None:
        params = (("weight", (num_experts, hidden)),) + ((("bias", (num_experts,)),) if bias else ())
        self.parts.append(Module(name, ROUTER, params))

    def conv(
        self,
        name: str,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, ...],
        *,
        bias: bool,
        groups: int = 1,
    ) -> None:
        params = [("weight", (out_channels, in_channels // groups, *kernel))]
        if bias:
            params.append(("bias", (out_channels,)))
        self.parts.append(Module(name, CONV, tuple(params), in_channels * prod(kernel), out_channels))

    def other(self, name: str, *params: tuple[str, tuple[int, ...]]) -> None:
        self.parts.append(Module(name, OTHER, params))

"""Predict the peak GPU memory of one LoRA/QLoRA training step, term by term.

The peak is the largest sum of tensors alive at one moment. For a LoRA step that moment
is one of two:

* **loss backward** — every activation saved by the forward pass is still alive, and the
  loss's backward holds three fp32 ``tokens x vocab`` tensors at once (see
  :func:`logits_bytes`). This is the peak whenever the vocabulary is large.
* **layer backward** — with gradient checkpointing, the last block is recomputed while
  the checkpointed inputs of all blocks are alive; with small vocabularies or
  checkpointing this can beat the loss.

Both are computed and the larger wins; the breakdown names what coexists at that moment.
Every term is documented below and in ``docs/memory.md`` with its source. Formulas
follow Hugging Face transformers' Llama-style blocks (pre-norm RMSNorm, RoPE, grouped
query attention, gated MLP), trained under bf16/fp16 autocast as HF Trainer, axolotl
and LLaMA-Factory do.
"""

from __future__ import annotations

import math
from lora_lint.record import Record

from lora_lint.memory.inputs import TrainingInputs
from lora_lint.memory.shape import ModelShape, shape_from_architecture

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lora_lint.arch.counting import ParamCount
    from lora_lint.arch.model import Architecture

MIB = 1024**2

CUDA_CONTEXT_BYTES = 512 * MIB
"""The CUDA context, cuBLAS/cuDNN handles and workspaces of a PyTorch process: memory that
``nvidia-smi`` shows but ``torch.cuda.memory_reserved`` does not. About 300-500 MiB on
A100/H100 with lazy module loading (the default since CUDA 11.7 / PyTorch 2.0), plus a
cuBLAS workspace of up to 32 MiB per stream on Hopper; 512 MiB covers both."""

ALLOCATOR_OVERHEAD = 0.10
"""The caching allocator's reserved-but-unallocated share, as a fraction of the memory that
changes within a step (activations, logits, working set). Blocks are rounded to 512 B /
2 MiB / 20 MiB segments and split, so freed activation blocks leave holes that later,
differently-shaped tensors cannot use; reserved/allocated ratios of 1.05-1.15 are typical
in training loops. Weights and optimizer states are allocated once and add no holes."""

NF4_BLOCK = 64
"""bitsandbytes 4-bit blocksize: one absmax per 64 weights (``quantize_4bit`` default, QLoRA §3)."""
DOUBLE_QUANT_BLOCK = 256
"""Double quantization groups 256 first-level absmax values under one fp32 constant (QLoRA §3)."""

_STATE_DTYPE_BYTES = 4
"""PEFT keeps adapter weights, and so their gradients, in fp32 (``get_peft_model(...,
autocast_adapter_dtype=True)`` is the default and upcasts bf16/fp16 adapters)."""


class Term(Record):
    """One named share of the peak, with the reason it is there."""

    name: str
    bytes: int
    explanation: str


class MemoryEstimate(Record):
    """The predicted peak and the terms alive at it, largest phase chosen."""

    terms: tuple[Term, ...]
    phase: str  # "loss backward" | "layer backward"
    training: TrainingInputs

    @property
    def peak_bytes(self) -> int:
        return sum(term.bytes for term in self.terms)

    def breakdown(self) -> dict[str, int]:
        return {term.name: term.bytes for term in self.terms}

    def largest_terms(self, count: int = 3) -> list[str]:
        """Names of the ``count`` largest terms, largest first."""
        return [term.name for term in sorted(self.terms, key=lambda term: -term.bytes)[:count]]


def estimate_peak(arch: Architecture, param_count: ParamCount, training: TrainingInputs) -> MemoryEstimate:
    """The peak memory of a training step for an architecture and its adapter's parameter count."""
    return estimate_for_shape(shape_from_architecture(arch, param_count), training)


def estimate_for_shape(shape: ModelShape, training: TrainingInputs) -> MemoryEstimate:
    """The peak memory of a training step for a model described by its dimensions."""
    static = _static_terms(shape, training)
    loss_phase, layer_phase = _loss_phase(shape, training), _layer_phase(shape, training)
    loss_total, layer_total = sum(t.bytes for t in loss_phase), sum(t.bytes for t in layer_phase)
    dynamic, phase = (loss_phase, "loss backward") if loss_total >= layer_total else (layer_phase, "layer backward")
    overhead = Term(
        "allocator_overhead",
        int(ALLOCATOR_OVERHEAD * sum(t.bytes for t in dynamic)),
        f"caching-allocator fragmentation: {ALLOCATOR_OVERHEAD:.0%} of the memory that changes within a step",
    )
    context = Term("cuda_context", CUDA_CONTEXT_BYTES, "CUDA context, cuBLAS and cuDNN workspaces of the process")
    terms = tuple(term for term in (*static, *dynamic, overhead, context) if term.bytes > 0)
    return MemoryEstimate(terms, phase, training)


# --- weights and training state: allocated once, alive the whole step -------------------


def quantized_weight_bytes(params: int, scheme: str | None, *, double_quant: bool = False, rows: int = 0) -> tuple[int, int]:
    """(packed weights, quantization constants) in bytes for ``params`` weights.

    * NF4/FP4 store two weights per byte. Each block of 64 has an absmax: fp32 without
      double quantization (32/64 = 0.5 bit per weight); with it, an 8-bit absmax plus one
      fp32 constant per 256 blocks (8/64 + 32/(64*256) = 0.127 bit per weight). Source:
      Dettmers et al. 2023, "QLoRA", section 3 (Double Quantization).
    * LLM.int8 stores one byte per weight and one fp32 scale per output row (``SCB``;
      Dettmers et al. 2022, "LLM.int8()", vector-wise quantization).
    """
    if scheme in ("nf4", "fp4"):
        blocks = math.ceil(params / NF4_BLOCK)
        constants = blocks + 4 * math.ceil(blocks / DOUBLE_QUANT_BLOCK) if double_quant else 4 * blocks
        return math.ceil(params / 2), constants
    if scheme == "int8":
        return params, 4 * rows
    raise ValueError(f"not a quantization scheme: {scheme!r}")


def _static_terms(shape: ModelShape, t: TrainingInputs) -> list[Term]:
    trainable = shape.trainable_params
    terms: list[Term] = []
    if t.quantization is None:
        terms.append(Term("base_weights", shape.base_params * t.weight_bytes,
                          f"{shape.base_params:,} frozen base weights at {t.weight_bytes} B"))  # fmt: skip
    else:
        experts = shape.expert_params if t.experts_quantized else 0
        packed, constants = quantized_weight_bytes(
            shape.quantizable_params + experts, t.quantization, double_quant=t.double_quant,
            rows=shape.quantizable_rows + (shape.expert_rows if experts else 0),
        )  # fmt: skip
        per_weight = "0.5 B" if t.quantization != "int8" else "1 B"
        what = "block linear and fused expert" if experts else "block linear"
        terms.append(Term("quantized_weights", packed,
                          f"{shape.quantizable_params + experts:,} {what} weights in {t.quantization.upper()} ({per_weight} each)"))  # fmt: skip
        detail = ("8-bit absmax per 64 + fp32 per 256 blocks" if t.double_quant else "fp32 absmax per 64 weights")
        if t.quantization == "int8":
            detail = "fp32 scale per output row"
        terms.append(Term("quantization_constants", constants, f"quantization constants: {detail}"))
        terms.append(_unquantized_term(shape, t))
    terms.append(Term("adapter_weights", trainable * _STATE_DTYPE_BYTES, f"{trainable:,} LoRA weights in fp32"))
    terms.append(Term("gradients", trainable * _STATE_DTYPE_BYTES, "fp32 gradients of the LoRA weights"))
    optimizer = t.optimizer
    terms.append(Term("optimizer_states", math.ceil(trainable * optimizer.state_bytes_per_param),
                      f"{optimizer.name}: {optimizer.state_bytes_per_param:.3g} B of state per trainable weight"
                      + (" (paged: evicted to CPU RAM under pressure)" if optimizer.paged else "")))  # fmt: skip
    return terms


def _unquantized_term(shape: ModelShape, t: TrainingInputs) -> Term:
    """Embeddings, head, norms, biases (and fused experts left unquantized) of a 4/8-bit model, in the dtype
    its framework leaves them in."""
    experts = 0 if t.experts_quantized else shape.expert_params
    others = shape.unquantized_params - shape.expert_params
    unquantized_bytes = _unquantized_weight_bytes(t)
    size = others * unquantized_bytes
    if t.norms_fp32 and unquantized_bytes < 4:
        size += shape.norm_params * (4 - unquantized_bytes)
    text = f"{others:,} embedding/head/norm weights at {unquantized_bytes} B"
    if experts:
        expert_bytes = 4 if t.kbit_prepared else t.weight_bytes  # prepare_model_for_kbit_training upcast them
        size += experts * expert_bytes
        text += f", {experts:,} fused MoE expert weights (not quantized) at {expert_bytes} B"
    convention = f"; {t.convention}" if t.convention else ""
    return Term("unquantized_weights", size, text + convention)


def _unquantized_weight_bytes(t: TrainingInputs) -> int:
    """Embeddings, head and norms of a 4/8-bit model: fp32 while PEFT's upcast stays in place, else the checkpoint dtype."""
    return 4 if t.quantization is not None and t.kbit_upcast else t.weight_bytes


# --- activations: saved by the forward pass for the backward pass ------------------------


def layer_activation_bytes_per_token(shape: ModelShape, t: TrainingInputs) -> int:
    """Bytes one block saves per token for backward, besides what LoRA adds.

    Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large Transformer
    Models", eq. 2) count ``s*b*h*(34 + 5*a*s/h)`` bytes per layer for full fp16 training.
    With frozen base weights a linear layer saves nothing for its weights' gradient, so
    most of those 34 disappear. What remains, with ``c`` bytes per activation value:

    * two RMSNorms: each keeps its input upcast to fp32 and the fp32 ``rsqrt`` per token
      (``4h + 4`` bytes each; ``LlamaRMSNorm.forward``);
    * attention with SDPA or FlashAttention: query, key and value after RoPE, the output,
      and an fp32 log-sum-exp per head: ``c*(2*q + 2*kv) + 4*heads`` (no ``s x s`` matrix);
    * eager attention: query, key and value repeated to all heads, the fp32 softmax and its
      ``c``-byte copy for the matmul with V: ``3*c*q + (4 + c)*heads*s`` per token;
    * a gated MLP keeps the gate output, its SiLU and the up output: ``3*c*i``; a plain
      MLP keeps the activation's input: ``c*i``;
    * LLM.int8 layers keep their input for the input gradient (``MatMul8bitLt``), unlike
      NF4 layers, which only keep their weight (``MatMul4Bit``).
    """
    c, h = t.activation_bytes, shape.hidden_size
    norms = 2 * (4 * h + 4)
    if t.attn_implementation == "eager":
        softmax_copies = 4 + c if c < 4 else 4
        attention = 3 * c * shape.attention_width + softmax_copies * shape.num_heads * t.sequence_len
    else:
        attention = c * (2 * shape.attention_width + 2 * shape.kv_width) + 4 * shape.num_heads
    mlp = (3 if shape.gated_mlp else 1) * c * shape.intermediate_size
    int8_inputs = c * shape.quantizable_inputs_per_layer if t.quantization == "int8" else 0
    return norms + attention + mlp + int8_inputs


def lora_activation_bytes_per_token(shape: ModelShape, t: TrainingInputs) -> int:
    """Bytes the adapters of one block save per token.

    PEFT's ``lora.Linear.forward`` casts each adapted layer's input to the adapter's fp32
    dtype and autocast casts it back for ``lora_A``, so every adapted layer keeps its own
    ``c``-byte copy of its input (``c * in``), and ``lora_B`` keeps ``lora_A``'s output
    (``c * r``). With ``lora_dropout > 0`` the CUDA dropout kernel also keeps a 1-byte mask
    per input value.
    """
    c = t.activation_bytes
    mask = shape.adapted_inputs_per_layer if t.lora_dropout > 0 else 0
    return c * (shape.adapted_inputs_per_layer + shape.adapted_ranks_per_layer) + mask


def residual_bytes(t: TrainingInputs) -> int:
    """Bytes per value of the hidden states between blocks: what checkpointing keeps.

    They take the embedding's dtype, promoted by each residual add: fp32 once
    ``prepare_model_for_kbit_training`` has upcast the embedding, else the compute dtype.
    """
    return max(t.activation_bytes, _unquantized_weight_bytes(t))


OUTPUT_CHUNKS = 8
"""``num_output_chunks`` of torchtune's CEWithChunkedOutputLoss and axolotl's chunked cross-entropy."""


def logits_bytes(shape: ModelShape, t: TrainingInputs) -> int:
    """Memory of the output logits and the loss at their peak, in the loss's backward.

    transformers' ``ForCausalLMLoss`` upcasts the logits to fp32 and ``cross_entropy``
    keeps its fp32 ``log_softmax`` output. In backward, ``nll_loss`` produces a full fp32
    ``tokens x vocab`` gradient and ``log_softmax``'s backward writes another while the
    saved output is still alive: three fp32 copies, 12 bytes per token per vocabulary
    entry (12.6 GB for Llama 3's 128,256 vocabulary at 4 x 2048 tokens). The forward's
    ``c``-byte logits and fp32 upcast are freed before that (2 + 4 + 4 = 10 bytes).

    A fused linear + cross-entropy loss (Liger-Kernel, Cut Cross-Entropy) computes the
    same over row chunks; Liger's chunk is ``tokens / ceil(vocab / hidden)`` rows rounded
    up to a power of two, so only that many rows of the three copies exist.

    A chunked-output loss (torchtune's ``CEWithChunkedOutputLoss``, axolotl's
    ``chunked_cross_entropy``) still builds the full ``c``-byte logits and their ``c``-byte
    gradient, and upcasts one of its 8 chunks at a time (both frameworks' default count).
    """
    rows = t.tokens
    if t.chunked_loss and t.loss_keeps_logits:
        return 2 * t.activation_bytes * rows * shape.vocab_size + 12 * math.ceil(rows / OUTPUT_CHUNKS) * shape.vocab_size
    if t.chunked_loss:
        chunk = math.ceil(rows / math.ceil(shape.vocab_size / shape.hidden_size))
        rows = min(rows, 1 << (chunk - 1).bit_length())
    return 12 * rows * shape.vocab_size


def _head_copy_bytes(shape: ModelShape, t: TrainingInputs) -> int:
    """An fp32 output head under bf16/fp16 autocast is cast to ``c`` bytes for its matmul and that copy
    is saved for the input gradient until the head's backward (autocast's weight-cast cache)."""
    head_in_fp32 = _unquantized_weight_bytes(t) == 4
    return shape.vocab_size * shape.hidden_size * t.activation_bytes if head_in_fp32 and t.activation_bytes < 4 else 0


def _backward_working_bytes(shape: ModelShape, t: TrainingInputs) -> int:
    """Gradients in flight inside one block's backward, at the MLP's: the block's incoming and
    outgoing hidden-state gradients, and the gradients of the product, the activation, the up
    and the gate outputs of a gated MLP (product and activation input for a plain one)."""
    widths = 2 * shape.hidden_size + (4 if shape.gated_mlp else 2) * shape.intermediate_size
    return t.activation_bytes * widths * t.tokens


def _stored_activation_terms(shape: ModelShape, t: TrainingInputs) -> list[Term]:
    tokens, layers = t.tokens, shape.num_layers
    final_norm = (4 * shape.hidden_size + 4) * tokens
    if t.gradient_checkpointing:
        inputs = layers * residual_bytes(t) * shape.hidden_size * tokens
        return [Term("activations", inputs + final_norm,
                     f"checkpointed inputs of {layers} blocks ({residual_bytes(t)} B x hidden x {tokens:,} tokens) and the final norm")]  # fmt: skip
    per_layer = layer_activation_bytes_per_token(shape, t)
    attention = "eager attention with s x s scores" if t.attn_implementation == "eager" else "no s x s scores"
    lora_bytes = layers * lora_activation_bytes_per_token(shape, t) * tokens + _adapter_copy_bytes(shape, t)
    lora_parts = "each adapted layer's input copy and rank-r output"
    lora_parts += ", dropout mask" if t.lora_dropout > 0 else ""
    lora_parts += ", autocast copies of the adapter weights" if t.activation_bytes < 4 else ""
    return [
        Term("activations", layers * per_layer * tokens + final_norm,
             f"{layers} blocks x {per_layer:,} B per token x {tokens:,} tokens ({attention})"),
        Term("lora_activations", lora_bytes, lora_parts),
    ]


def _adapter_copy_bytes(shape: ModelShape, t: TrainingInputs) -> int:
    """Autocast casts the fp32 adapter weights to the compute dtype once per forward and the
    copies are saved for backward."""
    return shape.trainable_params * t.activation_bytes if t.activation_bytes < 4 else 0


def _loss_phase(shape: ModelShape, t: TrainingInputs) -> list[Term]:
    tokens = t.tokens
    loss = "chunked fused loss" if t.chunked_loss else "fp32 log-softmax output plus two fp32 gradients"
    return [
        *_stored_activation_terms(shape, t),
        Term("logits_and_loss", logits_bytes(shape, t), f"{loss}, {tokens:,} tokens x {shape.vocab_size:,} vocabulary"),
        Term("head_compute_copy", _head_copy_bytes(shape, t), "bf16/fp16 autocast copy of the fp32 output head"),
    ]


def _layer_phase(shape: ModelShape, t: TrainingInputs) -> list[Term]:
    terms = _stored_activation_terms(shape, t)
    if t.gradient_checkpointing:
        one_layer = layer_activation_bytes_per_token(shape, t) + lora_activation_bytes_per_token(shape, t)
        terms.append(Term("recomputed_block", one_layer * t.tokens, "one block's activations, recomputed for its backward"))
    terms.append(Term("backward_working_set", _backward_working_bytes(shape, t),
                      "gradients in flight inside one block's backward"))  # fmt: skip
    return terms

"""Everything the runtime learns about one config, computed once and shared.

The pytest items (static, shapes, smoke), the fixtures and ``lora-lint smoke`` all ask
a :class:`ConfigCheck`; it builds the model on first need, checks shapes, runs the
smoke training, and keeps the entry that goes into the JSON report.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lora_lint.runtime.build import BuildError, BuiltModel, Unsupported
from lora_lint.runtime.data import DataError, TaskData

DEFAULT_STEPS = 30
DEFAULT_LEARNING_RATE = 2e-4  # when a config names none (plain LoraConfig files): the common LoRA rate
MEMORY_UNDERESTIMATE_TOLERANCE = 0.2
"""The memory item fails when the measured peak exceeds the prediction by more than 20 %:
an underestimate is the costly direction (the run dies mid-epoch)."""
CPU_LIMITS = {"batch_size": 8, "sequence_length": 64}
CUDA_LIMITS = {"batch_size": 8, "sequence_length": 512}
SYNTHETIC_TRAIN_SEQUENCES = 256
SYNTHETIC_VAL_SEQUENCES = 8
EVALUATIONS = 8  # held-out evaluations per run (plus one at the end): enough for the overfit trend


@dataclass(frozen=True)
class RuntimeOptions:
    device: str = "auto"  # auto | cpu | cuda
    steps: int = DEFAULT_STEPS
    seed: int = 0
    trust_remote_code: bool = False
    reference: bool = True  # also train the reference adapter (alpha = 2r): the yardstick for slow learning


@dataclass
class SmokeResult:
    record: Any  # RunRecord
    symptoms: list[Any]  # Symptom
    settings: dict[str, Any]
    data: dict[str, Any]
    reference: Any = None  # RunRecord of the reference adapter, when one was trained


@dataclass
class ConfigCheck:
    """One config (the linter's result for one LoraSetup) and what the runtime found out about it."""

    lint_result: Any  # lora_lint.engine.FileResult
    options: RuntimeOptions
    user_models: dict[str, Any] = field(default_factory=dict)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    _built: BuiltModel | None = None
    _description: dict[str, Any] = field(default_factory=dict)  # the build, kept after the model is released
    _initial_state: dict[str, Any] | None = None
    _resolution: Any = None
    _shapes: Any = None
    _smoke: SmokeResult | None = None
    _memory: dict[str, Any] | None = None
    _error: Exception | None = None

    @property
    def path(self) -> str:
        return self.lint_result.path

    @property
    def setup(self) -> Any:
        """The normalized LoraSetup (None when the file could not be read)."""
        return self.lint_result.setup

    @property
    def facts(self) -> dict[str, Any]:
        return self.lint_result.facts

    @property
    def device(self) -> str:
        return resolve_device(self.options.device)

    # -- model ----------------------------------------------------------------------------

    def resolution(self) -> Any:
        """The base model's config.json, from disk only; Unsupported when nothing local knows it."""
        if self._resolution is None:
            from lora_lint.arch.facts import base_model_name
            from lora_lint.arch.resolve import ModelConfigError, resolve_base_model

            name = base_model_name(self.setup)
            if not isinstance(name, str) or not name.strip():
                raise Unsupported("the config names no base model")
            try:
                found = resolve_base_model(name, config_dir=Path(self.path).parent, cwd=Path.cwd(), user_models=self.user_models)  # fmt: skip
            except ModelConfigError as exc:
                raise BuildError(str(exc)) from exc
            if found is None:
                raise Unsupported(f"base model {name!r} is not known offline (not a local folder, not in the Hugging "
                                  "Face cache, not in the catalog): add it under [tool.lora-lint.models]")  # fmt: skip
            self._resolution = found
        return self._resolution

    def model(self) -> BuiltModel:
        """The built PEFT model (built once; a failed build is not retried)."""
        if self._error is not None:
            raise self._error
        if self._built is None:
            from lora_lint.runtime.build import build_model

            started = time.perf_counter()
            try:
                resolution = self.resolution()
                self._built = build_model(
                    self.setup,
                    resolution.config,
                    model_path=resolution.path if resolution.source in ("local-dir", "user", "hf-cache") else None,
                    device=self.device,
                    trust_remote_code=self.options.trust_remote_code,
                    seed=self.options.seed,
                )
            except (BuildError, Unsupported) as exc:
                self._error = exc
                raise
            self._description = self._built.describe()
            self._initial_state = {k: v.detach().clone() for k, v in self._built.model.named_parameters() if v.requires_grad}  # fmt: skip
            self.timings["build"] = time.perf_counter() - started
        return self._built

    def release(self) -> None:
        """Drop the built model (the shapes and smoke results stay)."""
        if self._built is None:
            return
        self._built = None
        self._initial_state = None
        _empty_cuda_cache()

    def restore_initial_weights(self) -> None:
        """Put the adapter back to its initial values, so fixtures always see the untrained model."""
        if self._built is None or self._initial_state is None:
            return
        import torch

        with torch.no_grad():
            for name, param in self._built.model.named_parameters():
                if name in self._initial_state:
                    param.copy_(self._initial_state[name])

    # -- checks ---------------------------------------------------------------------------

    def shapes(self) -> Any:
        if self._shapes is None:
            from lora_lint.runtime.shapes import check_shapes

            started = time.perf_counter()
            self._shapes = check_shapes(self.model(), self.setup, self.resolution().config)
            self.timings["shapes"] = time.perf_counter() - started
        return self._shapes

    def memory(self) -> dict[str, Any]:
        """Measured training peak of the full-size model at the config's batch and length (CUDA only)."""
        if self._memory is None:
            self._memory = self._measure_memory()
        return self._memory

    def _measure_memory(self) -> dict[str, Any]:
        import torch

        from lora_lint.memory.measure import measure_training_peak

        predicted = self.facts.get("peak_memory_bytes")
        batch, length = self.setup.get("micro_batch_size"), self.setup.get("sequence_len")
        if self.device != "cuda":
            raise Unsupported("peak memory is measured on CUDA only")
        if not predicted:
            raise Unsupported("the linter has no memory prediction for this config")
        if not (isinstance(batch, int) and isinstance(length, int) and batch > 0 and length > 1):
            raise Unsupported("the config states no micro batch size and sequence length to measure")
        built = self.model()
        started = time.perf_counter()
        ids = torch.randint(0, vocab_size(built), (batch, length), device=built.device)
        autocast = getattr(torch, built.dtype) if built.dtype in ("bfloat16", "float16") else None
        try:
            measured = measure_training_peak(built.model, {"input_ids": ids, "labels": ids}, autocast_dtype=autocast)
        except torch.cuda.OutOfMemoryError:
            measured = {"out_of_memory": True, "peak_total_bytes": None}
        finally:
            self.restore_initial_weights()
            _empty_cuda_cache()
        self.timings["memory"] = time.perf_counter() - started
        return {"predicted_peak_bytes": predicted, "batch_size": batch, "sequence_length": length, **measured}

    def smoke(self) -> SmokeResult:
        if self._smoke is None:
            self._smoke = self._run_smoke(None)
        return self._smoke

    def run_smoke(self, on_step: Any) -> SmokeResult:
        """The smoke run with a per-step callback (the command's progress bar)."""
        if self._smoke is None:
            self._smoke = self._run_smoke(on_step)
        return self._smoke

    def _run_smoke(self, on_step: Any) -> SmokeResult:
        from lora_lint.runtime.detectors import diagnose
        from lora_lint.runtime.train import smoke_train

        built = self.model()
        if built.task_type != "CAUSAL_LM":
            raise Unsupported(f"smoke training covers causal language models; this is {built.task_type}")
        started = time.perf_counter()
        try:
            data = self._task_data(built)
        except DataError as exc:
            raise BuildError(str(exc)) from exc
        settings = self._settings(built)
        try:
            record = smoke_train(built, data.train, data.val, settings, vocab_size=vocab_size(built), on_step=on_step)
        finally:
            self.restore_initial_weights()
        elapsed = time.perf_counter() - started
        self.timings["smoke"] = elapsed
        if record.losses:
            self.timings["step_mean"] = elapsed / len(record.losses)
        reference = self._reference_run(built, data, settings)
        data_info = {"source": data.source, "tokenizer": data.tokenizer, "description": data.description,
                     "train_sequences": len(data.train), "val_sequences": len(data.val)}  # fmt: skip
        return SmokeResult(record, diagnose(record, reference), settings.as_dict(), data_info, reference)

    def _reference_run(self, built: BuiltModel, data: TaskData, settings: Any) -> Any:
        """The same run with the reference adapter (alpha = 2r); None when opted out or identical."""
        from lora_lint.runtime.reference import differs_from_reference, reference_adapter
        from lora_lint.runtime.train import smoke_train

        if not self.options.reference or not differs_from_reference(built.model):
            return None
        started = time.perf_counter()
        try:
            with reference_adapter(built.model):
                return smoke_train(built, data.train, data.val, settings, vocab_size=vocab_size(built))
        finally:
            self.restore_initial_weights()
            self.timings["reference"] = time.perf_counter() - started

    def task_data(self) -> TaskData:
        """The data runs of this config train and evaluate on (its local files, else a learnable task)."""
        try:
            return self._task_data(self.model())
        except DataError as exc:
            raise BuildError(str(exc)) from exc

    def run_settings(self) -> Any:
        """The smoke run's settings for the built model (the config's rate, batch and length, capped)."""
        return self._settings(self.model())

    def _settings(self, built: BuiltModel) -> Any:
        from lora_lint.runtime.train import RunSettings

        limits = CPU_LIMITS if built.device == "cpu" else CUDA_LIMITS
        lr = self.setup.get("learning_rate")
        if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not math.isfinite(lr):
            lr = DEFAULT_LEARNING_RATE
        batch = self.setup.get("micro_batch_size")
        batch = batch if isinstance(batch, int) and not isinstance(batch, bool) and batch > 0 else 4
        length = self.setup.get("sequence_len")
        length = length if isinstance(length, int) and not isinstance(length, bool) and length > 1 else limits["sequence_length"]  # fmt: skip
        steps = max(1, self.options.steps)
        return RunSettings(
            steps=steps,
            learning_rate=float(lr),
            batch_size=min(batch, limits["batch_size"]),
            sequence_length=min(length, limits["sequence_length"]),
            eval_every=max(1, steps // EVALUATIONS),
            seed=self.options.seed,
            lora_a_lr_multiplier=built.width_ratio,
        )

    def _task_data(self, built: BuiltModel) -> TaskData:
        from lora_lint.runtime import data as task

        settings = self._settings(built)
        config_dir = Path(self.path).parent
        resolution = self.resolution()
        tokenizer = None
        if built.weights == "local" or built.proxy is None:
            tokenizer = task.model_tokenizer(resolution.path, self.options.trust_remote_code)
        train_files = task.dataset_files(self.setup.get("datasets"), config_dir)
        val_files = task.dataset_files(self.setup.get("val_datasets"), config_dir)
        vocab = vocab_size(built)
        if train_files:
            texts = task.read_texts(train_files)
            if len(texts) < 2:
                raise DataError(f"the local dataset {train_files[0]} has fewer than 2 usable records")
            if val_files:
                train_texts, val_texts = texts, task.read_texts(val_files)
            else:
                train_texts, val_texts = task.split_validation(texts, self.setup.get("val_size"), self.options.seed)
            data = TaskData(
                task.tokenize(train_texts, tokenizer, settings.sequence_length),
                task.tokenize(val_texts, tokenizer, settings.sequence_length),
                "local",
                "model" if tokenizer is not None else "bytes",
                f"{len(train_texts)} records from {', '.join(p.name for p in train_files)}",
            )
        else:
            specials = set(getattr(tokenizer, "all_special_ids", []) or [])
            train, val = task.synthetic_task(vocab, specials, SYNTHETIC_TRAIN_SEQUENCES, SYNTHETIC_VAL_SEQUENCES,
                                             settings.sequence_length, self.options.seed)  # fmt: skip
            data = TaskData(train, val, "synthetic", "none", "arithmetic progressions over 16 symbols")
        if task.fit_vocabulary(data, vocab):
            if built.weights != "random":
                raise BuildError(f"token ids reach {data.max_token()}, beyond the model's vocabulary of {vocab}")
            data.description += f"; token ids remapped into the model's {vocab}-token vocabulary"
        return data

    # -- report ---------------------------------------------------------------------------

    def report_entry(self) -> dict[str, Any]:
        """This config's entry of the JSON report."""
        smoke = self._smoke
        build = dict(self._description)
        if self._resolution is not None:
            build["base_model"] = self._resolution.model_id
            build["config_source"] = self._resolution.source
        if self._shapes is not None:
            build["shapes"] = self._shapes.as_dict()
        if self._error is not None:
            build["error"] = str(self._error)
        if self._memory is not None:
            build["memory"] = self._memory
        if smoke is not None:
            build["run"] = smoke.settings
            build["data"] = smoke.data
            if smoke.reference is not None:
                build["reference"] = {"lora_alpha_per_r": 2, "losses": smoke.reference.losses,
                                      "val_losses": [list(pair) for pair in smoke.reference.val_losses]}  # fmt: skip
        record = smoke.record if smoke else None
        return {
            "path": self.path,
            "device": self.device,
            "build": build,
            "items": self.items,
            "symptoms": [s.as_dict() for s in smoke.symptoms] if smoke else [],
            "losses": record.losses if record else [],
            "val_losses": [list(pair) for pair in record.val_losses] if record else [],
            "timings": self.timings,
            **({"record": _record_summary(record)} if record else {}),
        }


def _record_summary(record: Any) -> dict[str, Any]:
    return {
        "base_loss": record.base_loss,
        "initial_loss": record.initial_loss,
        "grad_norms": record.grad_norms,
        "update_ratios": record.update_ratios,
        "grads_missing": record.grads_missing,
        "grads_zero": record.grads_zero,
        "frozen_lora_b": record.frozen_lora_b,
    }


def vocab_size(built: BuiltModel) -> int:
    """Rows of the input embedding: the bound every token id must stay under."""
    return int(built.model.get_base_model().get_input_embeddings().weight.shape[0])


def resolve_device(requested: str) -> str:
    """``auto`` means CUDA when torch sees a GPU, else the CPU."""
    if requested != "auto":
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _empty_cuda_cache() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        return

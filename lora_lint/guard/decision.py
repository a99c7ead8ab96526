"""What the guard decided, and ``lora-guard.json``: the contract a job scheduler reads.

``{"verdict": "clean"|"stopped"|"warned", "symptom": null|"plateau"|"overfit"|"divergence"|
"dead-adapter", "step", "planned_steps", "evidence", "message", "rollback": null|{"config_path",
"r", "lora_alpha", "changes"}, "memory": null|{"measured_peak_bytes", "predicted_peak_bytes"},
"plot"}``, plus ``notes``, ``losses`` and ``eval_losses`` for post-mortems. The exit codes of
``lora-lint guard-report`` follow the verdict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GUARD_FILE = "lora-guard.json"
EXIT_CODES = {"clean": 0, "stopped": 1, "warned": 3}


@dataclass(frozen=True)
class Decision:
    verdict: str  # clean | stopped | warned
    symptom: str | None
    step: int | None
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    rollback: dict[str, Any] | None = None

    @classmethod
    def clean(cls, step: int | None, message: str) -> Decision:
        return cls("clean", None, step, message)

    @classmethod
    def stop(cls, symptom: str, step: int, message: str, evidence: dict[str, Any],
             rollback: dict[str, Any] | None = None) -> Decision:  # fmt: skip
        return cls("stopped", symptom, step, message, evidence, rollback)

    @classmethod
    def warn(cls, symptom: str, step: int, message: str, evidence: dict[str, Any],
             rollback: dict[str, Any] | None = None) -> Decision:  # fmt: skip
        return cls("warned", symptom, step, message, evidence, rollback)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "symptom": self.symptom, "step": self.step, "evidence": self.evidence,
                "message": self.message, "rollback": self.rollback}  # fmt: skip


def write_decision(path: Path, decision: Decision, fields: dict[str, Any]) -> str | None:
    """Write the report atomically (a scheduler may read it mid-run); the problem in one line, or None."""
    from lora_lint.config_edit import EditError, write_atomically
    from lora_lint.runtime.report import json_safe

    document = {**decision.as_dict(), **fields}
    ordered = {key: document.get(key) for key in ("verdict", "symptom", "step", "planned_steps", "evidence", "message",
                                                  "rollback", "memory", "plot")}  # fmt: skip
    ordered.update(document)
    text = json.dumps(json_safe(ordered), indent=2, allow_nan=False) + "\n"
    try:
        write_atomically(path, text)
    except EditError as exc:
        return f"{exc}; the guard keeps watching without a report"
    return None

"""The JSON report: a contract for gating jobs (shape documented in the README)."""

from __future__ import annotations

import json

from lora_lint.facts import public_facts
from lora_lint.report import summary


def render_json(results: list) -> str:
    files = []
    for result in results:
        entry = {
            "path": result.path,
            "format": result.format,
            "facts": public_facts(result.facts),
            "findings": [
                {key: f.as_dict()[key] for key in ("code", "name", "severity", "message", "line", "column", "key")}
                for f in result.findings
            ],
        }
        if result.error:
            entry["error"] = {"message": result.error.message, "line": result.error.line, "column": result.error.column}
        if result.skipped:
            entry["skipped"] = result.skipped
        files.append(entry)
    return json.dumps({"files": files, "summary": summary(results)}, indent=2, default=str)

"""SARIF 2.1.0, the format code-scanning dashboards (GitHub, GitLab, Azure) import."""

from __future__ import annotations

import json
from pathlib import Path

from lora_lint import __version__

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


def render_sarif(results: list, linter: object) -> str:
    rules = getattr(linter, "rules", [])
    index = {rule.code: i for i, rule in enumerate(rules)}
    sarif_results = []
    for result in results:
        uri = Path(result.path).as_posix()
        for f in result.findings:
            entry = {
                "ruleId": f.code,
                "level": _LEVEL[f.severity],
                "message": {"text": f.message},
                "locations": [_location(uri, f.line, f.column)],
            }
            if f.code in index:
                entry["ruleIndex"] = index[f.code]
            sarif_results.append(entry)
    notifications = [
        {"level": "error", "message": {"text": r.error.message}, "locations": [_location(Path(r.path).as_posix(), r.error.line, r.error.column)]}
        for r in results if r.error
    ]  # fmt: skip
    run = {
        "tool": {"driver": {
            "name": "lora-lint",
            "version": __version__,
            "informationUri": "https://pypi.org/project/lora-lint/",
            "rules": [
                {
                    "id": rule.code,
                    "name": rule.name,
                    "shortDescription": {"text": rule.summary},
                    "fullDescription": {"text": rule.why},
                    "help": {"text": rule.fix},
                    "defaultConfiguration": {"level": _LEVEL[rule.severity]},
                }
                for rule in rules
            ],
        }},
        "results": sarif_results,
        "invocations": [{"executionSuccessful": not notifications, "toolExecutionNotifications": notifications}],
    }  # fmt: skip
    return json.dumps({"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}, indent=2)


def _location(uri: str, line: int, column: int) -> dict:
    return {"physicalLocation": {"artifactLocation": {"uri": uri}, "region": {"startLine": line, "startColumn": column}}}

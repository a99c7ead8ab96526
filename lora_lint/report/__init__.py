"""Reporters: turn lint results into text, JSON, SARIF 2.1.0 or GitHub annotations.

Each reporter is a function ``render(results, linter) -> str``; picking one is a dict lookup.
"""

from __future__ import annotations

import os

FORMATS = ("text", "json", "sarif", "github")


def resolve_format(name: str) -> str:
    """``auto`` means GitHub annotations inside GitHub Actions and text elsewhere."""
    if name == "auto":
        return "github" if os.environ.get("GITHUB_ACTIONS") == "true" else "text"
    return name


def render(name: str, results: list, linter: object, *, color: bool = False) -> str:
    if name == "json":
        from lora_lint.report.json_report import render_json

        return render_json(results)
    if name == "sarif":
        from lora_lint.report.sarif import render_sarif

        return render_sarif(results, linter)
    if name == "github":
        from lora_lint.report.github import render_github

        return render_github(results)
    from lora_lint.report.text import render_text

    return render_text(results, color=color)


def summary(results: list) -> dict:
    """Counts a gating job reads: files, findings by severity, unreadable files."""
    counts = {"error": 0, "warning": 0, "info": 0}
    for result in results:
        for finding in result.findings:
            counts[finding.severity] += 1
    return {
        "files": len({r.path for r in results}),
        "configs": sum(1 for r in results if r.format),
        "findings": sum(counts.values()),
        "by_severity": counts,
        "unreadable": sum(1 for r in results if r.error),
        "skipped": sum(1 for r in results if r.skipped),
    }

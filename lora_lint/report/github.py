"""GitHub Actions workflow commands: findings appear as annotations on the pull request."""

from __future__ import annotations

_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def _escape(text: str, *, property: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if property else text


def render_github(results: list) -> str:
    lines = []
    for result in results:
        path = _escape(result.path, property=True)
        if result.error:
            e = result.error
            lines.append(f"::error file={path},line={e.line},col={e.column},title=lora-lint::{_escape(e.message)}")
        for f in result.findings:
            title = _escape(f"{f.code} {f.name}", property=True)
            lines.append(f"::{_LEVEL[f.severity]} file={path},line={f.line},col={f.column},title={title}::{_escape(f.message)}")
    return "\n".join(lines)

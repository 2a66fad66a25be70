"""Generate docs/questions.md, the reference of the template's questions, from copier.yml.

    python -m slipway questions-doc          # rewrite docs/questions.md
    python -m slipway questions-doc --check  # exit 1 when docs/questions.md is stale

tests/test_docs.py fails when the committed page differs from what this script renders, so a
question cannot change without its documentation.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from slipway import copier_config

ROOT = copier_config.ROOT
OUT = ROOT / "docs" / "questions.md"
COMMAND = "python -m slipway questions-doc"


def load_questions(path: Path = copier_config.COPIER_YML) -> dict[str, dict[str, Any]]:
    """Every question of copier.yml, asked and computed, in file order (copier_config)."""
    return copier_config.questions(copier_config.load(path))


def _rules(validator: str) -> list[str]:
    """The human sentences of a validator: its messages without Jinja tags and the echoed value."""
    text = re.sub(r"\{%-?.*?-?%\}", "\n", validator, flags=re.DOTALL)
    rules = []
    for line in text.splitlines():
        line = re.sub(r"[;,]\s*got\s+\S.*$", "", line.strip())
        line = re.sub(r"\{\{\s*(\w+)\s*\}\}", r"`<\1>`", line)
        if line:
            rules.append(line)
    return rules


def _choices(choices: Any) -> list[str]:
    if isinstance(choices, dict):
        return [f"`{value}` ({label})" for label, value in choices.items()]
    if isinstance(choices, list):
        return [f"`{value}`" for value in choices]
    # Templated choices: `label: value` lines under `{% if ... %}` / `{% else %}` blocks.
    out, condition, negated = [], "", ""
    for line in str(choices).splitlines():
        tag = re.search(r"\{%-?\s*(if|elif|else|endif)\b(.*?)-?%\}", line)
        if tag:
            kind, expr = tag.group(1), tag.group(2).strip()
            if kind in ("if", "elif"):
                condition, negated = f"when {expr}", f"when not ({expr})"
            elif kind == "else":
                condition = negated
            else:
                condition = ""
            continue
        match = re.match(r"\s*(.+):\s*(\S+)\s*$", line)
        if match:
            label, value = match.groups()
            out.append(f"`{value}` ({label}{', ' + condition if condition else ''})")
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _default(value: Any, table: bool = False) -> str:
    if value is None or value == "":
        return "(blank)"
    text = str(value).strip()
    if "{{" in text:
        if table:
            return "derived, see below"
        return f"derived from other answers: `{text}`"
    return f"`{_cell(text) if table else text}`"


def _computed(value: Any) -> str:
    if isinstance(value, list):
        shown = ", ".join(f"`{v}`" for v in value[:5])
        return f"{len(value)} values: {shown}, …" if len(value) > 5 else shown
    return f"`{_cell(str(value).strip())}`"


def render(questions: dict[str, dict[str, Any]] | None = None) -> str:
    questions = load_questions() if questions is None else questions
    asked = {k: v for k, v in questions.items() if v.get("when") is not False}
    computed = {k: v for k, v in questions.items() if v.get("when") is False}
    lines = [
        f"<!-- GENERATED from copier.yml by `{COMMAND}`: do not edit by hand. -->",
        "# Questions reference",
        "",
        (
            "What `copier copy` asks, in order. Every answer is validated before a file is "
            "written; `--defaults` takes the defaults below, `--data name=value` sets one answer. "
            "The answers are stored in the generated repo's `.copier-answers.yml` and reused by "
            "`copier update`."
        ),
        "",
        "| question | type | default | help |",
        "|---|---|---|---|",
    ]
    for name, spec in asked.items():
        lines.append(
            f"| [`{name}`](#{name.replace('_', '-')}) | {spec.get('type', 'str')} "
            f"| {_default(spec.get('default'), table=True)} | {_cell(str(spec.get('help', '')))} |"
        )
    for name, spec in asked.items():
        lines += ["", f"## {name.replace('_', '-')}", "", f"`{name}`: {spec.get('help', '')}", ""]
        lines.append(f"- Type: {spec.get('type', 'str')}")
        lines.append(f"- Default: {_default(spec.get('default'))}")
        choices = _choices(spec["choices"]) if "choices" in spec else []
        if choices:
            lines.append("- Choices:")
            lines += [f"    - {choice}" for choice in choices]
        rules = _rules(str(spec["validator"])) if "validator" in spec else []
        if rules:
            lines.append("- Validation:")
            lines += [f"    - {rule}" for rule in rules]
    if computed:
        lines += [
            "",
            "## Computed values",
            "",
            "Not asked; derived from the answers or constant, available to the template and its "
            "validators (the constants are also read by the platform's tools).",
            "",
            "| name | value |",
            "|---|---|",
        ]
        lines += [
            f"| `{k}` | {_computed(v.get('default', ''))} |" for k, v in computed.items()
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/questions.md is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT.relative_to(ROOT)} is stale: run {COMMAND}")
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

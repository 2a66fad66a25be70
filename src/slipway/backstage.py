"""`python -m slipway backstage build [--check]`: backstage/template.yaml, a Backstage Software
Template (scaffolder.backstage.io/v1beta3) generated from copier.yml, so it cannot drift from the
questions (tests/test_backstage.py fails when the checked-in file is stale).

    python -m slipway backstage build                    # rewrite backstage/template.yaml
    python -m slipway backstage build --check            # exit 1 when it is stale
    python -m slipway backstage build \\
        --rendition-url https://github.com/<org>/slipway/tree/cookiecutter \\
        --owner group:default/<platform-team> --out <file>   # your organisation's copy
    python -m slipway backstage schema [VERSION]         # refresh the vendored schema (npm)

Parameters: every asked question with its help, default (a Jinja default is left out: the
rendition derives it as Copier does), choices (`oneOf` const/title; choices that depend on one
earlier choice become `if`/`then`) and what JSON Schema can say of its validator (patterns,
lengths, numeric bounds). Whatever it cannot say, the rendition's pre-generation hook refuses with
Copier's message, so the task fails before anything is published.

Steps: fetch:cookiecutter of slipway's cookiecutter rendition (docs/scaffolders.md: why not
fetch:template), removing the rendition's own first commit (the publish step makes it),
publish:github or publish:gitlab by the ci_provider answer, catalog:register of the generated
catalog-info.yaml.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import yaml

from slipway import copier_config, rendition_runtime
from slipway.copier_config import ROOT
from slipway.rendition import dependent_choices

OUT = ROOT / "backstage" / "template.yaml"
SCHEMA_DIR = ROOT / "tests" / "schemas" / "backstage-scaffolder"
SCHEMA_VERSION = "2.4.0"
COMMAND = "python -m slipway backstage build"
RENDITION_URL = "https://github.com/acme/slipway/tree/cookiecutter"
OWNER = "group:default/ml-platform"
TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}
FIELD = r"(?P<name>[a-z_]+)"


def title_of(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _number(text: str) -> int | float:
    value = float(text)
    return int(value) if value.is_integer() and "." not in text else value


def constraints(name: str, validator: str, constants: dict[str, Any]) -> dict[str, Any]:
    """What JSON Schema can say of a copier.yml validator, recognised from its usual forms; nothing
    for a validator that also reads other answers or has several branches (said in the hook)."""
    found: dict[str, Any] = {}
    # The first `{% if %}` branch refuses on its own: read it, if it reads no other answer.
    first = re.split(r"\{%-?\s*(?:elif|else)\b", validator)[0]
    if "{% if" in first and "{% endif" not in first:
        first += "{% endif %}"
    env = rendition_runtime.environment()
    if not jinja2.meta.find_undeclared_variables(env.parse(first)) <= {name, *constants}:
        return found
    validator = first
    search = re.search(
        rf"if (?P<optional>{name} and )?not \({name} \| regex_search\((?P<arg>'[^']*'|[a-z_]+)\)\)",
        validator,
    )
    if search:
        arg = search.group("arg")
        pattern = arg[1:-1] if arg.startswith("'") else str(constants[arg])
        found["pattern"] = f"^$|{pattern}" if search.group("optional") else pattern
    for low, op1, op2, high in re.findall(
        rf"not \(([\d.]+) (<=?) {name} (<=?) ([\d.]+)\)", validator
    ):
        found["minimum" if op1 == "<=" else "exclusiveMinimum"] = _number(low)
        found["maximum" if op2 == "<=" else "exclusiveMaximum"] = _number(high)
    for op, low in re.findall(rf"not \({name} (>=?) ([\d.]+)\)", validator):
        found["minimum" if op == ">=" else "exclusiveMinimum"] = _number(low)
    if m := re.search(rf"\({name} \| trim \| length\) < (\d+)", validator):
        found["minLength"] = int(m.group(1))
        found["pattern"] = r"^\s*\S(?:.*\S)?\s*$" if "pattern" not in found else found["pattern"]
    if m := re.search(rf"\({name} \| length\) > (\d+)", validator):
        found["maxLength"] = int(m.group(1))
    if f"'\\n' in {name}" in validator:
        found["pattern"] = r"^[^\n]*$"
    return found


def parameters(settings: dict[str, Any]) -> dict[str, Any]:
    constants = {
        name: q["default"]
        for name, q in copier_config.computed(settings).items()
        if not rendition_runtime.is_template(q.get("default"))
    }
    properties: dict[str, Any] = {}
    required: list[str] = []
    conditional: list[dict[str, Any]] = []
    asked = copier_config.asked(settings)
    for name, question in asked.items():
        kind = question.get("type", "str")
        prop: dict[str, Any] = {"title": title_of(name), "type": TYPES.get(kind, "string")}
        if question.get("help"):
            prop["description"] = question["help"]
        default = question.get("default")
        derived = rendition_runtime.is_template(default)
        if not derived and default is not None:
            prop["default"] = rendition_runtime.cast(kind, default)
            # A form treats "" as no answer (an optional field); a checkbox is always answered,
            # so a yes/no question is never required (answer files may leave it to its default).
            if default != "" and kind != "bool":
                required.append(name)
        elif derived:
            prop["description"] = prop.get("description", title_of(name)) + (
                " (leave blank: derived from the answers above, as Copier derives it)"
            )
        choices = question.get("choices")
        if choices and not rendition_runtime.is_template(choices):
            labels = choices if isinstance(choices, dict) else {str(c): c for c in choices}
            prop["oneOf"] = [
                {"const": rendition_runtime.cast(kind, v), "title": str(label)}
                for label, v in labels.items()
            ]
        elif rendition_runtime.is_template(choices):
            found = dependent_choices(choices, asked)
            if found:
                other, by_value = found
                conditional += [
                    {
                        "if": {"properties": {other: {"const": value}}},
                        "then": {"properties": {name: {"enum": options}}},
                    }
                    for value, options in by_value.items()
                ]
        if question.get("validator"):
            prop.update(constraints(name, question["validator"], constants))
        properties[name] = prop
    step: dict[str, Any] = {
        "title": "The ML use case (slipway's questions)",
        "required": required,
        "properties": properties,
    }
    if conditional:
        step["allOf"] = conditional
    return step


def template(settings: dict[str, Any], rendition_url: str, owner: str) -> dict[str, Any]:
    asked = copier_config.asked(settings)
    answers_file = settings.get("_answers_file", ".copier-answers.yml")
    values = {name: f"${{{{ parameters.{name} }}}}" for name in asked}
    step = parameters(settings)
    where = {
        "title": "Where the repository goes",
        "required": ["repoUrl"],
        "properties": {
            "repoUrl": {
                "title": "Repository location",
                "type": "string",
                "ui:field": "RepoUrlPicker",
                "ui:options": {"allowedHosts": ["github.com", "gitlab.com"]},
            }
        },
    }
    steps: list[dict[str, Any]] = [
        {
            "id": "fetch",
            "name": "Render slipway (its cookiecutter rendition)",
            "action": "fetch:cookiecutter",
            "input": {"url": rendition_url, "targetPath": "./", "values": values},
        },
        {
            # the rendition's post-generation hook makes the first commit; publish makes its own
            "id": "drop-git",
            "name": "Leave the first commit to the publish step",
            "action": "fs:delete",
            "input": {"files": [".git"]},
        },
    ]
    for provider in ("github", "gitlab"):
        steps.append(
            {
                "id": f"publish-{provider}",
                "name": f"Publish to {'GitHub' if provider == 'github' else 'GitLab'}",
                "if": f"${{{{ parameters.ci_provider == '{provider}' }}}}",
                "action": f"publish:{provider}",
                "input": {
                    "repoUrl": "${{ parameters.repoUrl }}",
                    "description": "${{ parameters.description }}",
                    "defaultBranch": "main",
                    "gitCommitMessage": "Initial commit from the slipway template",
                },
            }
        )
    for provider in ("github", "gitlab"):
        steps.append(
            {
                "id": f"register-{provider}",
                "name": "Register catalog-info.yaml in the catalog",
                "if": f"${{{{ parameters.ci_provider == '{provider}' }}}}",
                "action": "catalog:register",
                "input": {
                    "repoContentsUrl": (
                        f"${{{{ steps['publish-{provider}'].output.repoContentsUrl }}}}"
                    ),
                    "catalogInfoPath": "/catalog-info.yaml",
                },
            }
        )
    links = []
    for provider in ("github", "gitlab"):
        links += [
            {
                "if": f"${{{{ parameters.ci_provider == '{provider}' }}}}",
                "title": "Repository",
                "url": f"${{{{ steps['publish-{provider}'].output.remoteUrl }}}}",
            },
            {
                "if": f"${{{{ parameters.ci_provider == '{provider}' }}}}",
                "title": "In the catalog",
                "icon": "catalog",
                "entityRef": f"${{{{ steps['register-{provider}'].output.entityRef }}}}",
            },
        ]
    return {
        "apiVersion": "scaffolder.backstage.io/v1beta3",
        "kind": "Template",
        "metadata": {
            "name": "slipway-ml-use-case",
            "title": "ML use case (slipway)",
            "description": (
                "A production-shaped repository for an ML use case: FastAPI service, MLflow "
                "registry, evaluation gate, telemetry, Kubernetes deploy and CI, from the slipway "
                f"template. The repo records its answers in {answers_file}, so `copier update` "
                "brings it each new release."
            ),
            "tags": ["ml", "python", "fastapi", "mlflow", "slipway"],
        },
        "spec": {
            "owner": owner,
            "type": "service",
            "parameters": [step, where],
            "steps": steps,
            "output": {"links": links},
        },
    }


def render(
    settings: dict[str, Any] | None = None, rendition_url: str = RENDITION_URL, owner: str = OWNER
) -> str:
    settings = settings if settings is not None else copier_config.settings()
    data = template(settings, rendition_url, owner)
    header = (
        f"# Generated by `{COMMAND}` from copier.yml: do not edit (tests/test_backstage.py fails\n"
        "# when stale). Your organisation's copy: --rendition-url and --owner "
        "(docs/scaffolders.md).\n"
    )
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def fetch_schema(version: str) -> Path:
    """Template.v1beta3.schema.json from @backstage/plugin-scaffolder-common (npm; node loads the
    compiled module): Apache-2.0, copyright The Backstage Authors."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        packed = subprocess.run(
            ["npm", "pack", f"@backstage/plugin-scaffolder-common@{version}", "--silent"],
            cwd=work,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()[-1]
        with tarfile.open(work / packed) as archive:
            archive.extractall(work, filter="data")
        module = work / "package" / "dist" / "Template.v1beta3.schema.json.cjs.js"
        script = (
            f"const m = require({json.dumps(str(module))}); "
            "process.stdout.write(JSON.stringify(m.default ?? m))"
        )
        schema = json.loads(
            subprocess.run(
                ["node", "-e", script], capture_output=True, text=True, check=True
            ).stdout
        )
    SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
    target = SCHEMA_DIR / "Template.v1beta3.schema.json"
    target.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
    (SCHEMA_DIR / "VERSION").write_text(f"@backstage/plugin-scaffolder-common {version}\n")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m slipway backstage",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="action", required=True)
    b = sub.add_parser("build", help=f"write {OUT.relative_to(ROOT)}")
    b.add_argument("--check", action="store_true", help="exit 1 when the file is stale")
    b.add_argument("--out", type=Path, default=OUT)
    b.add_argument("--rendition-url", default=RENDITION_URL)
    b.add_argument("--owner", default=OWNER)
    s = sub.add_parser("schema", help="refresh the vendored Template.v1beta3 schema (npm, node)")
    s.add_argument("version", nargs="?", default=SCHEMA_VERSION)
    args = parser.parse_args(argv)
    if args.action == "schema":
        print(f"wrote {fetch_schema(args.version)}")
        return 0
    text = render(rendition_url=args.rendition_url, owner=args.owner)
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            sys.stdout.writelines(
                difflib.unified_diff(
                    current.splitlines(True), text.splitlines(True), str(args.out), "fresh"
                )
            )
            print(f"\n{args.out} is stale: run `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m slipway cookiecutter build OUT [--ref REF]`: the cookiecutter rendition of the
Copier template, generated from copier.yml and template/ (never maintained by hand).

    python -m slipway cookiecutter build /tmp/cc                # the working tree
    python -m slipway cookiecutter build /tmp/cc --ref v0.3.0   # a release
    cookiecutter /tmp/cc --no-input                             # = copier copy --defaults

What the rendition is (docs/scaffolders.md):
- cookiecutter.json: copier.yml's asked questions with the same defaults (Jinja defaults rewritten
  to `cookiecutter.<name>`), fixed choices as lists (the default first) with their labels and the
  help in `__prompts__`; computed values as private variables (`__name` when derived from answers,
  `_name` when constant); `_slipway`: the questions as copier.yml has them (types, validators,
  choices), the template commit and source, read by the runtime.
- `{{cookiecutter.__project_slug}}/`: template/ with Copier's rules. A `.jinja` file loses its
  suffix and starts with `{% set name = ... %}` for every name Copier gives a template (typed
  answers, computed values, `_copier_answers`, `_copier_conf`), so its text is the template's own;
  every other file is listed in `_copy_without_render` (Copier copies it verbatim). A path part
  Copier renders reads the same typed values (`cookiecutter | slipway_context`); one that may
  render to "" (Copier then skips it) is named `.slipway-omitted` in that case and deleted by the
  post-generation hook.
- local_extensions.py: slipway/rendition_runtime.py (the filters Copier's environment has).
- hooks/pre_gen_project.py: copier.yml's validators with Copier's messages;
  hooks/post_gen_project.py: copier.yml's `_tasks` for a copy, with the hook scripts they run
  vendored in.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import yaml
from jinja2 import nodes

from slipway import copier_config, rendition_runtime
from slipway.copier_config import ROOT

COMMAND = "python -m slipway cookiecutter build"
SLUG = "project_slug"
PROJECT_DIR = "{{cookiecutter.__" + SLUG + "}}"
RUNTIME = Path(rendition_runtime.__file__)
# Copier's own exclusions (copier._template.DEFAULT_EXCLUDE), applied before the template's.
DEFAULT_EXCLUDE = (
    "copier.yaml",
    "copier.yml",
    "~*",
    "*.py[co]",
    "__pycache__",
    ".git",
    ".DS_Store",
    ".svn",
)


class BuildError(Exception):
    """The template uses something the rendition cannot reproduce."""


def cc_key(spec: dict[str, Any]) -> str:
    """The cookiecutter.json key of a copier.yml question: computed values are private,
    `__name` (rendered by cookiecutter) when derived from answers, `_name` when constant."""
    if spec["computed"]:
        return ("__" if rendition_runtime.is_template(spec["default"]) else "_") + spec["name"]
    return str(spec["name"])


def rewrite(source: str, keys: dict[str, str]) -> str:
    """Jinja source with every variable that names a copier.yml question replaced by the
    expression `keys[name]` (attributes, filters, tests and keyword arguments untouched)."""
    tokens = list(jinja2.Environment().lex(source))
    out: list[str] = []
    meaningful = [i for i, tok in enumerate(tokens) if tok[1] != "whitespace"]
    position = {index: n for n, index in enumerate(meaningful)}
    for index, (_, kind, value) in enumerate(tokens):
        if kind == "name" and value in keys:
            n = position[index]
            before = tokens[meaningful[n - 1]] if n else None
            after = tokens[meaningful[n + 1]] if n + 1 < len(meaningful) else None
            attribute = before is not None and (
                before[1] in ("dot", "pipe") or (before[1] == "name" and before[2] == "is")
            )
            keyword = after is not None and after[1] == "assign"
            if not attribute and not keyword:
                value = keys[value]
        out.append(value)
    if "".join(value for _, _, value in tokens) != source:
        raise BuildError(f"cannot rewrite Jinja source {source!r}")
    return "".join(out)


def filters_used(env: jinja2.Environment, source: str) -> set[str]:
    return {node.name for node in env.parse(source).find_all(nodes.Filter)}


def includes_used(env: jinja2.Environment, source: str) -> set[str]:
    """Top-level entries of the template repo that `{% include/import/extends %}` read (Copier's
    loader is rooted at the repo): the first path segment of the target's first string."""
    found = set()
    tree = env.parse(source)
    for node in tree.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
        strings = [
            const.value
            for const in node.template.find_all(nodes.Const)
            if isinstance(const.value, str)
        ]
        if isinstance(node.template, nodes.Const):
            strings = [node.template.value]
        if not strings or not strings[0].strip("/"):
            raise BuildError(f"cannot tell which file {node!r} includes")
        found.add(strings[0].strip("/").split("/")[0])
    return found


class Source:
    """The Copier template as Copier reads it: its git clone at `ref` (uncommitted changes
    included, as Copier includes them) or a plain directory."""

    def __init__(self, src: str, ref: str | None) -> None:
        from copier._template import Template

        self.template = Template(url=src, ref=ref)
        self.root = Path(self.template.local_abspath)
        self.commit = self.template.commit
        self.settings = copier_config.load(self.root / "copier.yml")

    def close(self) -> None:
        self.template._cleanup()


def template_files(source: Source) -> Iterator[Path]:
    import pathspec

    settings = source.settings
    base = source.root / str(settings.get("_subdirectory", ""))
    patterns = [*DEFAULT_EXCLUDE, *settings.get("_exclude", [])]
    # the pattern flavour Copier picks for the installed pathspec
    major = int(pathspec.__version__.split(".")[0])
    spec = pathspec.PathSpec.from_lines("gitignore" if major >= 1 else "gitwildmatch", patterns)
    for path in sorted(base.rglob("*")):
        relative = path.relative_to(base).as_posix()
        if path.is_file() and not spec.match_file(relative):
            yield path.relative_to(base)


def question_specs(settings: dict[str, Any]) -> list[dict[str, Any]]:
    if settings.get("_jinja_extensions"):
        raise BuildError("copier.yml `_jinja_extensions` has no cookiecutter equivalent yet")
    secret = set(settings.get("_secret_questions", []))
    specs = []
    for name, question in copier_config.questions(settings).items():
        spec = {
            "name": name,
            "type": question.get(
                "type", "str" if "default" not in question else _type_of(question)
            ),
            "default": question.get("default"),
            "computed": question.get("when") is False,
        }
        if question.get("multiselect"):
            raise BuildError(f"{name}: multiselect choices have no cookiecutter equivalent yet")
        when = question.get("when")
        if rendition_runtime.is_template(when):
            spec["when"] = when  # cookiecutter asks it anyway; hidden from the answers as by Copier
        elif when not in (None, False, True):
            raise BuildError(f"{name}: `when: {when!r}` is neither a boolean nor a template")
        for field in ("choices", "validator", "help"):
            if field in question:
                spec[field] = question[field]
        spec["secret"] = bool(question.get("secret")) or name in secret
        specs.append(spec)
    return specs


def _type_of(question: dict[str, Any]) -> str:
    default = question.get("default")
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    if isinstance(default, (list, dict)):
        return "yaml"
    return "str"


def dependent_choices(
    choices: str, asked: dict[str, dict[str, Any]]
) -> tuple[str, dict[Any, list[Any]]] | None:
    """Choices that depend on one earlier fixed-choice answer: (that question, its value ->
    the choices' values); None otherwise."""
    env = rendition_runtime.environment()
    used = jinja2.meta.find_undeclared_variables(env.parse(choices))
    if len(used) != 1:
        return None
    (other,) = used
    other_choices = asked.get(other, {}).get("choices")
    if not isinstance(other_choices, (dict, list)):
        return None
    values = other_choices.values() if isinstance(other_choices, dict) else other_choices
    by_value = {}
    for value in values:
        rendered = yaml.safe_load(env.from_string(choices).render({other: value}))
        by_value[value] = list(rendered.values()) if isinstance(rendered, dict) else list(rendered)
    return other, by_value


def cookiecutter_json(
    specs: list[dict[str, Any]], keys: dict[str, str], extra: dict[str, Any]
) -> dict[str, Any]:
    context: dict[str, Any] = {}
    prompts: dict[str, Any] = {}
    for spec in specs:
        name, default = spec["name"], spec["default"]
        key = cc_key(spec)
        if spec["computed"]:
            context[key] = (
                rewrite(default, keys) if rendition_runtime.is_template(default) else default
            )
            continue
        value = rewrite(default, keys) if rendition_runtime.is_template(default) else default
        if spec["type"] == "bool" and not rendition_runtime.is_template(default):
            context[key] = bool(default)  # a yes/no prompt in cookiecutter
            prompts[key] = spec.get("help", name)
            continue
        value = "" if value is None else value if isinstance(value, str) else str(value)
        choices = spec.get("choices")
        if (
            choices
            and not rendition_runtime.is_template(choices)
            and not rendition_runtime.is_template(default)
        ):
            labels = choices if isinstance(choices, dict) else {str(c): c for c in choices}
            options = [str(v) for v in labels.values()]
            if value not in options:
                raise BuildError(f"{name}: default {value!r} is not one of its choices {options}")
            context[key] = [value, *(o for o in options if o != value)]
            prompt: dict[str, str] = {"__prompt__": spec.get("help", name)}
            prompt.update({str(v): str(label) for label, v in labels.items()})
            prompts[key] = prompt
        else:
            context[key] = value
            text = spec.get("help", name)
            if (
                choices
            ):  # choices that depend on earlier answers: a text prompt, checked by the hook
                found = (
                    dependent_choices(choices, {s["name"]: s for s in specs})
                    if isinstance(choices, str)
                    else None
                )
                if found:
                    other, by_value = found
                    text += (
                        " ("
                        + "; ".join(
                            f"{other} {value}: {', '.join(map(str, options))}"
                            for value, options in by_value.items()
                        )
                        + ")"
                    )
                else:
                    text += " (the choices depend on earlier answers; checked before writing)"
            if spec.get("when"):
                text += f" (Copier asks it only when {spec['when'].strip()})"
            prompts[key] = text
    return {**context, **extra, "__prompts__": prompts}


def file_prefix(specs: list[dict[str, Any]]) -> str:
    """`{% set %}` of every name a Copier template sees: outputs nothing, so the rendered text is
    the template's own."""
    names = [spec["name"] for spec in specs] + ["_copier_answers", "_copier_conf"]
    sets = "".join(f"{{% set {name} = _slipway[{name!r}] %}}" for name in names)
    return "{% set _slipway = cookiecutter | slipway_context %}" + sets


def rendition_path(
    relative: Path, keys: dict[str, str], suffix: str, answers_file: str
) -> tuple[str, bool]:
    parts = list(relative.parts)
    rendered = bool(suffix) and parts[-1].endswith(suffix)
    if rendered:
        parts[-1] = parts[-1][: -len(suffix)]
    out = []
    for part in parts:
        if "_copier_conf" in part:
            part = (
                jinja2.Environment()
                .from_string(part)
                .render(_copier_conf={"answers_file": answers_file})
            )
        if rendition_runtime.is_template(part):
            new = rewrite(part, keys)
            if "{%" in part:  # may render to "": Copier skips the path
                new = (
                    f"{{% set _slipway_name %}}{new}{{% endset %}}"
                    f"{{{{ _slipway_name or '{rendition_runtime.OMITTED}' }}}}"
                )
            part = new
        out.append(part)
    return "/".join(out), rendered


def escape_glob(path: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in path)


TASK_SRC = "_copier_conf.src_path }}/"


def tasks_of(settings: dict[str, Any], root: Path) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """copier.yml `_tasks` as {command, when} and the template files they run, by path."""
    tasks: list[dict[str, Any]] = []
    files: dict[str, str] = {}
    for task in settings.get("_tasks", []):
        entry = dict(task) if isinstance(task, dict) else {"command": task}
        tasks.append(entry)
        parts = entry["command"] if isinstance(entry["command"], list) else [entry["command"]]
        for part in parts:
            text = str(part)
            while TASK_SRC in text:
                text = text.split(TASK_SRC, 1)[1]
                relative = text.split()[0].strip("'\"")
                if not (root / relative).is_file():
                    raise BuildError(f"task file {relative} not found in the template")
                files[relative] = (root / relative).read_text(encoding="utf-8")
    return tasks, files


def hook(kind: str, header: str, body: str) -> str:
    runtime = RUNTIME.read_text(encoding="utf-8")
    for text in (runtime, body):
        if "endraw" in text:
            raise BuildError("vendored hook code contains 'endraw'")
    return (
        f"# {header}\n"
        f"# Generated by `{COMMAND}` from copier.yml; do not edit.\n"
        "import json\n\n"
        "COOKIECUTTER = json.loads(r'''{{ cookiecutter | tojson }}''')\n"
        "{% raw %}\n"
        f"{runtime}\n\n"
        f"# ---- {kind} -----------------------------------------------------------------------\n"
        f"{body}"
        "{% endraw %}\n"
    )


def build(
    out: Path, src: str | Path = ROOT, ref: str | None = None, src_path: str | None = None
) -> Path:
    """Write the rendition of `src` at `ref` into `out` (replaced if it exists)."""
    source = Source(str(src), ref)
    try:
        return _build(out, source, str(src) if src_path is None else src_path)
    finally:
        source.close()


def _build(out: Path, source: Source, src_path: str) -> Path:
    settings = source.settings
    specs = question_specs(settings)
    keys = {spec["name"]: f"cookiecutter.{cc_key(spec)}" for spec in specs}
    # paths see the typed values, as Copier's do (a bool answer is a bool, not "False")
    typed = {spec["name"]: f"(cookiecutter | slipway_context)[{spec['name']!r}]" for spec in specs}
    if SLUG not in keys or keys[SLUG] != f"cookiecutter.__{SLUG}":
        raise BuildError(f"copier.yml has no computed {SLUG}: the project directory needs it")
    suffix = str(settings.get("_templates_suffix", ".jinja"))
    answers_file = str(settings.get("_answers_file", ".copier-answers.yml"))
    check_env = rendition_runtime.environment()
    known_filters = set(check_env.filters)
    base = source.root / str(settings.get("_subdirectory", ""))

    if out.exists():
        shutil.rmtree(out)
    project = out / PROJECT_DIR
    project.mkdir(parents=True)
    verbatim: list[str] = []
    prefix = file_prefix(specs)
    used: set[str] = set()
    included: set[str] = set()
    for relative in template_files(source):
        target, rendered = rendition_path(relative, typed, suffix, answers_file)
        used |= filters_used(check_env, relative.as_posix())
        dst = project / target
        dst.parent.mkdir(parents=True, exist_ok=True)
        if rendered:
            text = (base / relative).read_text(encoding="utf-8")
            used |= filters_used(check_env, text)
            included |= includes_used(check_env, text)
            with open(dst, "w", encoding="utf-8", newline="") as handle:
                handle.write(prefix + text)
            shutil.copymode(base / relative, dst)
        else:
            shutil.copy2(base / relative, dst)
            verbatim.append(escape_glob(target))
    for spec in specs:
        for field in ("default", "validator", "choices"):
            if rendition_runtime.is_template(spec.get(field)):
                used |= filters_used(check_env, spec[field])
    missing = sorted(used - known_filters)
    if missing:
        raise BuildError(
            f"the template uses Jinja filters the rendition does not provide: {missing} "
            "(add them to src/slipway/rendition_runtime.py FILTERS)"
        )

    # cookiecutter's loader also searches ../templates (next to cookiecutter.json): what the
    # template includes from the repo goes there, at the same relative path.
    for entry in sorted(included):
        origin = source.root / entry
        if origin.is_dir():
            shutil.copytree(
                origin,
                out / "templates" / entry,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            )
        elif origin.is_file():
            (out / "templates").mkdir(exist_ok=True)
            shutil.copy2(origin, out / "templates" / entry)
        else:
            raise BuildError(
                f"the template includes {entry}/..., which is not in the template repo"
            )

    spec = {
        "commit": source.commit,
        "src_path": src_path,
        "answers_file": answers_file,
        "questions": [{k: v for k, v in s.items() if k != "help"} for s in specs],
    }
    extra = {
        "_slipway": spec,
        "_copy_without_render": sorted(verbatim),
        "_extensions": ["local_extensions.SlipwayExtension"],
    }
    context = cookiecutter_json(specs, keys, extra)
    (out / "cookiecutter.json").write_text(json.dumps(context, indent=2, ensure_ascii=False) + "\n")
    shutil.copyfile(RUNTIME, out / "local_extensions.py")

    tasks, files = tasks_of(settings, source.root)
    message = settings.get("_message_after_copy", "")
    hooks = out / "hooks"
    hooks.mkdir()
    (hooks / "pre_gen_project.py").write_text(
        hook(
            "pre_gen_project",
            "copier.yml's validators, Copier's messages. cookiecutter runs this after creating the "
            "(empty) project directory,\n# and deletes that directory when it fails.",
            'if __name__ == "__main__":\n    sys.exit(pre_gen(COOKIECUTTER))\n',
        )
    )
    (hooks / "post_gen_project.py").write_text(
        hook(
            "post_gen_project",
            "copier.yml's _tasks for a copy (the template's hook scripts, vendored below).",
            f"TASKS = {tasks!r}\n"
            f"FILES = {files!r}\n"
            f"MESSAGE = {message!r}\n\n"
            'if __name__ == "__main__":\n'
            "    sys.exit(post_gen(COOKIECUTTER, TASKS, FILES, MESSAGE))\n",
        )
    )
    version = source.commit or "unversioned"
    (out / "README.md").write_text(
        f"# slipway, cookiecutter rendition ({version})\n\n"
        f"Generated by `{COMMAND}` from the Copier template (copier.yml + template/); never edit "
        "it by hand.\n\n"
        "    cookiecutter <this directory or repo> --no-input   # = copier copy --defaults\n\n"
        "See docs/scaffolders.md in the template repository.\n"
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m slipway cookiecutter",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="action", required=True)
    b = sub.add_parser("build", help="write the rendition into OUT")
    b.add_argument("out", type=Path)
    b.add_argument("--ref", help="a tag or commit of the template (default: the working tree)")
    b.add_argument("--src", default=str(ROOT), help="the Copier template (path or git URL)")
    b.add_argument("--src-path", help="_src_path recorded in generated repos (default: --src)")
    p = sub.add_parser("publish", help="commit the rendition of --ref onto a branch")
    p.add_argument("--ref", required=True)
    p.add_argument("--branch", default="cookiecutter")
    p.add_argument("--src-path", help="_src_path recorded in generated repos (default: origin)")
    p.add_argument("--repo", type=Path, default=ROOT)
    args = parser.parse_args(argv)
    try:
        if args.action == "build":
            build(args.out, args.src, args.ref, args.src_path)
            print(f"cookiecutter rendition written to {args.out}")
        else:
            from slipway.publish import publish

            sha = publish(args.repo, args.ref, args.branch, args.src_path)
            print(f"{args.branch} -> {sha} (rendition of {args.ref})")
    except BuildError as error:
        print(f"slipway cookiecutter: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

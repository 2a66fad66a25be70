"""What slipway's cookiecutter rendition runs: the Jinja filters Copier's templates use, the typed
answers and computed values of copier.yml, its validators and its tasks.

`python -m slipway cookiecutter build` vendors this file, unchanged, into the rendition: as
`local_extensions.py` (cookiecutter loads `SlipwayExtension` when it renders cookiecutter.json,
paths and files) and at the head of `hooks/pre_gen_project.py` (validators) and
`hooks/post_gen_project.py` (tasks). So it needs only what cookiecutter itself depends on
(the standard library, Jinja2, PyYAML) and runs on any Python cookiecutter runs on. `slipway adopt`
reuses it to validate answers taken from a cookiecutter replay.

The questions come from the rendition's cookiecutter.json (`_slipway`, written by the build from
copier.yml): `{"questions": [{"name", "type", "default", "computed", "choices", "validator",
"secret"}, ...] (in copier.yml order), "commit", "src_path", "answers_file"}`.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import jinja2
import yaml
from jinja2.ext import Extension

# A path Copier would not create (its name renders to ""): the rendition names it so, and the
# post-generation hook deletes it before anything else runs.
OMITTED = ".slipway-omitted"
TRUE = ("y", "yes", "t", "true", "on", "1")


# ---- the filters of Copier's default environment that the template uses --------------------


def regex_search(value, pattern, *groups, ignorecase=False, multiline=False):
    """The match (or the listed groups, `'\\1'` / `'\\g<name>'`), None when nothing matches."""
    flags = (re.IGNORECASE if ignorecase else 0) | (re.MULTILINE if multiline else 0)
    found = re.search(pattern, str(value), flags)
    if found is None:
        return None
    if not groups:
        return found.group()
    picked = []
    for group in groups:
        ref = re.fullmatch(r"\\g<(\S+)>|\\(\d+)", str(group))
        if ref is None:
            raise jinja2.exceptions.FilterArgumentError(f"regex_search: bad group {group!r}")
        picked.append(found.group(ref.group(1) or int(ref.group(2))))
    return picked


def regex_replace(value="", pattern="", replacement="", ignorecase=False, multiline=False):
    flags = (re.IGNORECASE if ignorecase else 0) | (re.MULTILINE if multiline else 0)
    return re.sub(pattern, replacement, str(value), flags=flags)


def to_nice_yaml(value, indent=4, **kwargs):
    return yaml.dump(value, indent=indent, allow_unicode=True, default_flow_style=False, **kwargs)


FILTERS = {
    "regex_search": regex_search,
    "regex_replace": regex_replace,
    "to_nice_yaml": to_nice_yaml,
}


def environment():
    """The environment copier.yml's `_envops` asks for (strict, trailing newline kept)."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters.update(FILTERS)
    return env


def is_template(value):
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def render(env, source, context):
    return env.from_string(source).render(**context)


# ---- answers, typed as Copier types them -----------------------------------------------------


def cast(kind, value):
    """An answer as Copier casts it for its question type (cookiecutter answers are strings)."""
    if kind == "int":
        return (
            value
            if isinstance(value, int) and not isinstance(value, bool)
            else int(str(value).strip())
        )
    if kind == "float":
        return float(value) if isinstance(value, (int, float)) else float(str(value).strip())
    if kind == "bool":
        return value if isinstance(value, bool) else str(value).strip().lower() in TRUE
    if kind == "yaml":
        return yaml.safe_load(value) if isinstance(value, str) else value
    if kind == "json":
        return json.loads(value) if isinstance(value, str) else value
    return value if isinstance(value, str) else str(value)


def spec_of(cookiecutter):
    return cookiecutter["_slipway"]


def questions_of(spec):
    """name -> question, in copier.yml order (a list in the spec: JSON dumps may sort keys)."""
    return {question["name"]: question for question in spec["questions"]}


def typed_values(cookiecutter, env=None):
    """Every copier.yml question (asked and computed) -> its typed value, in file order."""
    env = env or environment()
    values = {}
    for name, question in questions_of(spec_of(cookiecutter)).items():
        kind = question.get("type", "str")
        if question.get("computed"):
            default = question.get("default")
            values[name] = (
                cast(kind, render(env, default, values)) if is_template(default) else default
            )
        else:
            values[name] = cast(kind, cookiecutter[name])
    return values


def copier_answers(cookiecutter, values=None):
    """What Copier puts in `_copier_answers`: the asked, non-secret answers, `_commit` and
    `_src_path` of the template the rendition was built from."""
    spec = spec_of(cookiecutter)
    values = values if values is not None else typed_values(cookiecutter)
    answers = {}
    if spec.get("commit"):
        answers["_commit"] = spec["commit"]
    if spec.get("src_path"):
        answers["_src_path"] = spec["src_path"]
    env = environment()
    for name, question in questions_of(spec).items():
        if question.get("computed") or question.get("secret"):
            continue
        when = question.get("when")
        if is_template(when) and render(env, when, values).strip().lower() not in TRUE:
            continue  # a question Copier does not ask: its answer is not recorded
        answers[name] = values[name]
    return answers


def copier_conf(cookiecutter):
    spec = spec_of(cookiecutter)
    output = cookiecutter.get("_output_dir") or os.getcwd()
    return {
        "answers_file": spec.get("answers_file", ".copier-answers.yml"),
        "src_path": spec.get("src_path", ""),
        "dst_path": os.path.join(output, str(cookiecutter.get("__project_slug", ""))),
        "vcs_ref": spec.get("commit"),
    }


def render_context(cookiecutter):
    """The names a Copier template sees: typed answers, computed values, `_copier_answers`,
    `_copier_conf`. Each rendered file of the rendition starts by setting them from this."""
    values = typed_values(cookiecutter)
    return {
        **values,
        "_copier_answers": copier_answers(cookiecutter, values),
        "_copier_conf": copier_conf(cookiecutter),
    }


class SlipwayExtension(Extension):
    """Loaded by cookiecutter through cookiecutter.json's `_extensions`."""

    def __init__(self, environment):
        super().__init__(environment)
        environment.filters.update(FILTERS)
        environment.filters["slipway_context"] = render_context


# ---- validators (pre_gen_project) ------------------------------------------------------------


def choice_values(env, question, values):
    choices = question.get("choices")
    if is_template(choices):
        choices = yaml.safe_load(render(env, choices, values))
    if isinstance(choices, dict):
        choices = list(choices.values())
    return [cast(question.get("type", "str"), choice) for choice in choices or []]


def errors(answers, questions):
    """Copier's refusals for these answers (question -> raw answer), in copier.yml order and in
    Copier's words: a value of the wrong type, outside the choices, a validator's message."""
    env = environment()
    values, found = {}, []
    for name, question in questions.items():
        kind = question.get("type", "str")
        if question.get("computed"):
            default = question.get("default")
            try:
                values[name] = (
                    cast(kind, render(env, default, values)) if is_template(default) else default
                )
            except Exception:  # derived from an answer refused above: reported there
                pass
            continue
        try:
            values[name] = cast(kind, answers[name])
        except KeyError:
            found.append(f"Validation error for question '{name}': no answer given")
            continue
        except (TypeError, ValueError) as error:
            found.append(f"Validation error for question '{name}': {error}")
            continue
    for name, question in questions.items():
        if question.get("computed") or name not in values:
            continue
        valid = choice_values(env, question, values) if question.get("choices") else None
        if valid is not None and values[name] not in valid:
            found.append(f"Invalid choice for '{name}': {values[name]!r} is not in {valid}")
            continue
        if question.get("validator"):
            try:
                message = render(env, question["validator"], values).strip()
            except Exception as error:  # the validator itself failed: Copier reports the error
                message = str(error)
            if message:
                found.append(f"Validation error for question '{name}': {message}")
    return found


def pre_gen(cookiecutter):
    spec = spec_of(cookiecutter)
    questions = questions_of(spec)
    answers = {name: cookiecutter[name] for name in questions if name in cookiecutter}
    refused = errors(answers, questions)
    for message in refused:
        print(message, file=sys.stderr)
    if refused:
        print(
            "slipway: answers refused; cookiecutter removes the project directory it created",
            file=sys.stderr,
        )
        return 1
    return 0


# ---- tasks (post_gen_project) ----------------------------------------------------------------


def remove_omitted(project):
    for root, dirs, files in os.walk(project, topdown=True):
        for name in list(dirs):
            if name == OMITTED:
                shutil.rmtree(os.path.join(root, name))
                dirs.remove(name)
        for name in files:
            if name == OMITTED:
                os.remove(os.path.join(root, name))


def post_gen(cookiecutter, tasks, files, message):
    """Remove what Copier would not have created, run copier.yml's `_tasks` for a copy (the
    template's hook scripts, vendored in `files`), print `_message_after_copy`.
    SLIPWAY_SKIP_TASKS=1 skips the tasks (as `copier copy --skip-tasks`)."""
    project = os.getcwd()
    remove_omitted(project)
    env = environment()
    context = render_context(cookiecutter)
    context["_copier_conf"]["dst_path"] = project
    context["_copier_operation"] = "copy"
    context["_copier_python"] = sys.executable
    if os.environ.get("SLIPWAY_SKIP_TASKS") == "1":
        print("slipway: SLIPWAY_SKIP_TASKS=1: tasks skipped", file=sys.stderr)
    else:
        with tempfile.TemporaryDirectory(prefix="slipway-template-") as src:
            for relative, text in files.items():
                path = os.path.join(src, *relative.split("/"))
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w", encoding="utf-8", newline="\n") as handle:
                    handle.write(text)
            context["_copier_conf"]["src_path"] = src
            for task in tasks:
                when = task.get("when", True)
                if is_template(when):
                    when = render(env, when, context).strip().lower() in TRUE
                if not when:
                    continue
                command = task["command"]
                if isinstance(command, list):
                    command = [render(env, str(part), context) for part in command]
                else:
                    command = render(env, command, context)
                result = subprocess.run(
                    command, cwd=project, shell=isinstance(command, str), check=False
                )
                if result.returncode:
                    print(
                        f"slipway: task {command!r} failed (exit {result.returncode})",
                        file=sys.stderr,
                    )
                    return result.returncode
    if message:
        print(render(env, message, context), file=sys.stderr)
    return 0

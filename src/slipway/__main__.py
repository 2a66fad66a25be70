"""`python -m slipway <command> [args]`: the platform team's tooling, one entry point
(`slipway` once installed). `python -m slipway -h` lists the commands."""

from __future__ import annotations

import importlib
import sys

# command -> (module with a main(argv) -> int, one line of help)
COMMANDS = {
    "demo": ("slipway.demo", "render the default answers and `make up` the service"),
    "example": ("slipway.example", "re-render examples/default (--check: exit 1 if stale)"),
    "questions-doc": ("slipway.questions_doc", "regenerate docs/questions.md (--check)"),
    "fleet": ("slipway.fleet", "where generated repos stand against the template"),
    "datasets": ("slipway.datasets", "regenerate datasets/ from scikit-learn's samples"),
    "backstage-schemas": ("slipway.backstage_schemas", "refresh tests/schemas/backstage (npm)"),
    "cookiecutter": ("slipway.rendition", "build (or publish) the cookiecutter rendition"),
    "backstage": ("slipway.backstage", "regenerate backstage/template.yaml (--check)"),
    "adopt": ("slipway.adopt", "write .copier-answers.yml for a cookiecutter-born repo"),
    "devloop": ("slipway.devloop", "time copy + make setup + make check on fresh renders"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: python -m slipway <command> [args]   (<command> -h for its options)", ""]
    lines += [f"  {name.ljust(width)}  {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in {"-h", "--help"}:
        print(usage())
        return 0 if args else 64
    if args[0] not in COMMANDS:
        print(f"unknown command {args[0]!r}\n\n{usage()}", file=sys.stderr)
        return 64
    module = importlib.import_module(COMMANDS[args[0]][0])
    return int(module.main(args[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())

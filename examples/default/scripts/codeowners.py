"""CODEOWNERS files of GitHub and GitLab: parsed, checked and matched against paths.

    rules = parse(text, "gitlab")               # raises CodeownersError on a syntax error
    owners_of(rules, "deploy/k8s/hpa.yaml", "gitlab")
    matches("/deploy/", "deploy/k8s/hpa.yaml", "github")

The two providers share the gitignore-style patterns but differ where it matters:

- GitHub (gitignore rules, minus `!`, `[ ]` and `\\#`): a pattern with a `/` at its start or in
  its middle is relative to the repository root, any other pattern matches at any depth; a
  pattern matches a path and, when it names a directory, everything below it, except that a
  wildcard last segment (`docs/*`) matches only that level; a trailing `/` matches directories
  only. The last matching rule wins; a rule may have no owner (the files are then unowned).
- GitLab: a pattern not starting with `/` matches at any depth (`docs/a.md` is `/**/docs/a.md`);
  a trailing `/` means everything below the directory; other patterns match files exactly
  (File.fnmatch with FNM_PATHNAME | FNM_DOTMATCH). `[Section]`, `^[Optional]` and
  `[Section][2]` headers carry default owners for rules without their own; inside a section the
  last matching rule wins, and every section applies. `\\#` and `\\ ` escape.

In both: `*` and `?` never match `/`; `**/` is zero or more directories, a trailing `/**`
everything below. A line's `#` after whitespace starts a comment.

Standard library only. The one CODEOWNERS rule of slipway: generated repos ship this file
(scripts/codeowners.py) and their tests/test_ownership.py loads it; the template's fleet view and
tests load the same file (src/slipway/codeowners.py). Keep `parse`, `Rule`, `matches`,
`owners_of`, `unmatched` and `CodeownersError` stable.

    python scripts/codeowners.py .github/CODEOWNERS github   # check a file: exit 1 on an error
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

PROVIDERS = ("github", "gitlab")
SECTION = re.compile(r"^(\^?)\[([^\]]+)\](?:\[(\d+)\])?((?:\s+\S+)*)\s*$")


class CodeownersError(ValueError):
    """A CODEOWNERS line the provider would reject or this module does not support."""


@dataclass(frozen=True)
class Rule:
    line: int
    pattern: str
    owners: tuple[str, ...]
    section: str = ""  # GitLab section name; "" before any header (and always on GitHub)


def _check_provider(provider: str) -> None:
    if provider not in PROVIDERS:
        raise ValueError(f"provider must be one of {PROVIDERS}, got {provider!r}")


def _fields(line: str) -> list[str]:
    """Whitespace-separated fields; `\\ ` is a space inside a field; `#` after whitespace ends
    the line."""
    fields, current, i = [], "", 0
    while i < len(line):
        char = line[i]
        if char == "\\" and i + 1 < len(line):
            current += line[i : i + 2]
            i += 2
            continue
        if char.isspace():
            if current:
                fields.append(current)
                current = ""
        elif char == "#" and not current:
            break
        else:
            current += char
        i += 1
    if current:
        fields.append(current)
    return fields


def parse(text: str, provider: str) -> list[Rule]:
    """Every rule of a CODEOWNERS file, in order; GitLab rules without owners get their
    section's default owners. Raises CodeownersError ("line N: ...") on a syntax error."""
    _check_provider(provider)
    rules: list[Rule] = []
    section, defaults = "", ()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("[", "^[")):
            if provider != "gitlab":
                raise CodeownersError(f"line {number}: sections are GitLab syntax: {line!r}")
            header = SECTION.match(line.split(" #", 1)[0])
            if not header:
                raise CodeownersError(f"line {number}: malformed section header {line!r}")
            section, defaults = header.group(2), tuple(header.group(4).split())
            continue
        pattern, *owners = _fields(line)
        if pattern.startswith("!"):
            raise CodeownersError(f"line {number}: negated patterns are not supported: {pattern}")
        if "[" in pattern or "]" in pattern:
            raise CodeownersError(f"line {number}: character ranges are not supported: {pattern}")
        if provider == "github" and "\\" in pattern:
            raise CodeownersError(f"line {number}: GitHub does not support escapes: {pattern}")
        found = tuple(owners) or (defaults if provider == "gitlab" else ())
        rules.append(Rule(number, pattern, found, section))
    return rules


def _glob(body: str) -> str:
    """Regex of a glob over `/`-separated paths: `**/`, `/**`, `*`, `?`, escapes."""
    out, i = "", 0
    while i < len(body):
        if body.startswith("**/", i) and (i == 0 or body[i - 1] == "/"):
            out += "(?:[^/]+/)*"
            i += 3
        elif body.startswith("**", i) and i + 2 == len(body) and (i == 0 or body[i - 1] == "/"):
            out += ".*"
            i += 2
        elif body[i] == "*":
            out += "[^/]*"
            i += 1
        elif body[i] == "?":
            out += "[^/]"
            i += 1
        elif body[i] == "\\" and i + 1 < len(body):
            out += re.escape(body[i + 1])
            i += 2
        else:
            out += re.escape(body[i])
            i += 1
    return out


def pattern_regex(pattern: str, provider: str) -> re.Pattern[str]:
    """The regex a pattern matches repository-relative paths (`src/pkg/x.py`, no leading `/`)
    with, for `provider` (module docstring)."""
    _check_provider(provider)
    if provider == "gitlab":
        normalized = "/**/*" if pattern == "*" else pattern
        if not normalized.startswith("/"):
            normalized = "/**/" + normalized
        if normalized.endswith("/"):
            normalized += "**"
        return re.compile("^" + _glob(normalized.lstrip("/")) + "$")
    directory_only = pattern.endswith("/")
    body = pattern.rstrip("/")
    anchored = body.startswith("/") or "/" in body
    body = body.lstrip("/")
    prefix = "" if anchored or body.startswith("**/") else "(?:[^/]+/)*"
    last = body.rsplit("/", 1)[-1]
    if directory_only:
        below = "/.+"  # a directory: only what is below it
    elif last == "**" or (anchored and ("*" in last or "?" in last)):
        below = ""  # `docs/**` says it all; `docs/*`, `/*.md`: this level only
    else:
        below = "(?:/.+)?"  # the path itself, or everything below it when it is a directory
    return re.compile("^" + prefix + _glob(body) + below + "$")


def matches(pattern: str, path: str, provider: str) -> bool:
    """Whether `pattern` covers the repository-relative file `path`."""
    return pattern_regex(pattern, provider).match(PurePosixPath(path).as_posix()) is not None


def owners_of(rules: list[Rule], path: str, provider: str) -> tuple[str, ...]:
    """The owners of a file: the last matching rule's (GitHub), or the last matching rule's of
    every section, in section order (GitLab)."""
    by_section: dict[str, tuple[str, ...]] = {}
    for rule in rules:
        if matches(rule.pattern, path, provider):
            by_section[rule.section if provider == "gitlab" else ""] = rule.owners
    owners: list[str] = []
    for found in by_section.values():
        owners += [o for o in found if o not in owners]
    return tuple(owners)


def unmatched(rules: list[Rule], paths: list[str], provider: str) -> list[Rule]:
    """The rules that match none of `paths` (a pattern that matches nothing is a typo or a
    file that moved)."""
    return [r for r in rules if not any(matches(r.pattern, p, provider) for p in paths)]


def main(argv: list[str] | None = None) -> int:
    import sys
    from pathlib import Path

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[1] not in PROVIDERS:
        print(f"usage: codeowners.py CODEOWNERS-FILE {'|'.join(PROVIDERS)}", file=sys.stderr)
        return 2
    try:
        rules = parse(Path(args[0]).read_text(encoding="utf-8"), args[1])
    except CodeownersError as error:
        print(f"{args[0]}: {error}", file=sys.stderr)
        return 1
    print(f"{args[0]}: {len(rules)} rules")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Fleet view for the platform team: where each generated repo stands against the template.

    python -m slipway fleet PATH... [--json] [--template SRC]

For each local clone: the template release it is on, how many releases it is behind, whether its
answers still pass the CURRENT template's validators, whether its ownership files (CODEOWNERS,
catalog-info.yaml) are valid, and whether `copier update` to the newest release would leave
conflicts. The update is tried for real, in a throw-away clone of the repo's HEAD, exactly as the
scheduled update workflow runs it (`copier update --defaults --trust --conflict inline`, tasks
skipped); the repo itself is never touched.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from packaging.version import InvalidVersion, Version

from slipway import codeowners, copier_config
from slipway.conflicts import conflicted_files

ANSWERS_FILE = ".copier-answers.yml"
# CODEOWNERS may also name users and e-mail addresses; teams must match the template's pattern.
USER_HANDLE = re.compile(r"^@[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")


@dataclass
class RepoReport:
    path: str
    template_version: str | None = None
    latest_version: str | None = None
    releases_behind: int | None = None
    answers_valid: bool | None = None
    answers_problems: list[str] = field(default_factory=list)
    ownership_valid: bool | None = None
    ownership_problems: list[str] = field(default_factory=list)
    update_conflicts: bool | None = None
    conflicted_files: list[str] = field(default_factory=list)
    error: str | None = None


def parse_version(ref: str | None) -> Version | None:
    """PEP 440 version of a tag or `git describe` ref (v0.1.0, v0.1.0-3-gabc1234)."""
    if not ref:
        return None
    match = re.match(r"^v?(\d+(?:\.\d+)*(?:(?:a|b|rc)\d+)?)(?:-(\d+)-g[0-9a-f]+)?$", ref)
    if not match:
        return None
    try:
        version = Version(match.group(1))
    except InvalidVersion:
        return None
    if match.group(2):  # commits after the tag: later than it, earlier than the next release
        version = Version(f"{version}.post{match.group(2)}.dev0")
    return version


def release_tags(src: str) -> dict[Version, str]:
    """Release tags of the template repository (PEP 440, pre-releases excluded)."""
    try:  # copier's own expansion of gh:/gl: shortcuts (copier is pinned by this project)
        from copier._vcs import get_repo

        url = get_repo(src) or src
    except ImportError:
        url = src
    listed = subprocess.run(
        ["git", "ls-remote", "--tags", "--refs", url], capture_output=True, text=True, check=False
    )
    if listed.returncode:
        raise RuntimeError(f"cannot list the template's tags at {src}: {listed.stderr.strip()}")
    tags = {}
    for line in listed.stdout.splitlines():
        tag = line.split("refs/tags/", 1)[-1]
        version = parse_version(tag)
        if version is not None and not version.is_prerelease and "-" not in tag:
            tags[version] = tag
    return dict(sorted(tags.items()))


def load_answers(repo: Path) -> dict[str, Any]:
    data = yaml.safe_load((repo / ANSWERS_FILE).read_text())
    if not isinstance(data, dict):
        raise TypeError(f"{ANSWERS_FILE} is not a mapping")
    return data


def check_answers(src: str, ref: str, answers: dict[str, Any]) -> list[str]:
    """Re-validate the answers with the template at `ref` (its current validators and choices)."""
    from copier import run_copy

    data = {k: v for k, v in answers.items() if not k.startswith("_")}
    with tempfile.TemporaryDirectory(prefix="slipway-fleet-") as tmp:
        try:
            run_copy(
                src,
                str(Path(tmp) / "project"),
                data=data,
                vcs_ref=ref,
                defaults=True,
                pretend=True,
                skip_tasks=True,
                unsafe=True,
                quiet=True,
            )
        except (ValueError, TypeError) as invalid:
            return [str(invalid).strip()]
    return []


def tracked_files(repo: Path) -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=repo, capture_output=True, text=True, check=False
    )
    return [name for name in listed.stdout.split("\0") if name]


def codeowners_problems(
    repo: Path, text: str, provider: str, owner: str, platform: str
) -> list[str]:
    try:
        rules = codeowners.parse(text, provider)
    except codeowners.CodeownersError as broken:
        return [f"CODEOWNERS: {broken}"]
    team = re.compile(copier_config.team_handle_pattern())
    handles = {h for rule in rules for h in rule.owners}
    problems = [
        f"CODEOWNERS: malformed owner {h}"
        for h in sorted(handles)
        if not (team.match(h) or USER_HANDLE.match(h) or EMAIL.match(h))
    ]
    if not any(r.pattern == "*" and owner in r.owners for r in rules):
        problems.append(f"CODEOWNERS: no catch-all rule `*` owned by {owner}")
    if platform and platform not in handles:
        problems.append(f"CODEOWNERS: the platform team {platform} owns nothing")
    problems += [f"CODEOWNERS:{r.line}: `{r.pattern}` has no owner" for r in rules if not r.owners]
    files = tracked_files(repo)
    if files:
        problems += [
            f"CODEOWNERS:{r.line}: `{r.pattern}` matches no file"
            for r in codeowners.unmatched(rules, files, provider)
        ]
    return problems


def check_ownership(repo: Path, answers: dict[str, Any]) -> list[str]:
    problems = []
    provider = answers.get("ci_provider", "github")
    owner = str(answers.get("owner_team", ""))
    platform = str(answers.get("platform_team") or "")
    path = repo / (".github" if provider == "github" else ".gitlab") / "CODEOWNERS"
    if not path.is_file():
        problems.append(f"{path.relative_to(repo)} is missing")
    else:
        problems += codeowners_problems(repo, path.read_text(), provider, owner, platform)
    catalog = repo / "catalog-info.yaml"
    if not catalog.is_file():
        problems.append("catalog-info.yaml is missing")
    else:
        try:
            entity = yaml.safe_load(catalog.read_text())
        except yaml.YAMLError as broken:
            problems.append(f"catalog-info.yaml is not YAML: {broken}")
        else:
            if not isinstance(entity, dict) or entity.get("kind") != "Component":
                problems.append("catalog-info.yaml: not a Backstage Component")
            else:
                meta = entity.get("metadata") or {}
                annotations = meta.get("annotations") or {}
                if annotations.get("slipway.dev/owner-team") != owner:
                    problems.append(
                        f"catalog-info.yaml: slipway.dev/owner-team is "
                        f"{annotations.get('slipway.dev/owner-team')!r}, answers say {owner!r}"
                    )
                if not (entity.get("spec") or {}).get("owner"):
                    problems.append("catalog-info.yaml: spec.owner is empty")
    return problems


def try_update(repo: Path, src: str, ref: str) -> list[str]:
    """Files a real `copier update` to `ref` leaves conflicted, run on a clone of HEAD."""
    with tempfile.TemporaryDirectory(prefix="slipway-fleet-") as tmp:
        clone = Path(tmp) / repo.name
        subprocess.run(
            ["git", "clone", "--quiet", "--no-hardlinks", str(repo), str(clone)],
            check=True,
            capture_output=True,
        )
        command = [sys.executable, "-m", "copier", "update", "--defaults", "--trust"]
        command += ["--conflict", "inline", "--skip-tasks", "--vcs-ref", ref]
        # The answers say where the template is; the platform team may point elsewhere.
        answers = load_answers(clone)
        if answers.get("_src_path") != src:
            answers["_src_path"] = src
            (clone / ANSWERS_FILE).write_text(yaml.safe_dump(answers, sort_keys=False))
            git_id = ["-c", "user.name=fleet", "-c", "user.email=fleet@localhost"]
            subprocess.run(
                ["git", *git_id, "commit", "-qam", "fleet: template source"],
                cwd=clone,
                check=True,
                capture_output=True,
            )
        result = subprocess.run(command, cwd=clone, capture_output=True, text=True, check=False)
        if result.returncode:
            raise RuntimeError(f"copier update failed: {result.stderr.strip()[-2000:]}")
        return conflicted_files(clone)


def inspect(repo: Path, template: str | None, try_updates: bool = True) -> RepoReport:
    report = RepoReport(path=str(repo))
    try:
        answers = load_answers(repo)
        src = template or str(answers.get("_src_path") or "")
        if not src:
            raise ValueError(f"{ANSWERS_FILE} has no _src_path; pass --template")
        report.template_version = str(answers.get("_commit") or "") or None
        tags = release_tags(src)
        if not tags:
            raise ValueError(f"the template at {src} has no release tags")
        latest_tag = tags[max(tags)]
        report.latest_version = latest_tag
        current = parse_version(report.template_version)
        report.releases_behind = (
            sum(1 for version in tags if version > current) if current is not None else len(tags)
        )
        report.answers_problems = check_answers(src, latest_tag, answers)
        report.answers_valid = not report.answers_problems
        report.ownership_problems = check_ownership(repo, answers)
        report.ownership_valid = not report.ownership_problems
        if report.releases_behind == 0:
            report.update_conflicts = False
        elif try_updates and report.answers_valid:
            report.conflicted_files = try_update(repo, src, latest_tag)
            report.update_conflicts = bool(report.conflicted_files)
    except Exception as failure:  # noqa: BLE001  (one broken repo must not hide the fleet)
        report.error = f"{type(failure).__name__}: {failure}"
    return report


def _cell(value: object) -> str:
    if value is None:
        return "?"
    if isinstance(value, bool):
        return "ok" if value else "INVALID"
    return str(value)


def table(reports: list[RepoReport]) -> str:
    header = ["repo", "version", "latest", "behind", "answers", "ownership", "update"]
    rows = []
    for r in reports:
        update = (
            "?"
            if r.update_conflicts is None
            else f"CONFLICTS ({len(r.conflicted_files)})"
            if r.update_conflicts
            else "clean"
            if r.releases_behind
            else "up to date"
        )
        rows.append(
            [
                r.path,
                _cell(r.template_version),
                _cell(r.latest_version),
                _cell(r.releases_behind),
                _cell(r.answers_valid),
                _cell(r.ownership_valid),
                update,
            ]
        )
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows, strict=False)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    for r in reports:
        details = [*r.answers_problems, *r.ownership_problems]
        details += [f"conflict: {f}" for f in r.conflicted_files]
        details += [f"error: {r.error}"] if r.error else []
        lines += [f"  {r.path}: {d}" for d in details]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m slipway fleet", description=__doc__.split("\n")[0]
    )
    parser.add_argument("repos", nargs="+", type=Path, help="local clones of generated repos")
    parser.add_argument("--json", action="store_true", help="JSON instead of a table")
    parser.add_argument("--template", help="template source (default: each repo's _src_path)")
    parser.add_argument("--no-update-check", action="store_true", help="skip the trial update")
    args = parser.parse_args(argv)
    if shutil.which("git") is None:
        parser.error("git is required")
    reports = [inspect(r.resolve(), args.template, not args.no_update_check) for r in args.repos]
    if args.json:
        print(json.dumps([asdict(r) for r in reports], indent=2))
    else:
        print(table(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())

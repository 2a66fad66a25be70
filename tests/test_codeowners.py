"""slipway.codeowners: the CODEOWNERS rules of GitHub and GitLab, against the examples of their
documentation (docs.github.com "About code owners", docs.gitlab.com "Code Owners syntax")."""

from __future__ import annotations

import pytest
from slipway.codeowners import CodeownersError, matches, owners_of, parse, unmatched

FILES = [
    "Dockerfile",
    "README.md",
    ".github/workflows/ci.yml",
    "deploy/k8s/base/hpa.yaml",
    "src/pkg/model.py",
    "docs/index.md",
    "docs/build-app/troubleshooting.md",
    "apps/web/main.js",
    "lib/apps/util.js",
    "build/logs/today.log",
    "scripts/logs/old.log",
    "path with spaces/file.txt",
]

CASES = [
    # provider, pattern, the FILES it covers
    ("github", "*", FILES),
    ("github", "*.js", ["apps/web/main.js", "lib/apps/util.js"]),
    ("github", "/deploy/", ["deploy/k8s/base/hpa.yaml"]),
    ("github", "/Dockerfile", ["Dockerfile"]),
    ("github", "/docs/", ["docs/index.md", "docs/build-app/troubleshooting.md"]),
    ("github", "docs/*", ["docs/index.md"]),  # "but not further nested files"
    ("github", "apps/", ["apps/web/main.js", "lib/apps/util.js"]),  # "anywhere"
    ("github", "/apps/", ["apps/web/main.js"]),
    ("github", "**/logs", ["build/logs/today.log", "scripts/logs/old.log"]),
    ("github", "/build/logs/", ["build/logs/today.log"]),
    ("github", "/*", ["Dockerfile", "README.md"]),
    ("github", "d?cs/*.md", ["docs/index.md"]),
    ("github", "src/**", ["src/pkg/model.py"]),
    ("github", "/docs/**/*.md", ["docs/index.md", "docs/build-app/troubleshooting.md"]),
    ("gitlab", "*", FILES),
    ("gitlab", "*.js", ["apps/web/main.js", "lib/apps/util.js"]),
    ("gitlab", "/docs/", ["docs/index.md", "docs/build-app/troubleshooting.md"]),
    ("gitlab", "/docs/*", ["docs/index.md"]),
    ("gitlab", "/docs/**/*.md", ["docs/index.md", "docs/build-app/troubleshooting.md"]),
    ("gitlab", "lib/", ["lib/apps/util.js"]),
    ("gitlab", "apps/", ["apps/web/main.js", "lib/apps/util.js"]),
    ("gitlab", "/Dockerfile", ["Dockerfile"]),
    ("gitlab", "README.md", ["README.md"]),
    ("gitlab", "web/main.js", ["apps/web/main.js"]),  # relative: at any depth, unlike GitHub
    ("github", "web/main.js", []),
    ("gitlab", "path\\ with\\ spaces/", ["path with spaces/file.txt"]),
]


@pytest.mark.parametrize(("provider", "pattern", "covered"), CASES)
def test_pattern_semantics(provider: str, pattern: str, covered: list[str]) -> None:
    assert [f for f in FILES if matches(pattern, f, provider)] == covered


def test_github_last_match_wins_and_a_rule_may_unown() -> None:
    rules = parse("* @org/all\n/apps/ @org/apps # inline comment\n/apps/web/\n", "github")
    assert owners_of(rules, "README.md", "github") == ("@org/all",)
    assert owners_of(rules, "apps/api/x.py", "github") == ("@org/apps",)
    assert owners_of(rules, "apps/web/main.js", "github") == ()


def test_gitlab_sections_default_owners_and_every_section_applies() -> None:
    text = "[Service] @g/team\n*\n\n^[Platform][2] @g/platform\n/deploy/\n/Dockerfile @g/sre\n"
    rules = parse(text, "gitlab")
    assert [(r.pattern, r.owners, r.section) for r in rules] == [
        ("*", ("@g/team",), "Service"),
        ("/deploy/", ("@g/platform",), "Platform"),
        ("/Dockerfile", ("@g/sre",), "Platform"),
    ]
    assert owners_of(rules, "deploy/a.yaml", "gitlab") == ("@g/team", "@g/platform")
    assert owners_of(rules, "Dockerfile", "gitlab") == ("@g/team", "@g/sre")
    assert owners_of(rules, "src/x.py", "gitlab") == ("@g/team",)


@pytest.mark.parametrize(
    ("provider", "text", "message"),
    [
        ("github", "[Platform] @a/b\n/deploy/\n", "sections are GitLab syntax"),
        ("github", "!/deploy/ @a/b\n", "negated"),
        ("gitlab", "/src/[ab]/ @a/b\n", "character ranges"),
        ("github", "path\\ with\\ spaces/ @a/b\n", "escapes"),
        ("gitlab", "[Platform @a/b\n", "malformed section"),
    ],
)
def test_syntax_errors_name_the_line(provider: str, text: str, message: str) -> None:
    with pytest.raises(CodeownersError, match=message):
        parse(text, provider)


def test_rules_without_owners_and_patterns_matching_nothing_are_found() -> None:
    rules = parse("* @a/b\n/deploy/\n/nowhere/ @a/b\n", "github")
    assert [r.line for r in rules if not r.owners] == [2]
    assert [r.pattern for r in unmatched(rules, FILES, "github")] == ["/nowhere/"]

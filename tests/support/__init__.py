"""Helpers of the template's test suite, imported as `tests.support.<module>` (pytest puts the
repository root on sys.path: `pythonpath = ["."]` in pyproject.toml).

    render      ROOT, the answer sets of tests/answers/, `copier copy`, the session's render cache
    commands    running commands with a clean environment; tool venvs for external checkers
    tools       the delivery checkers (actionlint, zizmor, kubectl, ...) in their own venv
    generated   a rendered project installed, trained and promoted (slow tests)
    servers     free ports, waiting for HTTP, a real MLflow tracking server
    update      releases in a temporary clone of this repo, `copier update` as a team runs it
    container   image builders: a Docker engine or buildah/podman
    image_scan  what a saved image contains, layer by layer
"""

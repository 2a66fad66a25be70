"""Operations artefacts generated from slo.yaml: alert rules (+ promtool tests), the Grafana
dashboard and docs/slo.md. `python -m <package>.ops render|check` (or `make ops`).

This package imports only the standard library, PyYAML and pydantic (through `slo.py`), all of
which copier itself depends on: copier runs it at copy and update time with its own Python,
before the project's dependencies are installed.
"""

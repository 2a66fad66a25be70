"""Operations artefacts generated from slo.yaml: alert rules (+ promtool tests), the Grafana
dashboard and docs/slo.md. `python -m <package>.ops render|check` (or `make ops`).

This package imports only the standard library and PyYAML: copier runs it at copy and update
time with its own Python, before the project's dependencies are installed.
"""

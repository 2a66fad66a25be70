"""Developer and operator tools run from the CLI: load test, benchmark, model card, drift report.

None of them is on the request path.
"""

"""Demo ML Service.

Predicts an outcome for a business decision, served behind an API with an evaluation gate.
"""

"""Governed data: the data contract and the loaders of the shipped sample and golden set."""

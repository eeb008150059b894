"""Computed views of the configuration: store → customer → profile contexts (this module),
their targets (``targets``), files (``files``) and inherited settings (``effective``).

Inheritance runs admin ``defaults`` → customer → profile → target: the nearest level
that sets a value wins; ``video`` and ``audio`` are merged key by key.

The contexts themselves are in ``customers``; nothing is imported here, so that a
worker using ``paths`` alone loads no configuration model (nor pydantic).
"""

"""Benchmarks of the transcoder admin run as a real process (``python -m benchmarks.run``)."""

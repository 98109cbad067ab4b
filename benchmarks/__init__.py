"""The flask-serverside performance harness.

Run it from the repository root with ``python -m benchmarks run --quick`` (or ``benchmarks/run``,
which also installs what it needs); see ``benchmarks/README.md``. It is not part of the test
suite: ``tests/test_benchmarks_smoke.py`` only runs a tiny pass so that it does not rot.
"""

"""pytest collects this package's modules for doctests: without avalanche-lib (an optional
extra) they cannot be imported, so they are left out rather than failing collection."""

import importlib.util

collect_ignore_glob = ["*.py"] if importlib.util.find_spec("avalanche") is None else []

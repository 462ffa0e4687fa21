"""Train, evaluate and export the beets-clap model (python -m trainer)."""

import os

# onnxruntime's usage telemetry off before anything imports it, as in the
# plugin (beetsplug/clap/__init__.py): exports and evaluations run offline.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

"""Install the model files listed in models/manifest.json from the pip packages that ship them.

Run with the project's venv: `.venv/bin/python models/install.py`. Exits non-zero, naming the
file, when a package is missing or a checksum does not match.
"""

import sys
from pathlib import Path

from edge.models import install_models
from edge.protocol.errors import GateboxError

if __name__ == "__main__":
    try:
        for line in install_models(Path(__file__).resolve().parent):
            print(f"models: {line}")
    except GateboxError as e:
        print(f"models: error: {e}", file=sys.stderr)
        sys.exit(1)

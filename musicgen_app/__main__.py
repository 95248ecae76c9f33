"""``python -m musicgen_app``: the `musicgen` command (also under ``torchrun -m musicgen_app``)."""

import sys

from musicgen_app.cli.main import main

if __name__ == "__main__":
    sys.exit(main())

"""``python -m musicgen_app``: the `musicgen` command (also under ``torchrun -m musicgen_app``)."""

from musicgen_app.cli.main import entry

if __name__ == "__main__":
    entry()

"""``python -m qilu_hub``: the same as the ``qilu-hub`` command."""

import sys

from .cli import main

if __name__ == "__main__":  # importing this module (the import-isolation test does) must not run the CLI
    sys.exit(main())

"""``python -m leadflow``: the same as the ``leadflow`` command."""

import sys

from leadflow.cli.main import main

sys.exit(main())

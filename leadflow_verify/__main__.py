"""``python -m leadflow_verify PROOF --public-key KEY.pub``: check a lead's proof offline."""

import sys

from leadflow_verify import main

sys.exit(main())

"""``python -m donkeyrl``: same as the ``donkeyrl`` console script (used by research trials,
so a study runs the trainer of the very interpreter / virtualenv that runs the controller)."""

import sys

from donkeyrl.cli import main

sys.exit(main())

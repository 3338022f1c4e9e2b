"""``python -m hami_hal.cli``: the same as the ``hami`` console script."""

import sys

from .main import main

sys.exit(main())

"""``python -m hami_conformance run|validate|merge|diff|behaviours``."""

import sys

from .cli import main

sys.exit(main())

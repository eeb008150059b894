"""``python -m transcoder_admin``."""

import sys

from .cli import main

sys.exit(main())

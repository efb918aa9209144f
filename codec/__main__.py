"""`python -m codec` is the `vqcodec` command."""

import sys

from codec.cli import main

sys.exit(main())

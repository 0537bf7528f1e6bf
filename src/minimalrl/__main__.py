"""`python -m minimalrl` (and `torchrun -m minimalrl`) runs the command line."""

import sys

from minimalrl.cli import main

sys.exit(main())

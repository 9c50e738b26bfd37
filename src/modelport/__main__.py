"""``python -m modelport`` is the ``modelport`` command."""

import sys

from modelport.cli.main import main

sys.exit(main())

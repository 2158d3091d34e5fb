"""``python -m clickstream_client`` runs the command line, like the ``clickstream`` script."""

import sys

from .cli import main

sys.exit(main())

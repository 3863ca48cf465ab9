"""``python -m curl_rl`` runs the ``curl-rl`` command line."""

import sys

from curl_rl.experiment.cli import main

if __name__ == "__main__":
    sys.exit(main())

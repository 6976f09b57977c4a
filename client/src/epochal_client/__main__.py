import sys

from epochal_client.cli import main

sys.exit(main())

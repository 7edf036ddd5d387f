import sys

from rollgate_cli.main import main

sys.exit(main())

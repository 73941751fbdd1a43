import sys

from flashq.cli import main

sys.exit(main())

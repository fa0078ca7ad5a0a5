import sys

from wattui.cli import main

sys.exit(main())

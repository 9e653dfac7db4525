"""`python -m util.gcs ...`: see util/gcs/__init__.py."""
import sys

from util import errors
from util.gcs import cli

sys.exit(errors.run_main(cli.main))

"""Entry-point wrapper: known input errors become one clear line and a non-zero exit."""
import logging
import sys

from common.checkpoint import CheckpointError
from common.config import ConfigError
from common.data.errors import DatasetError
from common.infer310 import Infer310Error
from common.tasks.base import OutputWriteError, PredictionError

EXPECTED_ERRORS = (ConfigError, DatasetError, CheckpointError, FileNotFoundError, OutputWriteError,
                   PredictionError, Infer310Error)


def run_main(main, argv=None):
    """Call ``main(argv)``; print ``error: ...`` and exit 2 on bad config, data or checkpoints."""
    try:
        return main(argv)
    except EXPECTED_ERRORS as exc:
        logging.getLogger("zoo").debug("failed", exc_info=True)
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)

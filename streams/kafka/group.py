"""Leaving a consumer group, or deliberately not (see `Settings.tideflow_leave_group_on_stop`)."""

from __future__ import annotations

import logging
import os
import sys

from infra.settings import Settings


def exit_without_leaving(settings: Settings) -> None:
    """End the process now, unless the group should be left: a consumer's destructor would
    send LeaveGroup (see `Settings.tideflow_leave_group_on_stop`). Output is flushed first;
    everything that matters was committed already."""
    if settings.tideflow_leave_group_on_stop:
        return
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)

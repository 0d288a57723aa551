"""Optimizers: PAL and the baselines, all with ``init`` / ``step`` (see :mod:`.base`)."""

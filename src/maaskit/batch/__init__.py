"""Batch predictions: an S3 object of rows in, an object of predictions and a report out.

``formats`` reads and writes JSON Lines, CSV and .npy in chunks; ``job`` is the streaming
loop with its row accounting; ``report`` is what is left beside every output; ``service``
joins them to S3 and the model registry for one key; ``summary`` adds up a whole prefix.
"""

from __future__ import annotations

from maaskit.batch.keys import BatchKey, parse_batch_key
from maaskit.batch.service import BatchOutcome, BatchService

__all__ = ["BatchKey", "BatchOutcome", "BatchService", "parse_batch_key"]

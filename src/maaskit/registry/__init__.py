"""The model registry: what is stored in S3 and under which names.

``store`` is the S3 object store (reads verified, writes atomic); ``catalog`` the names,
versions, manifests and aliases; ``safekeys`` what may be a key; ``packages`` reads a model
folder or archive into files to publish; ``uploads`` registers what lands under ``uploads/``.
It knows nothing of serving: a publish check that needs the tokenizer imports it lazily.
"""

from __future__ import annotations

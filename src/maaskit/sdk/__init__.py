"""The Python SDK: the same operations as the CLI, from a program.

``client`` is the ``Client`` and ``Model`` a user imports: ``model`` holds ``Model``, and
``Client`` joins one ``connection`` with its groups of operations (``catalog``,
``predictions``, ``datasets``, ``training_runs``, ``batch_jobs``); ``targets`` resolves
where the stack is (AWS or the local stack); ``transport`` signs and sends HTTP to the API.
Never imported by a Lambda function: it is not in the core layer.
"""

from __future__ import annotations

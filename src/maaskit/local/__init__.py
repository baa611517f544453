"""The local stack: the same template, handlers and state machines on one machine.

moto is the embedded AWS; :mod:`maaskit.local.lambda_router` runs every Lambda invocation
in process; :mod:`maaskit.local.deploy` creates the template's resources in moto;
:mod:`maaskit.local.api_server` is the API Gateway front. Nothing in ``functions/`` knows
whether it runs here or on AWS.

Submodules import moto lazily where they can, so ``import maaskit.local`` stays cheap.
"""

from __future__ import annotations

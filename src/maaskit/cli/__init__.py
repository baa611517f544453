"""The ``maaskit`` command.

``main`` parses the command line and dispatches; ``console`` formats what it prints;
``plot`` draws training curves; ``foreground`` runs the local stack in this process until
Ctrl-C; ``local`` is ``maaskit local up`` and ``demo`` is ``maaskit demo``.
Never imported by a Lambda function: it is not in the core layer.
"""

from __future__ import annotations

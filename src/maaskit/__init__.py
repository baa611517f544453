"""maaskit: Model-as-a-Service in your own AWS account.

The core library. It knows nothing about Lambda events: the adapters in
``functions/`` parse events and call into these modules.
"""

from __future__ import annotations

__version__ = "0.1.0"

"""Training: datasets, models, optimizers, checkpoints, the step loop and ONNX export.

The core is numpy only at run time, so every Lambda step can import it from the runtime
layer; only ``maaskit.training.export`` needs the ``onnx`` package, and imports it lazily.
"""

from __future__ import annotations

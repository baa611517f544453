"""What is inside a model package, wherever it is stored or called from.

``signature`` reads an ONNX graph's inputs and outputs; ``graph`` inspects initializers
without the ``onnx`` package; ``tensors`` turns JSON values into arrays of a signature's
types and back; ``text`` is the tokenizer and pooling around a text encoder.
"""

from __future__ import annotations

"""Online inference: a request in, a prediction out.

``runtime`` loads a version from the registry into an onnxruntime session (cached, verified);
``service`` runs the simple ``{"input": ...}`` shape and ``protocol`` the Open Inference
Protocol V2 codec on it; ``openapi`` is the table of operations the API handler routes by
and the template and the served document come from; ``http_body`` decodes request bodies.
"""

from __future__ import annotations

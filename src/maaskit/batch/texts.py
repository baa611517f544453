"""Text models in batch files: each line (or the CSV column ``text``) is one text.

The job sees a text model through :class:`TextPredictor`: one ``BYTES`` input named as the
package declares (``text``) and the answers as outputs (``embedding``, or ``label`` and
``probabilities``), so the JSON Lines and CSV readers and writers work unchanged. A text
the model cannot take (empty, say) raises ``ModelRunError``, which makes the job run that
group row by row: the bad line fails alone, with its number in the report. Long texts are
truncated to the package's max length, as the API does by default.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from maaskit.errors import InvalidRequest
from maaskit.onnxmodel.signature import Signature
from maaskit.onnxmodel.text import TextModel, served_signature
from maaskit.serving.runtime import LoadedModel, ModelRunError


class TextPredictor:
    """A loaded text model as the batch job's ``Predictor``: texts in, answers out."""

    def __init__(self, model: LoadedModel, text: TextModel) -> None:
        self.model = model
        self.text = text
        self._signature = served_signature(text.processing, model.signature)

    @property
    def signature(self) -> Signature:
        return self._signature

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = inputs[self.text.input_name].ravel().tolist()
        try:
            texts = self.text.check(values)
        except InvalidRequest as err:
            raise ModelRunError(err.message) from None
        answer = self.text.predict(texts, self.model.run)
        return {name: np.asarray(value) for name, value in answer.outputs.items()}


def predictor_for(model: LoadedModel) -> LoadedModel | TextPredictor:
    return model if model.text is None else TextPredictor(model, model.text)

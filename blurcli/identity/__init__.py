"""Who is who: face encodings, the gallery of enrolled people, matching and enrolment.

Nothing here loads a model at import; dlib is loaded by the first ``FaceEncoder.encode`` call.
"""
from __future__ import annotations

from .encoder import FaceEncoder
from .gallery import Gallery, Person
from .matcher import Matcher

__all__ = ["FaceEncoder", "Gallery", "Matcher", "Person"]

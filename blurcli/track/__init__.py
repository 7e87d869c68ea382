"""Tracking: associate faces over frames, and pick the frames to detect on.

Who each track is lives in :mod:`blurcli.identity.policy`.
"""
from .cadence import DetectionCadence
from .cuts import CutDetector
from .tracker import FaceTracker

__all__ = ["CutDetector", "DetectionCadence", "FaceTracker"]

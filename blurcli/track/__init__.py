"""Tracking: associate faces over frames, decide who each track is, and pick the frames to detect on."""
from .cadence import DetectionCadence
from .cuts import CutDetector
from .tracker import FaceTracker
from .votes import IdentityVotes, Sample

__all__ = ["CutDetector", "DetectionCadence", "FaceTracker", "IdentityVotes", "Sample"]

"""Object detection in scene photos ("shop the look"): each detected object's box can be searched on its own."""

from viscover.detect.detector import Detection, Detector, load_detector
from viscover.detect.nms import iou_matrix, nms

__all__ = ["Detection", "Detector", "load_detector", "nms", "iou_matrix"]

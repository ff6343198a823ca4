"""Reading and decoding images robustly: local files and URLs, every Pillow mode, EXIF, animations, crops."""

from viscover.imaging.decode import ImageInfo, decode_image, probe_image
from viscover.imaging.download import download_async
from viscover.imaging.geometry import CropBox, parse_crop
from viscover.imaging.source import is_url, read_image_bytes

__all__ = ["ImageInfo", "decode_image", "probe_image", "CropBox", "parse_crop", "is_url", "read_image_bytes",
           "download_async"]

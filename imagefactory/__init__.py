"""imagefactory: layered image specs to tested, versioned, promoted container images."""

__version__ = "0.1.0"

"""imagefactory: layered image specs to tested, versioned, promoted container images."""

#: The one place the version is written: pyproject.toml reads it (``[tool.setuptools.dynamic]``).
__version__ = "0.1.0"

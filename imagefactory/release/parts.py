"""The parts of a version ``imagefactory version bump`` raises, apart from
:mod:`imagefactory.release.versions` so the command line declares its argument without importing
the catalog's models."""

from enum import StrEnum


class Part(StrEnum):
    MAJOR = "major"
    MINOR = "minor"
    PATCH = "patch"

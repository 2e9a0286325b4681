"""Tests of the app's container image: built by scripts/build-image.sh, run on the host engine."""

from __future__ import annotations

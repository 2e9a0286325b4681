"""Batch backends: the interface the app talks to and one implementation per service.

`backends.base` holds the interface and the models; `backends.errors` the error tree. Each backend
lives in its own subpackage and is imported only when chosen (see `backends.load`).
"""

from __future__ import annotations

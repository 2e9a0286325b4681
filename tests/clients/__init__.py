"""Batch clients other than the app's own, unchanged, against the local endpoint."""

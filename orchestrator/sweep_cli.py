"""Placeholder replaced by the sweep command."""

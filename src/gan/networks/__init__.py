"""Upstream lightweight-gan's networks, built on any device, and its fixed training schedule."""

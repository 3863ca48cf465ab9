"""Rollout and replay buffers that keep what the auxiliary losses need (indices, future windows)."""

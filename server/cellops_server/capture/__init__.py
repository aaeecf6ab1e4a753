"""Capture of executions: the kernel-websocket tap and the per-kernel tracker."""

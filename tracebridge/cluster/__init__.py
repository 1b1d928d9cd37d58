"""Cluster access: Ray Jobs client (submit, status, logs, stop, list, pull), the embedded local\nhead on loopback with token auth, and ephemeral GPU windows (up, submit, wait, pull, down).\n"""

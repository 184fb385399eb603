"""Remotes attached at ``drive/`` (rclone mount or sync), health, flush.

Not built yet: the drive is the workspace's plain local ``drive/`` folder.
"""

"""Which PyTorch builds exist and which run where.

``releases``: the release table, offline; ``refresh``: learning newer releases
from an index; ``wheel_tags``: what build tags and platform names say;
``wheel_files``: what a wheel's file name says;
``compat``: the rule of whether a build runs on a machine, with NVIDIA's tables
from :mod:`drivelab.runtime._cuda`.
"""

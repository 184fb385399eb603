"""The types the runtime's rooms share: plain, JSON-ready dataclasses.

``machine``: what a machine is (:class:`MachineInfo` and its parts), filled in
by the probes of :mod:`drivelab.runtime._machine`. ``pytorch``: PyTorch's
releases and builds and a plan for them. ``results``: what installing,
verifying and refreshing return; ``setup``: what ``setup_torch`` returns. Each module is imported on
its own (this package imports none), so reading a machine never loads the rest.
"""

"""Facts from the machine, never importing torch: what it is (``detect``), what it uses now (``usage``).

Every look goes through one :class:`~drivelab.runtime._machine.probe.Probe`.
``system`` reads the OS, CPU, RAM, disk, WSL, Apple MPS and the installed
PyTorch; ``nvidia``, ``amd`` and ``intel`` the accelerators; ``detect`` puts
them together (and ``load_machine`` takes a recorded one instead, which
``serial`` reads back); ``info`` is the runtime panel.
"""

"""What this machine is and which PyTorch build fits it (plan, install, verify).

Not built yet: ``drivelab.train.pick_device`` covers choosing a device today.
"""

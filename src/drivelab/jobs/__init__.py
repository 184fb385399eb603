"""Running code from the drive as a job.

For now: :func:`run_demo`, the main job end to end (workspace, MNIST, the
training script ``drive/colab/main.py``).
"""

from drivelab.jobs._demo import DemoResult, DemoStage, run_demo

__all__ = ["run_demo", "DemoResult", "DemoStage"]

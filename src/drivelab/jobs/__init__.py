"""Running code from the drive as a job.

::

    from drivelab import jobs
    status = jobs.run_job(ws, jobs.JobSpec(Path("drive/colab/main.py"), ["--epochs", "3"], run="exp1"))
    status = jobs.start_detached(ws, spec)      # in the background, surviving the terminal
    jobs.list_jobs(ws); jobs.read_log(ws, "exp1"); jobs.stop_job(ws, "exp1")
    part = jobs.read_log_part(ws, "exp1", offset)  # what was appended since ``offset``; read on from part.offset

A job gets the run folder ``drive/runs/<run>/`` (its ``log`` and
``status.json`` live there) and the environment variables
``DRIVELAB_RUN_DIR``, ``DRIVELAB_RUN_NAME`` and ``DRIVELAB_RESTART_COUNT``;
it is restarted after a crash or a kill (and resumes from its checkpoints;
a usage error, exit code 2, is not restarted),
runs under torchrun when several processes are asked for, and runs headless
under papermill when it is a notebook. The drive is attached before it starts
and flushed when it ends. See :mod:`drivelab.jobs._supervisor`.

A job can be handed to Slurm instead (:func:`submit_to_slurm`, ``drivelab
run --on slurm``): a batch script kept in the run folder runs ``drivelab run``
on every node, requeues itself before its time limit and resumes from the
last checkpoint; ``list_jobs``, ``read_log``, ``follow_log`` and ``stop_job``
cover it, with Slurm's state. See :mod:`drivelab.jobs._slurm_run`.

Also :func:`run_demo`, the main job end to end (workspace, MNIST, the
training script ``drive/colab/main.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from drivelab._lazy import lazy_exports

_EXPORTS = {
    "_control": [
        "LogPart", "follow_log", "job_status", "list_jobs", "read_log", "read_log_part", "start_detached", "stop_job",
        "JobListing", "jobs_listing", "LogAnswer", "log_answer",
    ],
    "_demo": ["DemoResult", "DemoStage", "run_demo"],
    "_spec": ["JobSpec", "check_run_name", "default_run_name", "merge_environment"],
    "_status": ["Attempt", "JobStatus", "OutputTail", "is_alive", "read_status"],
    "_supervisor": ["JobEvent", "describe_exit", "run_job"],
    "_slurm": ["SlurmJobState", "SlurmOptions", "parse_time_limit"],
    "_slurm_run": ["batch_script", "follow_slurm_run", "slurm_failure", "submit_to_slurm"],
}
__getattr__, __dir__, _names = lazy_exports(__name__, _EXPORTS)
__all__ = list(_names)

if TYPE_CHECKING:
    from drivelab.jobs._control import (
        JobListing, LogAnswer, LogPart, follow_log, job_status, jobs_listing, list_jobs, log_answer, read_log, read_log_part, start_detached, stop_job,
    )
    from drivelab.jobs._demo import DemoResult, DemoStage, run_demo
    from drivelab.jobs._spec import JobSpec, check_run_name, default_run_name, merge_environment
    from drivelab.jobs._status import Attempt, JobStatus, OutputTail, is_alive, read_status
    from drivelab.jobs._slurm import SlurmJobState, SlurmOptions, parse_time_limit
    from drivelab.jobs._slurm_run import batch_script, follow_slurm_run, slurm_failure, submit_to_slurm
    from drivelab.jobs._supervisor import JobEvent, describe_exit, run_job

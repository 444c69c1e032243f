"""Ray actors and tasks: thin wrappers that place reasoning/'s work on the cluster."""

import os

from reasoning.service import jobs

NAMESPACE = "reasoning"
"""Every named actor of the service lives here, so drivers and the app find each other."""
JOB_MANAGER_NAME = "job_manager"


def first_line(err: BaseException) -> str:
    """What a Ray error says happened: its death notices run to many lines."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:300]


def last_line(err: BaseException) -> str:
    """The exception a Ray error ends its traceback with (e.g. a constructor's error)."""
    return jobs.last_line(str(err)) or type(err).__name__


FIT_NICENESS = 15
"""The niceness of processes doing fit work (runners, trials, synth-gen, teachers): what
Ray gives every worker by default. The service's Ray starts workers at 0 instead
(`serve_app.runtime.RAY_SYSTEM_CONFIG`), so the ingress, predictor and JobManager stay
there: when fits fill the CPUs a request is served first (a thread at 15 gets about a
28th of the CPU one at 0 gets), and when nobody is calling fits still have every core."""


def lower_priority() -> None:
    """Put every thread of this process at FIT_NICENESS (Linux sets it per thread; threads
    made later inherit it). Idempotent; a no-op where the OS does not allow it."""
    try:
        threads = [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        threads = [0]
    for tid in threads:
        try:
            current = os.getpriority(os.PRIO_PROCESS, tid)
            if current < FIT_NICENESS:
                os.setpriority(os.PRIO_PROCESS, tid, FIT_NICENESS)
        except OSError:
            pass  # a thread that just ended, or a platform without per-thread niceness

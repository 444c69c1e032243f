"""Ray actors and tasks: thin wrappers that place reasoning/'s work on the cluster."""

NAMESPACE = "reasoning"
"""Every named actor of the service lives here, so drivers and the app find each other."""
JOB_MANAGER_NAME = "job_manager"


def first_line(err: BaseException) -> str:
    """What a Ray error says happened: its death notices run to many lines."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:300]


def last_line(err: BaseException) -> str:
    """The exception a Ray error ends its traceback with (e.g. a constructor's error)."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__

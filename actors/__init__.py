"""Ray actors and tasks: thin wrappers that place reasoning/'s work on the cluster."""

NAMESPACE = "reasoning"
"""Every named actor of the service lives here, so drivers and the app find each other."""
JOB_MANAGER_NAME = "job_manager"

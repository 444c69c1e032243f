"""Request and response models of API v1, shared by REST clients and Python handle callers.

One module per noun; every name is importable from here (`from reasoning.schemas import X`):

- `filters`: row filters (Comparison, And, Or, Not) and their bounds
- `fits`: the fit requests (ReasoningFitRequest, ModelFitRequest, their base FitRequest),
  the task they name (TaskSpec), their rules, and FitAccepted
- `jobs`: a job's status, stage and progress
- `datasets`: columns and types, how a file was read, upload warnings, the retype patch
- `cards`: model cards (trials, rows, metrics, explanation) and their list
- `scoring`: predict and MLflow invocations requests, predictions with reasons, grads
- `problems`: RFC 9457 problem documents, and health
- `auth`: tenants, and the token request
- `rules`: how a cross-field rule is written once for the OpenAPI document and the check
"""

from reasoning.schemas.auth import DEFAULT_TENANT, TENANT_PATTERN, TokenPair, TokenRequest
from reasoning.schemas.cards import (
    Explanation,
    Metrics,
    ModelCard,
    ModelList,
    PairTerm,
    RowCounts,
    Trial,
)
from reasoning.schemas.datasets import (
    Column,
    DatasetInfo,
    DatasetList,
    DatasetPatch,
    DataWarning,
    Dialect,
    Dtype,
)
from reasoning.schemas.filters import (
    LIST_OPS,
    MAX_FILTER_LEAVES,
    MAX_LIST_VALUES,
    NULL_OPS,
    And,
    Comparison,
    Filter,
    Not,
    Op,
    Or,
    Scalar,
    filter_leaves,
)
from reasoning.schemas.fits import (
    Classification,
    FitAccepted,
    FitRequest,
    ModelFitRequest,
    ReasoningFitRequest,
    Regression,
    TaskSpec,
)
from reasoning.schemas.jobs import (
    OPEN_STATUSES,
    TERMINAL_STATUSES,
    Job,
    JobKind,
    JobList,
    JobStage,
    JobStatus,
    Progress,
)
from reasoning.schemas.problems import Health, ProblemDetail
from reasoning.schemas.scoring import (
    MAX_PREDICT_ROWS,
    DataframeSplit,
    GradsResponse,
    InvocationsRequest,
    InvocationsResponse,
    PredictRequest,
    PredictResponse,
    Reason,
    Records,
    RowExplanation,
    ScoringWarning,
)

__all__ = [
    "DEFAULT_TENANT",
    "LIST_OPS",
    "MAX_FILTER_LEAVES",
    "MAX_LIST_VALUES",
    "MAX_PREDICT_ROWS",
    "NULL_OPS",
    "TENANT_PATTERN",
    "OPEN_STATUSES",
    "TERMINAL_STATUSES",
    "And",
    "Classification",
    "Column",
    "Comparison",
    "DataWarning",
    "DataframeSplit",
    "DatasetInfo",
    "DatasetList",
    "DatasetPatch",
    "Dialect",
    "Dtype",
    "Explanation",
    "Filter",
    "FitAccepted",
    "FitRequest",
    "GradsResponse",
    "Health",
    "InvocationsRequest",
    "InvocationsResponse",
    "Job",
    "JobKind",
    "JobList",
    "JobStage",
    "JobStatus",
    "Metrics",
    "ModelCard",
    "ModelFitRequest",
    "ModelList",
    "Not",
    "Op",
    "Or",
    "PairTerm",
    "PredictRequest",
    "PredictResponse",
    "ProblemDetail",
    "Progress",
    "Reason",
    "ReasoningFitRequest",
    "Records",
    "Regression",
    "RowCounts",
    "RowExplanation",
    "Scalar",
    "ScoringWarning",
    "TaskSpec",
    "TokenPair",
    "TokenRequest",
    "Trial",
    "filter_leaves",
]

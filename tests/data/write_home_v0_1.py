"""Writes tests/data/home-v0.1/: a home as release 0.1 (before the metadata store) left it.

Run with the 0.1 code first on the path (commit 22768d5), from the repository root:

    git worktree add /tmp/v0.1 22768d5
    PYTHONPATH=/tmp/v0.1 .venv/bin/python tests/data/write_home_v0_1.py

It uses 0.1's own stores, so the files are exactly what that release wrote: a dataset,
a model fitted on it with its card, a completed job, a pending job whose teacher headers
are sealed, an API key (printed into key.txt) and a used refresh token.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from reasoning.auth import CredentialStore
from reasoning.datasets import DatasetStore
from reasoning.home import Home
from reasoning.jobs import JobStore
from reasoning.keyring import Keyring
from reasoning.registry import ModelRegistry

from reasoning.schemas import ReasoningFitRequest, Trial
from reasoning.synthetic import houses
from reasoning.training import finalize, prepare, score_trial

OUT = Path(__file__).parent / "home-v0.1"
TENANT = "alpha"

shutil.rmtree(OUT, ignore_errors=True)
home = Home.at(OUT)
keyring = Keyring.at(home.secret_key)
frame = houses(80, seed=3)
info = DatasetStore(home.datasets).add(frame, "houses", TENANT)
request = ReasoningFitRequest.model_validate({
    "dataset_id": str(info.dataset_id), "model_types": ["linear"], "n_hyperopt_steps": 1,
    "task": {"task_kind": "regression", "label_column": "price"}})
data = prepare(frame, request)
params = {"alpha": 1.0}
trial = Trial(family="linear", params=params,
              score=score_trial(data, "linear", params, request.random_state))
jobs = JobStore(home.jobs_db, keyring)
done_id = str(uuid.uuid4())
model, card = finalize(data, request, [trial], done_id, "reasoning_fit")
card = card.model_copy(update={"tenant": TENANT})
ModelRegistry(home.models).add(model, card)
jobs.create(done_id, "reasoning_fit", str(info.dataset_id), request.model_dump(mode="json"),
            TENANT, "key-1")
jobs.start_attempt(done_id, "starting")
jobs.complete(done_id, str(card.model_id), "completed: linear model")
pending = request.model_dump(mode="json")
pending.update(task=None, teacher_predict_url="https://teacher.example/predict",
               teacher_predict_headers={"x-api-key": "sealed-in-0.1"})
jobs.create(str(uuid.uuid4()), "reasoning_fit", str(info.dataset_id), pending, TENANT)
credentials = CredentialStore(home.auth_db, keyring)
key_id, key = credentials.create_key(TENANT)
credentials.exchange(key)
(OUT / "key.txt").write_text(key + "\n")
print(f"wrote {OUT}: dataset {info.dataset_id}, model {card.model_id}, key {key_id}")

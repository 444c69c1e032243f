"""`/healthz`: the replica answers (the Readiness middleware says 503 until it has started)."""

from fastapi import APIRouter

from reasoning.schemas import Health
from serve_app.problems import responses

router = APIRouter(tags=["service"])


@router.get("/healthz", responses=responses())
async def healthz() -> Health:
    return Health()

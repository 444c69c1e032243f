"""The REST routes of API v1, one APIRouter per noun, included in the FastAPI app
(serve_app.rest).

Each route is a plain function whose first argument is the `Service` (a dependency: the
replica's stores and handles), so Python callers reach the same functions as methods of
`ReasoningIngress`.
"""

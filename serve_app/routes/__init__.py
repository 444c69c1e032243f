"""The REST routes of API v1, one APIRouter per noun, included by the ingress (serve_app.app).

Each route is a plain function whose first argument is the `Service` (a dependency: the
replica's stores and handles), so Python callers reach the same functions as methods of
`ReasoningIngress`.
"""

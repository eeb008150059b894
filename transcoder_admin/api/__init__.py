"""The JSON API under /api/v1/: a thin twisted.web layer over the admin's public methods."""

from .access import Access
from .errors import APIError
from .openapi import openapi_document
from .resources import build_resource, build_site
from .routes import ROUTES
from .service import APIService, check_listen
from .table import Admin, Route

__all__ = [
    "ROUTES",
    "Access",
    "APIError",
    "APIService",
    "Admin",
    "Route",
    "build_resource",
    "build_site",
    "check_listen",
    "openapi_document",
]

"""The OpenAPI security scheme of BearerAuthentication (drf-spectacular finds it once this module is
imported, which ScopingConfig.ready does)."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]  # drf-spectacular is untyped
    target_class = "scoping.authentication.BearerAuthentication"
    name = "bearerAuth"
    scheme: dict[str, str] = {
        "type": "http",
        "scheme": "bearer",
        "description": "A JWT with scope_id/scopeContext claims, or an API key (ak_...).",
    }

    def get_security_definition(self, auto_schema: object) -> dict[str, str]:
        return self.scheme

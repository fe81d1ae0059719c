"""The documented list of scopes an API key may hold."""

SCOPES = {
    "websites:read": "List and read websites and their deployments.",
    "websites:write": "Create, change and delete websites.",
    "deployments:write": "Create deployments and roll back to an earlier one.",
    "cdn:invalidate": "Request CDN cache invalidations for the tenant's websites.",
    "webhooks:manage": "Create, change and delete webhooks; read deliveries.",
    "keys:manage": "Create, list, rotate and revoke the tenant's API keys.",
    "usage:read": "Read the tenant's API usage.",
}

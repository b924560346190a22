"""Who may use which of the server's protocols: tritonserver's header-keyed restrictions."""

from __future__ import annotations

# Triton 2.51's header-keyed restrictions (--grpc-restricted-protocol, --http-restricted-api): the administrative
# protocols need the admin key, and inference optionally a site token. docker/entrypoint.sh passes the same.
ADMIN_PROTOCOLS = ("model-repository", "shared-memory", "statistics", "trace", "logging")
ADMIN_HEADER, SITE_HEADER = "eanno-admin-key", "eanno-site-token"
GRPC_HEADER_PREFIX = "triton-grpc-protocol-"  # what gRPC clients must prefix to the header name


def restricted_args(admin_key: str, site_token: str | None = None) -> list[str]:
    """tritonserver options restricting the admin protocols to `admin_key` (and inference to `site_token`)."""
    admin = ",".join(ADMIN_PROTOCOLS)
    args = [
        f"--grpc-restricted-protocol={admin}:{ADMIN_HEADER}={admin_key}",
        f"--http-restricted-api={admin}:{ADMIN_HEADER}={admin_key}",
    ]
    if site_token:
        args += [
            f"--grpc-restricted-protocol=inference:{SITE_HEADER}={site_token}",
            f"--http-restricted-api=inference:{SITE_HEADER}={site_token}",
        ]
    return args

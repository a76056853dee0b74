"""Where Graph lives: national cloud roots, Entra authority hosts, token scopes, API versions.

A ``GraphEndpoint`` is everything the client needs to know about the other end: the base
URL requests are built on (no trailing slash: a trailing one makes the SDK emit ``//``),
the scope tokens are requested for, the authority host credentials sign in against, and
the hosts the auth provider may send a token to. Tokens of one cloud are not valid in
another, so the scope always follows the cloud, never the request host.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Mapping
from urllib.parse import urlsplit

from provision.errors import UsageError


class Cloud(StrEnum):
    GLOBAL = "global"
    USGOV = "usgov"  # US Gov L4 (GCC High)
    USGOV_DOD = "usgov-dod"  # US Gov L5 (DoD)
    CHINA = "china"  # operated by 21Vianet


class ApiVersion(StrEnum):
    V1 = "v1.0"
    BETA = "beta"


@dataclass(frozen=True, slots=True)
class CloudEndpoints:
    graph_root: str  # scheme + host, no path, no trailing slash
    authority_host: str  # bare host, as azure-identity's AzureAuthorityHosts spells it


CLOUDS: Mapping[Cloud, CloudEndpoints] = {
    Cloud.GLOBAL: CloudEndpoints("https://graph.microsoft.com", "login.microsoftonline.com"),
    Cloud.USGOV: CloudEndpoints("https://graph.microsoft.us", "login.microsoftonline.us"),
    Cloud.USGOV_DOD: CloudEndpoints("https://dod-graph.microsoft.us", "login.microsoftonline.us"),
    Cloud.CHINA: CloudEndpoints("https://microsoftgraph.chinacloudapi.cn", "login.chinacloudapi.cn"),
}

# kiota's azure auth provider only sends tokens over plain http to these hosts.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True, slots=True)
class GraphEndpoint:
    """The far end of every request: a national cloud or a local sandbox."""

    base_url: str  # e.g. https://graph.microsoft.com/v1.0 or http://127.0.0.1:8123/beta
    scopes: tuple[str, ...]
    authority_host: str
    allowed_hosts: tuple[str, ...]
    cloud: Cloud | None  # None for a sandbox

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or ""

    @property
    def is_loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS


def cloud_target(cloud: Cloud | str = Cloud.GLOBAL, version: ApiVersion | str = ApiVersion.V1) -> GraphEndpoint:
    """The target for a Microsoft national cloud."""
    try:
        cloud = Cloud(cloud)
        version = ApiVersion(version)
    except ValueError as exc:
        raise UsageError(f"unknown Graph cloud or version: {exc}") from None
    ep = CLOUDS[cloud]
    return GraphEndpoint(
        base_url=f"{ep.graph_root}/{version.value}",
        scopes=(f"{ep.graph_root}/.default",),
        authority_host=ep.authority_host,
        allowed_hosts=(urlsplit(ep.graph_root).hostname or "",),
        cloud=cloud,
    )


def url_target(base_url: str, *, cloud: Cloud | str = Cloud.GLOBAL) -> GraphEndpoint:
    """A target at an explicit base URL (the sandbox, or a cloud root spelled out).

    The URL must end in ``/v1.0`` or ``/beta``. Plain http is only accepted for loopback
    hosts: a bearer token must never cross a network in clear text. Scopes and the
    authority follow ``cloud`` (the sandbox ignores them; a real cloud needs them right).
    """
    url = base_url.rstrip("/")
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise UsageError(f"Graph base URL must be an http(s) URL, got {base_url!r}")
    if parts.scheme == "http" and host not in LOOPBACK_HOSTS:
        raise UsageError(f"plain http is only allowed to a loopback host, got {host!r}")
    if not parts.path.endswith(("/v1.0", "/beta")):
        raise UsageError(f"Graph base URL must end in /v1.0 or /beta, got {base_url!r}")
    ep = CLOUDS[Cloud(cloud)]
    return GraphEndpoint(
        base_url=url,
        scopes=(f"{ep.graph_root}/.default",),
        authority_host=ep.authority_host,
        allowed_hosts=(host,),
        cloud=None if host in LOOPBACK_HOSTS else Cloud(cloud),
    )

"""`provision sandbox ...`: serve the local Graph-compatible tenant, mint tokens, fetch snapshots.

``serve`` runs until Ctrl-C or SIGTERM (a service manager's stop, ``kill``): both shut it
down gracefully, ``--save`` then writes the tenant snapshot, and it exits 0.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional
from urllib.parse import urlsplit

import httpx
import typer

from provision.cli.output import PlainConsole, exits_on_error
from provision.errors import ProvisionError, UsageError
from provision.sandbox.auth import SANDBOX_APP_ID, SANDBOX_TENANT_ID, make_token
from provision.sandbox.server import check_loopback

app = typer.Typer(help="The local Graph-compatible sandbox tenant.", no_args_is_help=True, rich_markup_mode=None)


def _split_csv(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _sandbox_root(url: str) -> str:
    """The sandbox's root URL from any of its URLs (``.../v1.0`` and ``.../beta`` accepted); loopback only."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"not an http URL: {url!r}")
    check_loopback(parts.hostname)
    path = parts.path.rstrip("/")
    for suffix in ("/v1.0", "/beta"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
    return f"{parts.scheme}://{parts.netloc}{path}"


def _sandbox_tenant_id(url: str) -> str:
    try:
        response = httpx.get(_sandbox_root(url) + "/_sandbox/info", timeout=10)
        response.raise_for_status()
        info = response.json()
        tenant_id = str(info["tenant_id"])
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        raise ProvisionError(f"can't read the sandbox at {url}: {exc}") from None
    tenants = info.get("tenants") or [tenant_id]
    if len(tenants) > 1:  # a token for the first would silently read the wrong tenant
        raise UsageError(f"the sandbox at {url} serves {len(tenants)} tenants: name one with --tid")
    return tenant_id


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Loopback address to bind (127.0.0.1, ::1 or localhost).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.")] = 0,
    snapshot: Annotated[
        Optional[list[Path]],
        typer.Option(metavar="<path>", help="Tenant snapshot JSON to start from; repeat it to serve several tenants."),
    ] = None,
    tenants: Annotated[
        Optional[Path], typer.Option(help="A directory of tenant snapshots (*.json): serve each as a tenant.")
    ] = None,
    profile: Annotated[str, typer.Option(help="unlimited, graph-like, graph-window, strict, or a profile TOML file.")] = "unlimited",
    save: Annotated[Optional[Path], typer.Option(help="Write the tenant snapshot here on shutdown (Ctrl-C or SIGTERM).")] = None,
    save_dir: Annotated[
        Optional[Path], typer.Option(help="Write each tenant's snapshot to DIR/<tenant id>.json on shutdown.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for latency jitter and injected faults.")] = 0,
) -> None:
    """Serve the sandbox on loopback until Ctrl-C or SIGTERM.

    Prints its Graph base URLs. Ctrl-C and SIGTERM both stop it gracefully, and --save
    (or --save-dir) then writes the tenant snapshots. With --tenants or several
    --snapshot, each tenant is served to the tokens naming its id (tid).
    """
    from provision.sandbox.app import SandboxApp, create_app, create_multi_app
    from provision.sandbox.limits import load_profile
    from provision.sandbox.server import serve_forever
    from provision.sandbox.snapshot import load_snapshot, save_snapshot
    from provision.sandbox.tenants_dir import load_tenants, save_tenants, snapshot_paths

    sandbox_app: SandboxApp
    with exits_on_error(PlainConsole()):
        check_loopback(host)
        resolved = load_profile(profile)
        lag = resolved.consistency.replication_lag_ms / 1000.0
        seeds = list(snapshot or [])
        if tenants is not None:
            seeds += snapshot_paths(tenants)
        if tenants is not None or len(seeds) > 1:
            if save is not None:
                raise UsageError("--save writes one tenant: with several, use --save-dir")
            sandbox_app = create_multi_app(load_tenants(seeds, replication_lag_s=lag), profile=resolved, seed=seed)
        else:
            tenant = load_snapshot(seeds[0], replication_lag_s=lag) if seeds else None
            sandbox_app = create_app(tenant, profile=resolved, seed=seed)

    router = sandbox_app.tenant_router
    served = False

    def ready(root: str) -> None:
        nonlocal served
        served = True
        typer.echo(f"{root}/v1.0")
        typer.echo(f"{root}/beta")
        target = save if save is not None else save_dir
        stop = "Ctrl-C or SIGTERM to stop" + (f" and save to {target}" if target is not None else "")
        who = f"{len(router.sandboxes)} tenants" if router is not None else f"tenant {sandbox_app.sandbox.tenant_id}"
        typer.echo(f"{who}, profile {resolved.name}; {stop}", err=True)
        typer.echo(f"token: provision sandbox token --url {root}" + (" --tid TENANT_ID" if router else ""), err=True)

    def save_state() -> None:
        if save_dir is not None:
            save_tenants(router.tenants() if router is not None else [sandbox_app.sandbox.tenant], save_dir)
        if save is not None:
            save_snapshot(sandbox_app.sandbox.tenant, save)

    # serve_forever returns on SIGINT and SIGTERM alike (provision.sandbox.server), so the
    # save below runs for both; `finally` so that a server that fails while serving still
    # leaves what it was sent (but one that never served saves nothing).
    try:
        with exits_on_error(PlainConsole()):
            try:
                serve_forever(sandbox_app, host=host, port=port, on_ready=ready)
            except OSError as exc:
                raise UsageError(f"can't serve on {host}:{port}: {exc.strerror or exc}") from None
    finally:
        if (save is not None or save_dir is not None) and served:
            with exits_on_error(PlainConsole()):
                try:
                    save_state()
                except OSError as exc:
                    raise UsageError(f"can't save the snapshot to {save or save_dir}: {exc.strerror or exc}") from None
            typer.echo(f"snapshot saved to {save or save_dir}", err=True)


@app.command("token")
def token(
    roles: Annotated[Optional[str], typer.Option(help="Application permissions, comma-separated (app token).")] = None,
    scp: Annotated[Optional[str], typer.Option(help="Delegated scopes, space-separated (delegated token).")] = None,
    wids: Annotated[Optional[str], typer.Option(help="Directory role template ids, comma-separated.")] = None,
    tid: Annotated[Optional[str], typer.Option(help="Tenant id (default: the sandbox's default tenant).")] = None,
    url: Annotated[Optional[str], typer.Option(help="A running sandbox's URL: take the tenant id from it.")] = None,
    appid: Annotated[str, typer.Option(help="Application id (the throttling key).")] = SANDBOX_APP_ID,
) -> None:
    """Print an unsigned JWT the sandbox accepts.

    Default: an application token for the job's app.
    """
    with exits_on_error(PlainConsole()):
        if roles is not None and scp is not None:
            raise UsageError("give --roles (application) or --scp (delegated), not both")
        tenant_id = tid or SANDBOX_TENANT_ID
        if url is not None and tid is None:
            tenant_id = _sandbox_tenant_id(url)
    if scp is not None:
        typer.echo(make_token(scp=scp, wids=_split_csv(wids), tid=tenant_id, appid=appid))
    else:
        typer.echo(make_token(roles=_split_csv(roles) if roles is not None else None, tid=tenant_id, appid=appid))


@app.command("snapshot")
def snapshot(
    url: Annotated[str, typer.Option(help="The running sandbox's URL (root, /v1.0 or /beta).")],
    out: Annotated[Path, typer.Option(help="Where to write the snapshot JSON.")],
    tenant: Annotated[Optional[str], typer.Option(help="The tenant id, when the sandbox serves several.")] = None,
) -> None:
    """Fetch a running sandbox's tenant snapshot."""
    with exits_on_error(PlainConsole()):
        root = _sandbox_root(url)
        try:
            params = {"tenant": tenant} if tenant is not None else None
            response = httpx.get(root + "/_sandbox/snapshot", params=params, timeout=30)
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ProvisionError(f"can't fetch the snapshot from {root}: {exc}") from None
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(out)
    typer.echo(f"snapshot written to {out}", err=True)


@app.command("seed-fleet")
def seed_fleet_cmd(
    out_dir: Annotated[Path, typer.Argument(metavar="OUT_DIR", help="Directory to write snapshots/, rosters/ and tenants.csv into.")],
    tenants: Annotated[int, typer.Option(min=1, metavar="<int>", help="How many tenants.")] = 20,
    users: Annotated[int, typer.Option(min=1, max=999_999, metavar="<int>", help="Users per tenant (at most 999,999).")] = 100,
    seed: Annotated[int, typer.Option(help="The same seed writes the same fleet.")] = 0,
) -> None:
    """Generate a fleet of sandbox tenants: a snapshot and an HR roster per tenant, and tenants.csv.

    Serve the snapshots with `provision sandbox serve --tenants OUT_DIR/snapshots`.
    """
    from provision.sandbox.fleet_seed import seed_fleet

    with exits_on_error(PlainConsole()):
        try:
            fleet = seed_fleet(out_dir, tenants=tenants, users=users, seed=seed)
        except OSError as exc:
            raise UsageError(f"can't write the fleet to {out_dir}: {exc.strerror or exc}") from None
    planned = {kind: sum(t.expected[kind] for t in fleet.tenants) for kind in ("create", "update", "delete", "invalid")}
    typer.echo(f"{len(fleet.tenants)} tenants x {users} users written to {out_dir}", err=True)
    typer.echo(
        f"  changes an authoritative run plans: {planned['create']} creates, {planned['update']} updates, "
        f"{planned['delete']} deletes; {planned['invalid']} invalid rows",
        err=True,
    )
    typer.echo(f"  serve: provision sandbox serve --tenants {fleet.snapshots}", err=True)
    typer.echo(f"  rehearse: provision fleet apply {fleet.fleet_file} --yes", err=True)
    typer.echo(str(fleet.tenants_csv))

"""Fleet mode: one job across many tenants, each tenant an ordinary run, dispatched on Dask.

- ``config``: the fleet file and tenants.csv -> ``Fleet`` (one validated ``Job`` per tenant)
- ``tenant_run``: ``run_tenant(task)``: one tenant's plan or apply, inside a worker thread
- ``dispatch``: Dask (an embedded ``LocalCluster`` or a scheduler by address), the global cap,
  re-dispatch of tenants whose worker was lost, results gathered into tenant.json
- ``rundir``: the fleet run directory (manifest, per-tenant folders, resume, the fleet lock)
- ``sandbox``: the embedded multi-tenant sandbox a rehearsal fleet runs against
- ``report``: the merged fleet_summary.json, fleet.xlsx and report.html; the fleet exit code
- ``pipeline``: each command in one call (``plan_fleet``, ``apply_fleet``, ``resume_fleet``,
  ``report_fleet``), for the CLI and for scripts

Importing this package loads neither Dask nor the Graph SDK; ``dispatch`` loads Dask.
"""

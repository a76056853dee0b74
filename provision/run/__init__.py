"""A run: what ties the stages together for one job.

``jobs`` (the job file), ``targets`` (the embedded sandbox, a running sandbox or a real
tenant, opened as a GraphClient), ``rundir`` (everything a run leaves behind), ``lock``
(one writing run per job and target), ``history`` (a job's finished runs, for the
roster-size threshold),
``plan_stage`` (roster + live state -> a reviewed plan), ``apply_stage`` (plan -> journal
-> executor), ``run_report`` (run directory -> reports and the run's exit code), ``export`` (live
phones -> a roster file and a snapshot), ``rollback`` (a run's inverse against live state),
``pipeline`` (each command's steps in one call: what the CLI and scripts call), ``console``
(how the core reports progress without printing) and ``logs`` (run.log, masked).
"""

"""provision: bulk provisioning of Microsoft Entra phone authentication methods.

The package is a batch job: a reader (``roster``) loads HR rosters, a pure ``planner``
diffs them against each user's phone methods read through ``graph``, an ``executor``
applies the changes, and ``report`` writes what happened to every roster row.
``sandbox`` is a local Graph-compatible tenant used as the default target and test server.
"""

__version__ = "0.1.0"

"""The Graph layer: everything that talks to Microsoft Graph (or the sandbox) and how politely.

Only this package imports msgraph / kiota, and only ``client.py`` does so at import time,
so importing a sibling (``clouds``, ``credentials``, ``ops``) stays cheap. Modules:
``client`` (the one GraphClient on msgraph-sdk), ``batch`` and ``ops`` (the ``$batch``
codec and the operations it carries), ``errors`` (Graph answers in our terms),
``clouds`` and ``credentials`` (where and as whom), ``pacing`` (adaptive rate shared by
every request), ``retry`` (one classification of failures, one tenacity policy) and
``state_reader`` (current phone methods of many users in bulk).
"""

"""The Graph layer: the one GraphClient, the $batch codec, clouds, credentials, errors.

Only this package imports msgraph / kiota. See ``client.py`` for the client, ``batch.py``
and ``ops.py`` for the bulk path, ``errors.py`` for the error tree.
"""

from provision.graph.batch import MAX_BATCH_SIZE, Op, OpResult, decode_batch, encode_batch
from provision.graph.client import GraphClient, GraphUser
from provision.graph.clouds import ApiVersion, Cloud, GraphTarget, cloud_target, url_target
from provision.graph.credentials import CredentialConfig, CredentialKind, StaticTokenCredential, make_credential
from provision.graph.errors import TransportFailure, translate

__all__ = [
    "MAX_BATCH_SIZE",
    "ApiVersion",
    "Cloud",
    "CredentialConfig",
    "CredentialKind",
    "GraphClient",
    "GraphTarget",
    "GraphUser",
    "Op",
    "OpResult",
    "StaticTokenCredential",
    "TransportFailure",
    "cloud_target",
    "decode_batch",
    "encode_batch",
    "make_credential",
    "translate",
    "url_target",
]

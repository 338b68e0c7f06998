"""smcp: a Python client for mcp/0.1, the stateless, signed, asynchronous tool protocol.

    from smcp import Client
    client = Client.from_env()               # where `smcp serve` ran; or Client(url, client_id=..., ...)
    print(client.call("batch_sum", {"numbers": [1, 2, 3.5]}))

Every answer is verified (signature over the bytes received, request_id,
server_id, freshness, shape) before it is used; see :class:`Client`.
"""

from .aio import AsyncClient
from .client import Client
from .errors import ERROR_CODES, SmcpError, SmcpUsageError
from .messages import PROTOCOL_VERSION, Envelope, Response

__version__ = "0.1.0"

__all__ = [
    "ERROR_CODES",
    "PROTOCOL_VERSION",
    "AsyncClient",
    "Client",
    "Envelope",
    "Response",
    "SmcpError",
    "SmcpUsageError",
    "__version__",
]

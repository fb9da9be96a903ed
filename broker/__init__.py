"""zjobs broker package: the wire protocol, the store, the broker and the Python client."""

__version__ = "0.1.0"

from .client import AsyncClient, Client  # noqa: E402
from .errors import (  # noqa: E402
    AuthError,
    BrokerError,
    BrokerUnreachable,
    FunctionError,
    InvalidJob,
    JobCancelled,
    JobFailed,
    ZJobsError,
)

__all__ = ["AsyncClient", "AuthError", "BrokerError", "BrokerUnreachable", "Client",
           "FunctionError", "InvalidJob", "JobCancelled", "JobFailed", "ZJobsError", "__version__"]

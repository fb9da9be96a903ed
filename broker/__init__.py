"""zjobs broker package: the wire protocol, the store, the broker and the Python client."""

__version__ = "0.1.0"

from .client import AsyncClient, Client  # noqa: E402
from .errors import BrokerError, FunctionError, JobCancelled, JobFailed, ZJobsError  # noqa: E402

__all__ = ["AsyncClient", "BrokerError", "Client", "FunctionError", "JobCancelled", "JobFailed",
           "ZJobsError",
           "__version__"]

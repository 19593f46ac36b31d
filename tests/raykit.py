"""A local Ray instance with Serve's HTTP proxy on 127.0.0.1, for the Ray tests and
`bench/serve_scale.py`; it is shut down when the block ends."""

from __future__ import annotations

import contextlib
import socket
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def local_ray_serve(num_cpus: int = 2) -> Iterator[str]:
    """Start Ray (`num_cpus`, no dashboard) and Serve's proxy on a free loopback port; yield
    the proxy's base URL. Deploy with `serve.run(..., route_prefix="/")`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Ray's own start-up notices are not ours to fail on
        import ray
        from ray import serve

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1"}},
        )
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        yield f"http://127.0.0.1:{port}"
    finally:
        try:
            serve.shutdown()
        finally:
            ray.shutdown()

"""`imagegen serve`: an OpenAI-compatible Images API over any installed engine.

```python
from imagegen.server import create_app, ServerSettings
app = create_app("placeholder", ServerSettings(max_queue=32))
uvicorn.run(app, http=HTTPProtocol)   # uvicorn's h11, with a header deadline and a connection cap
```
`ray_app(settings)` deploys the same app on Ray Serve. See `docs/server.md`.
"""

from __future__ import annotations

from ._app import create_app
from ._protocol import HTTPProtocol
from ._ray import ray_app
from ._settings import ServerSettings

__all__ = ["HTTPProtocol", "ServerSettings", "create_app", "ray_app"]

"""`imagegen serve`: an OpenAI-compatible Images API over any installed engine.

```python
from imagegen.server import create_app, ServerSettings
app = create_app("placeholder", ServerSettings(max_queue=32))   # run with uvicorn
```
See `docs/server.md`.
"""

from __future__ import annotations

from ._app import create_app
from ._settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]

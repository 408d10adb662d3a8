"""`essearch serve`: an HTTP search service over the library (FastAPI on uvicorn).

`create_app(settings)` builds the app: the native API under `/v1`, Dify's External Knowledge API
at `/retrieval`, `/metrics`, `/healthz` + `/readyz` and the playground at `/`. One Elasticsearch
client, one embedder and one search client per alias live for the life of the process, so no
request pays for loading a model or opening a connection pool.
"""

from essearch.serve.app import create_app

__all__ = ["create_app"]

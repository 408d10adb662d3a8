"""essearch: semantic and hybrid search on Elasticsearch."""

__version__ = "0.1.0"

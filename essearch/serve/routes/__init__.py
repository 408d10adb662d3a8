"""One router per API: native search, documents, indices, health/metrics, Dify, playground."""

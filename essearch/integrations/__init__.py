"""Adapters that put essearch into code that already exists (LangChain, LlamaIndex).

Each adapter lives in its own module and imports its framework only there, so `import essearch`
never needs LangChain or LlamaIndex: install the `langchain` or `llama-index` extra to use one.
"""

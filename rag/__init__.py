"""rag: a Japanese-first RAG chatbot that shows the tokens, vectors and scores behind answers."""

__version__ = "0.1.0"

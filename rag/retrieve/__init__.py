"""Question -> hits: vector search, BM25, their fusion, and a LangChain retriever over them."""

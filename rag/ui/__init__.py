"""The Streamlit user interface: sidebar, chat, sources; `app.py` only wires these together."""

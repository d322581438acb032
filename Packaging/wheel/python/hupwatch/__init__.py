"""hupwatch, installed by `pip install swsgi`: `python -m hupwatch ARGS...` is `hupwatch ARGS...`."""

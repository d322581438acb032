"""`python -m swsgi ARGS...` is `swsgi ARGS...`."""

from swsgi import run

if __name__ == "__main__":
    run("swsgi")

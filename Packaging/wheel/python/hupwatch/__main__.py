"""`python -m hupwatch ARGS...` is `hupwatch ARGS...`."""

from swsgi import run

if __name__ == "__main__":
    run("hupwatch")

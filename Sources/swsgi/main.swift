// The swsgi executable: hosts the built-in apps (--app) or a shared library (--app-library).
import SWSGI

serve()

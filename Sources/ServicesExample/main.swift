import SWSGI
serve(nil)

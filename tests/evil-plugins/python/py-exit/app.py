# componentize-py entry point (see plugins/python/template/app.py).
from wc_plugin.component import export
from rule import Rule
Counter = export(Rule)

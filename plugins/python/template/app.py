# componentize-py entry point: exports rule.Rule as the WIT world `counting-plugin`.
from wc_plugin.component import export
from rule import Rule
Counter = export(Rule)

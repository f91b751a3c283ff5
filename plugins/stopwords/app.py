"""componentize-py entry point: rule.StopWords as the WIT world `counting-plugin`."""

from wc_plugin.component import export
from rule import StopWords

# componentize-py looks up the interface `counter` as this module's `Counter`.
Counter = export(StopWords)

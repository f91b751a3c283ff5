"""componentize-py entry point: rule.SplitSpace as the WIT world `counting-plugin`."""

from wc_plugin.component import export
from rule import SplitSpace

# componentize-py looks up the interface `counter` as this module's `Counter`.
Counter = export(SplitSpace)

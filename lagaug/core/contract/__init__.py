"""What a plugin implements and how the core finds it: the hooks (:mod:`.hookspecs`), the plugin
manager and method registry (:mod:`.plugins`), the method contract and how a fitted generator is
saved (:mod:`.method`), and what flows between the stages (:mod:`.batch`). Nothing here runs a
job; everything else in the core is written against these."""

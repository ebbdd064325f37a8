"""The command line: a thin layer over the public API in `escalation.api`.

Its modules are imported with the cyclic garbage collector paused, and what they made is then
moved to the oldest generation in one step: importing them makes tens of thousands of objects
that live as long as the process (classes, functions, typing forms) and next to no garbage, and
the collections of the young generations would only walk them again. Nothing stays changed: the
collector runs as before, for the command line and for any program that imports it.
"""

import gc

_collecting = gc.isenabled()
gc.disable()
try:
    from escalation.cli.app import app, main
finally:
    if gc.get_freeze_count() == 0:  # never unfreeze what a program froze itself
        gc.freeze()
        gc.unfreeze()  # everything tracked is now in the oldest generation
    if _collecting:
        gc.enable()
del _collecting

__all__ = ["app", "main"]

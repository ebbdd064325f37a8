"""Stage 4: flags matched with what was actually done.

Each engine flag becomes a decision point paired with the action taken, in the pydantic result
models that every output serialises.
"""
